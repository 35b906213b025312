//! Organizer calls: attendees, waitlist, removal and check-in.

use tonic::Request;

use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use super::{State, event_id, page_size};
use crate::store;

impl State {
    pub(super) async fn list_attendees(
        &self,
        req: Request<pb::ListAttendeesRequest>,
    ) -> Result<pb::ListAttendeesResponse> {
        let event = event_id(&req.get_ref().event_id)?;
        self.organizer(&req, event).await?;
        let r = req.into_inner();
        let after = if r.page_token.is_empty() {
            None
        } else {
            Some(
                r.page_token
                    .parse()
                    .map_err(|_| Error::invalid("page_token", "is not one we issued"))?,
            )
        };
        let size = page_size(r.page_size);
        let mut conn = self.pool.acquire().await?;
        let rows = store::attendees(&mut conn, event, after, size).await?;
        let next = if rows.len() as i64 == size {
            rows.last().map(|r| r.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListAttendeesResponse {
            registrations: rows.iter().map(|r| r.to_pb(0)).collect(),
            next_page_token: next,
        })
    }

    pub(super) async fn list_waitlist(
        &self,
        req: Request<pb::ListWaitlistRequest>,
    ) -> Result<pb::ListWaitlistResponse> {
        let event = event_id(&req.get_ref().event_id)?;
        self.organizer(&req, event).await?;
        let r = req.into_inner();
        let after: i64 = if r.page_token.is_empty() {
            0
        } else {
            r.page_token
                .parse()
                .map_err(|_| Error::invalid("page_token", "is not one we issued"))?
        };
        let size = page_size(r.page_size);
        let mut conn = self.pool.acquire().await?;
        let rows = store::waitlist(&mut conn, event, after, size).await?;
        let next = match rows.last().and_then(|(r, _)| r.waitlist_seq) {
            Some(seq) if rows.len() as i64 == size => seq.to_string(),
            _ => String::new(),
        };
        let registrations = rows
            .iter()
            .map(|(r, position)| r.to_pb(*position))
            .collect();
        Ok(pb::ListWaitlistResponse {
            registrations,
            next_page_token: next,
        })
    }

    pub(super) async fn remove_attendee(
        &self,
        req: Request<pb::RemoveAttendeeRequest>,
    ) -> Result<pb::RemoveAttendeeResponse> {
        let event = event_id(&req.get_ref().event_id)?;
        self.organizer(&req, event).await?;
        let user = cityevents_runtime::parse::id("user_id", &req.get_ref().user_id)?;
        let mut tx = self.pool.begin().await?;
        let store::Cancelled { row, promotions } =
            store::cancel(&mut tx, event, user, "join.removed").await?;
        tx.commit().await?;
        self.metrics.leaves.with_label_values(&["removed"]).inc();
        self.metrics.promotions.inc_by(promotions as u64);
        Ok(pb::RemoveAttendeeResponse {
            registration: Some(row.to_pb(0)),
        })
    }

    pub(super) async fn check_in(
        &self,
        req: Request<pb::CheckInRequest>,
    ) -> Result<pb::CheckInResponse> {
        let event = event_id(&req.get_ref().event_id)?;
        self.organizer(&req, event).await?;
        let (reg, ticket_event) = self.tickets.verify(&req.get_ref().ticket_code)?;
        if ticket_event != event {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "ticket_code: this ticket is for another event",
            )
            .with_reason("TICKET_FOREIGN"));
        }
        let mut tx = self.pool.begin().await?;
        let (row, first) = store::check_in(&mut tx, reg, event).await?;
        tx.commit().await?;
        let outcome = if first { "first" } else { "again" };
        self.metrics.check_ins.with_label_values(&[outcome]).inc();
        Ok(pb::CheckInResponse {
            registration: Some(self.registration(&row, 0)),
            first_check_in: first,
        })
    }
}
