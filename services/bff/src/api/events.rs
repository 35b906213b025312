//! `EventsService`: organizing events over the event service, and the event
//! page in one call (event, counts and the caller's registration, asked
//! concurrently, each under the client's per-call deadline).

use tonic::{Code, Request};

use cityevents_proto::cityevents::api::v1::{self as api, events_service_server::EventsService};
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as jn;

use super::{Api, Reply, answer, ok};

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
        ok(api::CreateEventResponse { event: r.event })
    }

    async fn get_event(&self, req: Request<api::GetEventRequest>) -> Reply<api::GetEventResponse> {
        let caller = self.edge.admit(&req).await?;
        let event_id = req.get_ref().event_id.clone();
        let (mut events, mut join, mut mine) = (
            self.backends.events.clone(),
            self.backends.join.clone(),
            self.backends.join.clone(),
        );
        let event = answer(events.get_event(caller.outbound(
            &req,
            ev::GetEventRequest {
                event_id: event_id.clone(),
            },
        )));
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
            let msg = jn::GetRegistrationRequest { event_id };
            match answer(mine.get_registration(caller.outbound(&req, msg))).await {
                Ok(r) => Ok(r.registration),
                Err(s) if s.code() == Code::NotFound => Ok(None),
                Err(s) => Err(s),
            }
        };
        let (event, counts, registration) = tokio::join!(event, counts, registration);
        // The event decides what the caller may see; counts and the
        // registration are extras a page can live without for a moment.
        let event = event?.event;
        ok(api::GetEventResponse {
            event,
            counts: counts.map_or_else(
                |e| {
                    tracing::warn!(code = ?e.code(), "event page without its counts");
                    None
                },
                Some,
            ),
            my_registration: registration.unwrap_or_else(|e| {
                tracing::warn!(code = ?e.code(), "event page without the caller's registration");
                None
            }),
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
        ok(api::UpdateEventResponse { event: r.event })
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
        ok(api::PublishEventResponse { event: r.event })
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
        ok(api::CancelEventResponse { event: r.event })
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
        ok(api::ListMyEventsResponse {
            events: r.events,
            next_page_token: r.next_page_token,
        })
    }
}
