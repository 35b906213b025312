//! `RegistrationsService`: joining and leaving (the `idempotency-key` is
//! passed on to the join service), tickets, and the organizer's calls (the
//! lists of people come with their display names, when auth answers in
//! time).

use tonic::Request;

use cityevents_proto::cityevents::api::v1::{
    self as api, registrations_service_server::RegistrationsService,
};
use cityevents_proto::cityevents::join::v1 as jn;

use super::{Api, Reply, answer, ok};

/// The people a page of registrations names, each once.
fn user_ids(registrations: &[jn::Registration]) -> Vec<String> {
    let mut ids: Vec<String> = registrations.iter().map(|r| r.user_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[tonic::async_trait]
impl RegistrationsService for Api {
    async fn join_event(
        &self,
        req: Request<api::JoinEventRequest>,
    ) -> Reply<api::JoinEventResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = jn::JoinRequest {
            event_id: m.event_id.clone(),
            tier_id: m.tier_id.clone(),
            answers: m.answers.clone(),
        };
        let r = answer(self.backends.join.clone().join(caller.outbound(&req, msg))).await?;
        ok(api::JoinEventResponse {
            registration: r.registration,
        })
    }

    async fn leave_event(
        &self,
        req: Request<api::LeaveEventRequest>,
    ) -> Reply<api::LeaveEventResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let msg = jn::LeaveRequest {
            event_id: req.get_ref().event_id.clone(),
        };
        let r = answer(self.backends.join.clone().leave(caller.outbound(&req, msg))).await?;
        ok(api::LeaveEventResponse {
            registration: r.registration,
        })
    }

    async fn get_my_registration(
        &self,
        req: Request<api::GetMyRegistrationRequest>,
    ) -> Reply<api::GetMyRegistrationResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let msg = jn::GetRegistrationRequest {
            event_id: req.get_ref().event_id.clone(),
        };
        let out = caller.outbound(&req, msg);
        let r = answer(self.backends.join.clone().get_registration(out)).await?;
        ok(api::GetMyRegistrationResponse {
            registration: r.registration,
        })
    }

    async fn list_my_tickets(
        &self,
        req: Request<api::ListMyTicketsRequest>,
    ) -> Reply<api::ListMyTicketsResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = jn::ListMyRegistrationsRequest {
            page_size: m.page_size,
            page_token: m.page_token.clone(),
        };
        let out = caller.outbound(&req, msg);
        let r = answer(self.backends.join.clone().list_my_registrations(out)).await?;
        ok(api::ListMyTicketsResponse {
            tickets: r.registrations,
            next_page_token: r.next_page_token,
        })
    }

    async fn list_attendees(
        &self,
        req: Request<api::ListAttendeesRequest>,
    ) -> Reply<api::ListAttendeesResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = jn::ListAttendeesRequest {
            event_id: m.event_id.clone(),
            page_size: m.page_size,
            page_token: m.page_token.clone(),
        };
        let r = answer(
            self.backends
                .join
                .clone()
                .list_attendees(caller.outbound(&req, msg)),
        )
        .await?;
        let people = self
            .profiles(&req, &caller, user_ids(&r.registrations))
            .await;
        ok(api::ListAttendeesResponse {
            registrations: r.registrations,
            next_page_token: r.next_page_token,
            people,
        })
    }

    async fn check_in(&self, req: Request<api::CheckInRequest>) -> Reply<api::CheckInResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = jn::CheckInRequest {
            event_id: m.event_id.clone(),
            ticket_code: m.ticket_code.clone(),
        };
        let r = answer(
            self.backends
                .join
                .clone()
                .check_in(caller.outbound(&req, msg)),
        )
        .await?;
        ok(api::CheckInResponse {
            registration: r.registration,
            first_check_in: r.first_check_in,
        })
    }

    async fn list_waitlist(
        &self,
        req: Request<api::ListWaitlistRequest>,
    ) -> Reply<api::ListWaitlistResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = jn::ListWaitlistRequest {
            event_id: m.event_id.clone(),
            page_size: m.page_size,
            page_token: m.page_token.clone(),
        };
        let r = answer(
            self.backends
                .join
                .clone()
                .list_waitlist(caller.outbound(&req, msg)),
        )
        .await?;
        let people = self
            .profiles(&req, &caller, user_ids(&r.registrations))
            .await;
        ok(api::ListWaitlistResponse {
            registrations: r.registrations,
            next_page_token: r.next_page_token,
            people,
        })
    }

    async fn remove_attendee(
        &self,
        req: Request<api::RemoveAttendeeRequest>,
    ) -> Reply<api::RemoveAttendeeResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let m = req.get_ref();
        let msg = jn::RemoveAttendeeRequest {
            event_id: m.event_id.clone(),
            user_id: m.user_id.clone(),
            reason: m.reason.clone(),
        };
        let out = caller.outbound(&req, msg);
        let r = answer(self.backends.join.clone().remove_attendee(out)).await?;
        ok(api::RemoveAttendeeResponse {
            registration: r.registration,
        })
    }

    async fn get_ticket_key(
        &self,
        req: Request<api::GetTicketKeyRequest>,
    ) -> Reply<api::GetTicketKeyResponse> {
        let caller = self.edge.admit(&req).await?;
        let out = caller.outbound(&req, jn::GetTicketKeyRequest {});
        let r = answer(self.backends.join.clone().get_ticket_key(out)).await?;
        ok(api::GetTicketKeyResponse { key: r.key })
    }
}
