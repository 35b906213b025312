//! `EventsService`: organizing events over the event service, and the event
//! page in one call (the event then its organizer's name, its counts and the
//! caller's registration, asked concurrently, each under the client's
//! per-call deadline; the name waits at most 300 ms).

use std::time::Duration;

use tonic::{Code, Request};

use cityevents_proto::cityevents::api::v1::{self as api, events_service_server::EventsService};
use cityevents_proto::cityevents::auth::v1 as auth;
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as jn;

use super::{Api, Reply, answer, images, ok};

/// How long a page waits for names (the organizer's, the attendees').
const ORGANIZER_WAIT: Duration = Duration::from_millis(300);

/// A part of the event page, or `None` (logged) when it failed.
fn without<T>(what: &str, part: Result<T, tonic::Status>) -> Option<T> {
    part.map_err(|e| tracing::warn!(code = ?e.code(), "event page without {what}"))
        .ok()
}

impl Api {
    /// What anyone may see of `user_ids` (at most a page, 100), or nothing
    /// when the account service does not answer within [`ORGANIZER_WAIT`]
    /// (pages do not wait for names).
    pub(super) async fn profiles<T>(
        &self,
        req: &Request<T>,
        caller: &crate::edge::Caller,
        user_ids: Vec<String>,
    ) -> Vec<auth::PublicProfile> {
        if user_ids.is_empty() {
            return Vec::new();
        }
        let msg = auth::GetPublicProfilesRequest { user_ids };
        // The call carries the caller's deadline on to auth (the client
        // layer sets it); the page stops waiting sooner.
        let out = caller.outbound(req, msg);
        let mut auth = self.backends.auth.clone();
        let profiles = tokio::time::timeout(ORGANIZER_WAIT, answer(auth.get_public_profiles(out)))
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("profiles"))
            .and_then(|r| r);
        without("names", profiles)
            .map(|r| r.profiles)
            .unwrap_or_default()
    }
}

#[tonic::async_trait]
impl EventsService for Api {
    async fn create_event(
        &self,
        req: Request<api::CreateEventRequest>,
    ) -> Reply<api::CreateEventResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let msg = ev::CreateEventRequest {
            draft: req.get_ref().draft.clone(),
        };
        let r = answer(
            self.backends
                .events
                .clone()
                .create_event(caller.outbound(&req, msg)),
        )
        .await?;
        let mut events: Vec<_> = r.event.into_iter().collect();
        self.with_covers(&mut events).await;
        ok(api::CreateEventResponse {
            event: events.pop(),
        })
    }

    async fn get_event(&self, req: Request<api::GetEventRequest>) -> Reply<api::GetEventResponse> {
        let caller = self.edge.admit(&req).await?;
        let event_id = req.get_ref().event_id.clone();
        let (mut events, mut join, mut mine) = (
            self.backends.events.clone(),
            self.backends.join.clone(),
            self.backends.join.clone(),
        );
        let event = async {
            let msg = ev::GetEventRequest {
                event_id: event_id.clone(),
            };
            let event = answer(events.get_event(caller.outbound(&req, msg)))
                .await?
                .event;
            // The organizer's name and the cover links, at once.
            let (organizer, links) = match &event {
                Some(e) => {
                    let ids = images::cover_ids(std::slice::from_ref(e));
                    let (names, links) = tokio::join!(
                        self.profiles(&req, &caller, vec![e.organizer_id.clone()]),
                        self.links(ids)
                    );
                    (names.into_iter().next(), links)
                }
                None => (None, Default::default()),
            };
            Ok::<_, tonic::Status>((event, organizer, links))
        };
        let counts = answer(join.get_counts(caller.outbound(
            &req,
            jn::GetCountsRequest {
                event_id: event_id.clone(),
            },
        )));
        let registration = async {
            if caller.principal.is_none() {
                return Ok(None);
            }
            let msg = jn::GetRegistrationRequest {
                event_id: event_id.clone(),
            };
            match answer(mine.get_registration(caller.outbound(&req, msg))).await {
                Ok(r) => Ok(r.registration),
                Err(s) if s.code() == Code::NotFound => Ok(None),
                Err(s) => Err(s),
            }
        };
        let (event, counts, registration) = tokio::join!(event, counts, registration);
        // The event decides what the caller may see; counts, the
        // registration and the organizer's name are extras a page can live
        // without for a moment.
        let (event, organizer, links) = event?;
        let mut events: Vec<_> = event.into_iter().collect();
        images::set_covers(&mut events, &links);
        ok(api::GetEventResponse {
            event: events.pop(),
            counts: without("counts", counts),
            my_registration: without("the caller's registration", registration).flatten(),
            organizer,
        })
    }

    async fn update_event(
        &self,
        req: Request<api::UpdateEventRequest>,
    ) -> Reply<api::UpdateEventResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = ev::UpdateEventRequest {
            event_id: m.event_id.clone(),
            expected_version: m.expected_version,
            draft: m.draft.clone(),
        };
        let r = answer(
            self.backends
                .events
                .clone()
                .update_event(caller.outbound(&req, msg)),
        )
        .await?;
        let mut events: Vec<_> = r.event.into_iter().collect();
        self.with_covers(&mut events).await;
        ok(api::UpdateEventResponse {
            event: events.pop(),
        })
    }

    async fn publish_event(
        &self,
        req: Request<api::PublishEventRequest>,
    ) -> Reply<api::PublishEventResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = ev::PublishEventRequest {
            event_id: m.event_id.clone(),
            expected_version: m.expected_version,
        };
        let r = answer(
            self.backends
                .events
                .clone()
                .publish_event(caller.outbound(&req, msg)),
        )
        .await?;
        let mut events: Vec<_> = r.event.into_iter().collect();
        self.with_covers(&mut events).await;
        ok(api::PublishEventResponse {
            event: events.pop(),
        })
    }

    async fn cancel_event(
        &self,
        req: Request<api::CancelEventRequest>,
    ) -> Reply<api::CancelEventResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = ev::CancelEventRequest {
            event_id: m.event_id.clone(),
            expected_version: m.expected_version,
            reason: m.reason.clone(),
        };
        let r = answer(
            self.backends
                .events
                .clone()
                .cancel_event(caller.outbound(&req, msg)),
        )
        .await?;
        let mut events: Vec<_> = r.event.into_iter().collect();
        self.with_covers(&mut events).await;
        ok(api::CancelEventResponse {
            event: events.pop(),
        })
    }

    async fn report_event(
        &self,
        req: Request<api::ReportEventRequest>,
    ) -> Reply<api::ReportEventResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = ev::ReportEventRequest {
            event_id: m.event_id.clone(),
            reason: m.reason.clone(),
        };
        answer(
            self.backends
                .events
                .clone()
                .report_event(caller.outbound(&req, msg)),
        )
        .await?;
        ok(api::ReportEventResponse {})
    }

    async fn list_my_events(
        &self,
        req: Request<api::ListMyEventsRequest>,
    ) -> Reply<api::ListMyEventsResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = ev::ListOrganizedEventsRequest {
            page_size: m.page_size,
            page_token: m.page_token.clone(),
        };
        let out = caller.outbound(&req, msg);
        let r = answer(self.backends.events.clone().list_organized_events(out)).await?;
        let mut events = r.events;
        self.with_covers(&mut events).await;
        ok(api::ListMyEventsResponse {
            events,
            next_page_token: r.next_page_token,
        })
    }
}
