//! Join, leave and the caller's own reads.

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Request;

use cityevents_authn::Role;
use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use super::{State, event_id};
use cityevents_runtime::grpc::context::CallContext;

use crate::batch::{IdempotencyKey, JoinCommand, Outcome};
use crate::store;

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The `idempotency-key` metadata, if sent: 1 to 200 visible ASCII characters.
fn idempotency_key<T>(req: &Request<T>) -> Result<Option<String>> {
    let Some(v) = req.metadata().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .map_err(|_| Error::invalid(IDEMPOTENCY_KEY, "must be visible ASCII"))?;
    if key.is_empty() || key.len() > 200 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            IDEMPOTENCY_KEY,
            "must be 1 to 200 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

impl State {
    pub(super) async fn join(&self, req: Request<pb::JoinRequest>) -> Result<pb::JoinResponse> {
        let me = self.principal(&req).await?;
        let key = idempotency_key(&req)?;
        let r = req.into_inner();
        let event = event_id(&r.event_id)?;
        let hash = Sha256::digest(r.encode_to_vec()).to_vec();
        // A keyed repeat is answered inside the batch, from the stored
        // answer (no read of the key before queueing: it cost every keyed
        // join ~100 µs of machine CPU, docs/benchmarks.md). The caller's
        // deadline goes into the queue: a join still queued
        // when its caller stops waiting takes nothing.
        let deadline = CallContext::current().and_then(|c| c.deadline);
        let idempotency = key.map(|key| IdempotencyKey { key, hash });
        let traceparent = cityevents_runtime::telemetry::current_traceparent();
        let cmd = || JoinCommand {
            user: me.user_id,
            event,
            tier: r.tier_id.clone(),
            answers: r.answers.clone(),
            idempotency: idempotency.clone(),
            deadline,
            traceparent: traceparent.clone(),
            reply: tokio::sync::oneshot::channel().0,
        };
        // The batch reads the snapshot itself; only an event it does not know
        // costs a lookup at the event service, then one more try.
        let outcome = match self.batcher.submit(cmd()).await {
            Err(e) if e.reason() == "EVENT_NOT_FOUND" => {
                self.fallback.ensure(event).await?;
                self.batcher.submit(cmd()).await?
            }
            other => other?,
        };
        match outcome {
            Outcome::Registration(row, position) => Ok(pb::JoinResponse {
                registration: Some(self.registration(&row, position)),
            }),
            Outcome::Stored(bytes) => self.decode_stored(&bytes),
        }
    }

    fn decode_stored(&self, bytes: &[u8]) -> Result<pb::JoinResponse> {
        let mut resp = pb::JoinResponse::decode(bytes).map_err(Error::internal)?;
        if let Some(r) = resp.registration.as_mut() {
            self.add_ticket(r);
        }
        Ok(resp)
    }

    pub(super) async fn leave(&self, req: Request<pb::LeaveRequest>) -> Result<pb::LeaveResponse> {
        let me = self.principal(&req).await?;
        let event = event_id(&req.get_ref().event_id)?;
        let mut tx = self.pool.begin().await?;
        let store::Cancelled { row, promotions } =
            store::cancel(&mut tx, event, me.user_id, "join.cancelled").await?;
        tx.commit().await?;
        self.metrics.leaves.with_label_values(&["left"]).inc();
        self.metrics.promotions.inc_by(promotions as u64);
        Ok(pb::LeaveResponse {
            registration: Some(self.registration(&row, 0)),
        })
    }

    pub(super) async fn get_registration(
        &self,
        req: Request<pb::GetRegistrationRequest>,
    ) -> Result<pb::GetRegistrationResponse> {
        let me = self.principal(&req).await?;
        let event = event_id(&req.get_ref().event_id)?;
        let mut conn = self.pool.acquire().await?;
        let (row, position) = store::registration(&mut conn, event, me.user_id)
            .await?
            .ok_or_else(|| {
                Error::new(ErrorCode::NotFound, "no registration for this event")
                    .with_reason("NOT_REGISTERED")
            })?;
        Ok(pb::GetRegistrationResponse {
            registration: Some(self.registration(&row, position)),
        })
    }

    pub(super) async fn get_counts(
        &self,
        req: Request<pb::GetCountsRequest>,
    ) -> Result<pb::GetCountsResponse> {
        let event = event_id(&req.get_ref().event_id)?;
        self.fallback.ensure(event).await?;
        let mut conn = self.pool.acquire().await?;
        let read = store::read_counts(&mut conn, event).await?;
        drop(conn);
        if !read.public {
            // A draft or hidden event exists only for its organizers and
            // moderators; anyone else is told there is no such event.
            let me = self
                .principal(&req)
                .await
                .map_err(|_| Error::no_such_event())?;
            if !read.organizers.contains(&me.user_id) && !me.is_at_least(Role::Moderator) {
                return Err(Error::no_such_event());
            }
        }
        Ok(read.counts)
    }
}

/// The page token after `t`: its event's start (µs) and its id.
fn ticket_token(t: &store::TicketRow) -> String {
    format!("{}.{}", t.starts_at.timestamp_micros(), t.row.id)
}

fn parse_ticket_token(raw: &str) -> Result<Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token", "is not one we issued");
    let (micros, id) = raw.split_once('.').ok_or_else(bad)?;
    let start = micros
        .parse()
        .ok()
        .and_then(chrono::DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    Ok(Some((start, id.parse().map_err(|_| bad())?)))
}

impl State {
    pub(super) async fn list_my_registrations(
        &self,
        req: Request<pb::ListMyRegistrationsRequest>,
    ) -> Result<pb::ListMyRegistrationsResponse> {
        let me = self.principal(&req).await?;
        let r = req.into_inner();
        let after = parse_ticket_token(&r.page_token)?;
        let size = super::page_size(r.page_size);
        let mut conn = self.pool.acquire().await?;
        let rows = store::tickets(&mut conn, me.user_id, after, size).await?;
        let next = match rows.last() {
            Some(t) if rows.len() as i64 == size => ticket_token(t),
            _ => String::new(),
        };
        Ok(pb::ListMyRegistrationsResponse {
            registrations: rows
                .iter()
                .map(|t| pb::MyRegistration {
                    registration: Some(self.registration(&t.row, t.position)),
                    event_title: t.title.clone(),
                    event_starts_at: Some(cityevents_runtime::parse::timestamp(t.starts_at)),
                })
                .collect(),
            next_page_token: next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_page_token_reads_back_and_junk_is_refused() {
        let at = chrono::DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let id = uuid::Uuid::now_v7();
        assert_eq!(
            parse_ticket_token(&format!("{}.{id}", at.timestamp_micros())).unwrap(),
            Some((at, id))
        );
        assert_eq!(parse_ticket_token("").unwrap(), None);
        for junk in [
            "x",
            "1.2",
            "abc.",
            "99999999999999999999.00000000-0000-0000-0000-000000000000",
        ] {
            assert!(parse_ticket_token(junk).is_err(), "{junk}");
        }
    }
}
