//! The `cityevents.event.v1.EventService` handlers. The trait impl routes;
//! the work is in [`lifecycle`] and [`moderation`].

mod convert;
mod lifecycle;
mod moderation;

use std::sync::Arc;

use sqlx::PgPool;
use tonic::Request;

use cityevents_authn::{Principal, Role, Verifier};
use cityevents_proto::cityevents::event::v1::{self as pb, event_service_server::EventService};
use cityevents_proto::cityevents::join::v1::join_service_client::JoinServiceClient;
use cityevents_proto::cityevents::media::v1::media_service_client::MediaServiceClient;
use cityevents_runtime::error::{Reply, reply};
use cityevents_runtime::grpc::client::GrpcChannel;
use cityevents_runtime::{Error, ErrorCode, Result};

use crate::store::EventRow;

/// What the handlers share.
pub struct State {
    pub pool: PgPool,
    pub verifier: Arc<Verifier>,
    /// For the capacity floor (confirmed count); `None` skips that check.
    pub join: Option<JoinServiceClient<GrpcChannel>>,
    /// Checks and attaches cover images; `None`: events take no images.
    pub media: Option<MediaServiceClient<GrpcChannel>>,
    /// `events_lifecycle_total{action}`: created, updated, published, cancelled.
    pub lifecycle: prometheus::IntCounterVec,
}

/// The gRPC service.
#[derive(Clone)]
pub struct EventApi {
    state: Arc<State>,
}

impl EventApi {
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

    /// The caller if a token was sent; anonymous otherwise.
    async fn maybe_principal<T>(&self, req: &Request<T>) -> Result<Option<Principal>> {
        if req.metadata().get("authorization").is_none() {
            return Ok(None);
        }
        self.principal(req).await.map(Some)
    }
}

/// Organizers, co-organizers, moderators and admins may change an event.
fn ensure_can_edit(me: &Principal, row: &EventRow) -> Result<()> {
    if row.is_organizer(me.user_id) || me.is_at_least(Role::Moderator) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::PermissionDenied,
            "only the event's organizers may change it",
        ))
    }
}

/// Draft and hidden events exist only for their organizers and moderators.
fn visible_to(me: Option<&Principal>, row: &EventRow) -> bool {
    let public = row.status != "draft" && !row.hidden;
    public || me.is_some_and(|p| row.is_organizer(p.user_id) || p.is_at_least(Role::Moderator))
}

fn ensure_version(row: &EventRow, expected: i64) -> Result<()> {
    if row.version == expected {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::Conflict,
        format!(
            "expected_version: the event is at version {}; re-read it and retry",
            row.version
        ),
    ))
}

#[tonic::async_trait]
impl EventService for EventApi {
    #[tracing::instrument(skip_all)]
    async fn create_event(
        &self,
        req: Request<pb::CreateEventRequest>,
    ) -> Reply<pb::CreateEventResponse> {
        reply(self.state.create(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn get_event(&self, req: Request<pb::GetEventRequest>) -> Reply<pb::GetEventResponse> {
        reply(self.state.get(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn update_event(
        &self,
        req: Request<pb::UpdateEventRequest>,
    ) -> Reply<pb::UpdateEventResponse> {
        reply(self.state.update(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn publish_event(
        &self,
        req: Request<pb::PublishEventRequest>,
    ) -> Reply<pb::PublishEventResponse> {
        reply(self.state.publish(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn cancel_event(
        &self,
        req: Request<pb::CancelEventRequest>,
    ) -> Reply<pb::CancelEventResponse> {
        reply(self.state.cancel(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn list_organized_events(
        &self,
        req: Request<pb::ListOrganizedEventsRequest>,
    ) -> Reply<pb::ListOrganizedEventsResponse> {
        reply(self.state.list_organized(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn add_co_organizer(
        &self,
        req: Request<pb::AddCoOrganizerRequest>,
    ) -> Reply<pb::AddCoOrganizerResponse> {
        let (event_id, user_id) = (
            req.get_ref().event_id.clone(),
            req.get_ref().user_id.clone(),
        );
        let r = self
            .state
            .co_organizer(&req, &event_id, &user_id, true)
            .await;
        reply(r.map(|event| pb::AddCoOrganizerResponse { event: Some(event) }))
    }
    #[tracing::instrument(skip_all)]
    async fn remove_co_organizer(
        &self,
        req: Request<pb::RemoveCoOrganizerRequest>,
    ) -> Reply<pb::RemoveCoOrganizerResponse> {
        let (event_id, user_id) = (
            req.get_ref().event_id.clone(),
            req.get_ref().user_id.clone(),
        );
        let r = self
            .state
            .co_organizer(&req, &event_id, &user_id, false)
            .await;
        reply(r.map(|event| pb::RemoveCoOrganizerResponse { event: Some(event) }))
    }
    #[tracing::instrument(skip_all)]
    async fn report_event(
        &self,
        req: Request<pb::ReportEventRequest>,
    ) -> Reply<pb::ReportEventResponse> {
        reply(self.state.report(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn hide_event(&self, req: Request<pb::HideEventRequest>) -> Reply<pb::HideEventResponse> {
        let (id, reason) = (req.get_ref().event_id.clone(), req.get_ref().reason.clone());
        reply(
            self.state
                .moderate(&req, &id, &reason, true)
                .await
                .map(|e| pb::HideEventResponse { event: Some(e) }),
        )
    }
    #[tracing::instrument(skip_all)]
    async fn unhide_event(
        &self,
        req: Request<pb::UnhideEventRequest>,
    ) -> Reply<pb::UnhideEventResponse> {
        let (id, reason) = (req.get_ref().event_id.clone(), req.get_ref().reason.clone());
        reply(
            self.state
                .moderate(&req, &id, &reason, false)
                .await
                .map(|e| pb::UnhideEventResponse { event: Some(e) }),
        )
    }
    #[tracing::instrument(skip_all)]
    async fn list_reports(
        &self,
        req: Request<pb::ListReportsRequest>,
    ) -> Reply<pb::ListReportsResponse> {
        reply(self.state.list_reports(req).await)
    }
}
