//! The `cityevents.join.v1.JoinService` handlers: the trait impl routes to
//! [`registration`] (join, leave, reads) and [`organizer`] (attendees,
//! waitlist, removal, check-in).

mod organizer;
mod registration;

use std::sync::Arc;

use sqlx::PgPool;
use tonic::Request;
use uuid::Uuid;

use cityevents_authn::{Principal, Role, Verifier};
use cityevents_proto::cityevents::join::v1::{self as pb, join_service_server::JoinService};
use cityevents_runtime::error::{Reply, reply};
use cityevents_runtime::{Error, ErrorCode, Result};

use crate::batch::Batcher;
use crate::metrics::JoinMetrics;
use crate::snapshots::Fallback;
use crate::store::{self, RegRow};
use crate::tickets::Tickets;

/// What the handlers share.
pub struct State {
    pub pool: PgPool,
    pub verifier: Arc<Verifier>,
    pub batcher: Batcher,
    pub fallback: Fallback,
    pub tickets: Tickets,
    pub metrics: JoinMetrics,
}

#[derive(Clone)]
pub struct JoinApi {
    state: Arc<State>,
}

impl JoinApi {
    pub fn new(state: State) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

impl State {
    async fn principal<T>(&self, req: &Request<T>) -> Result<Principal> {
        self.verifier.authenticate(req.metadata()).await
    }

    /// The caller, if they organize `event` (or moderate).
    async fn organizer<T>(&self, req: &Request<T>, event: Uuid) -> Result<Principal> {
        let me = self.principal(req).await?;
        self.fallback.ensure(event).await?;
        let mut conn = self.pool.acquire().await?;
        let organizers = store::organizers(&mut conn, event).await?;
        if organizers.contains(&me.user_id) || me.is_at_least(Role::Moderator) {
            Ok(me)
        } else {
            Err(Error::new(
                ErrorCode::PermissionDenied,
                "only the event's organizers may do this",
            ))
        }
    }

    /// The message for `row`, with its ticket code when it holds a place.
    fn registration(&self, row: &RegRow, position: i32) -> pb::Registration {
        let mut r = row.to_pb(position);
        self.add_ticket(&mut r);
        r
    }

    fn add_ticket(&self, r: &mut pb::Registration) {
        let holds_place = matches!(
            r.status(),
            pb::RegistrationStatus::Confirmed | pb::RegistrationStatus::CheckedIn
        );
        if let (true, Ok(id), Ok(event)) = (holds_place, r.id.parse(), r.event_id.parse()) {
            r.ticket_code = self.tickets.code(id, event);
        }
    }
}

fn event_id(raw: &str) -> Result<Uuid> {
    cityevents_runtime::parse::id("event_id", raw)
}

use cityevents_runtime::parse::page_size;

#[tonic::async_trait]
impl JoinService for JoinApi {
    #[tracing::instrument(skip_all)]
    async fn join(&self, req: Request<pb::JoinRequest>) -> Reply<pb::JoinResponse> {
        reply(self.state.join(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn leave(&self, req: Request<pb::LeaveRequest>) -> Reply<pb::LeaveResponse> {
        reply(self.state.leave(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn get_registration(
        &self,
        req: Request<pb::GetRegistrationRequest>,
    ) -> Reply<pb::GetRegistrationResponse> {
        reply(self.state.get_registration(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn get_counts(&self, req: Request<pb::GetCountsRequest>) -> Reply<pb::GetCountsResponse> {
        reply(self.state.get_counts(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn list_my_registrations(
        &self,
        req: Request<pb::ListMyRegistrationsRequest>,
    ) -> Reply<pb::ListMyRegistrationsResponse> {
        reply(self.state.list_my_registrations(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn list_attendees(
        &self,
        req: Request<pb::ListAttendeesRequest>,
    ) -> Reply<pb::ListAttendeesResponse> {
        reply(self.state.list_attendees(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn list_waitlist(
        &self,
        req: Request<pb::ListWaitlistRequest>,
    ) -> Reply<pb::ListWaitlistResponse> {
        reply(self.state.list_waitlist(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn remove_attendee(
        &self,
        req: Request<pb::RemoveAttendeeRequest>,
    ) -> Reply<pb::RemoveAttendeeResponse> {
        reply(self.state.remove_attendee(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn check_in(&self, req: Request<pb::CheckInRequest>) -> Reply<pb::CheckInResponse> {
        reply(self.state.check_in(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn get_ticket_key(
        &self,
        _req: Request<pb::GetTicketKeyRequest>,
    ) -> Reply<pb::GetTicketKeyResponse> {
        reply(Ok(pb::GetTicketKeyResponse {
            key: Some(self.state.tickets.public_jwk()),
        }))
    }
}
