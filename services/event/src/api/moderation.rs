//! Reports and moderation. Every hide and unhide is audited and emitted.

use tonic::Request;

use cityevents_authn::{Principal, Role};
use cityevents_messaging::outbox;
use cityevents_proto::cityevents::event::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use super::convert::{event, timestamp};
use super::{State, visible_to};
use crate::{store, validate};

fn ensure_moderator(me: &Principal) -> Result<()> {
    if me.is_at_least(Role::Moderator) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::PermissionDenied,
            "only moderators may do this",
        ))
    }
}

impl State {
    pub(super) async fn report(
        &self,
        req: Request<pb::ReportEventRequest>,
    ) -> Result<pb::ReportEventResponse> {
        let me = self.principal(&req).await?;
        let id = validate::id("event_id", &req.get_ref().event_id)?;
        let reason = validate::reason(&req.get_ref().reason)?;
        let mut conn = self.pool.acquire().await?;
        store::get(&mut conn, id)
            .await?
            .filter(|r| visible_to(Some(&me), r))
            .ok_or_else(store::not_found)?;
        let report_id = store::report(&mut conn, id, me.user_id, &reason).await?;
        Ok(pb::ReportEventResponse {
            report_id: report_id.to_string(),
        })
    }

    pub(super) async fn moderate<T>(
        &self,
        req: &Request<T>,
        event_id: &str,
        reason: &str,
        hide: bool,
    ) -> Result<pb::Event> {
        let me = self.principal(req).await?;
        ensure_moderator(&me)?;
        let id = validate::id("event_id", event_id)?;
        let reason = validate::reason(reason)?;
        let mut tx = self.pool.begin().await?;
        let row = store::lock(&mut tx, id).await?;
        if row.hidden == hide {
            let state = if hide { "hidden" } else { "visible" };
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!("the event is already {state}"),
            ));
        }
        store::set_hidden(&mut tx, id, hide).await?;
        let action = if hide { "hide" } else { "unhide" };
        store::audit(&mut tx, id, me.user_id, action, &reason).await?;
        let row = store::get(&mut tx, id)
            .await?
            .ok_or_else(store::not_found)?;
        let event = event(&row)?;
        let payload = pb::EventModerated {
            event: Some(event.clone()),
            moderator_id: me.user_id.to_string(),
            reason,
        };
        let event_type = if hide {
            "event.hidden"
        } else {
            "event.unhidden"
        };
        outbox::enqueue(&mut tx, event_type, id, &payload).await?;
        tx.commit().await?;
        Ok(event)
    }

    pub(super) async fn list_reports(
        &self,
        req: Request<pb::ListReportsRequest>,
    ) -> Result<pb::ListReportsResponse> {
        let me = self.principal(&req).await?;
        ensure_moderator(&me)?;
        let (size, after) = validate::page(req.get_ref().page_size, &req.get_ref().page_token)?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_reports(&mut conn, after, size).await?;
        let next = if rows.len() as i64 == size {
            rows.last().map(|r| r.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let reports = rows
            .into_iter()
            .map(|r| pb::Report {
                id: r.id.to_string(),
                event_id: r.event_id.to_string(),
                reporter_id: r.reporter_id.to_string(),
                reason: r.reason,
                created_at: Some(timestamp(r.created_at)),
            })
            .collect();
        Ok(pb::ListReportsResponse {
            reports,
            next_page_token: next,
        })
    }
}
