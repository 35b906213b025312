//! The batch's view of the rows it locked: the events' snapshots and tiers
//! and the users' registrations, updated as each join is decided, then
//! written back in bulk.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_messaging::outbox::{self, NewEvent};
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use super::{JoinCommand, Outcome};
use crate::answers;
use crate::store::RegRow;

struct Snapshot {
    status: String,
    hidden: bool,
    ends_at: DateTime<Utc>,
    waitlist_cap: i32,
    questions: Vec<ev::Question>,
    default_tier: String,
    next_seq: i64,
    touched: bool,
}

#[derive(Clone, Copy)]
struct Tier {
    capacity: i32,
    confirmed: i32,
    waitlisted: i32,
    touched: bool,
}

/// The batch's view of the locked rows, updated as joins are decided.
pub(super) struct Ledger {
    snapshots: HashMap<Uuid, Snapshot>,
    tiers: HashMap<(Uuid, String), Tier>,
    regs: HashMap<(Uuid, Uuid), RegRow>,
    new_regs: Vec<RegRow>,
}

/// Locks the snapshot and tier rows of the batch's events, in id order, and
/// reads the registrations the batch's users already have.
pub(super) async fn lock(conn: &mut PgConnection, batch: &[JoinCommand]) -> anyhow::Result<Ledger> {
    let mut events: Vec<Uuid> = batch.iter().map(|c| c.event).collect();
    events.sort_unstable();
    events.dedup();
    let snaps = sqlx::query!(
        "SELECT event_id, status, hidden, ends_at, waitlist_cap, questions, default_tier, next_waitlist_seq
         FROM event_snapshots WHERE event_id = ANY($1) ORDER BY event_id FOR UPDATE",
        &events
    )
    .fetch_all(&mut *conn)
    .await?;
    let tiers = sqlx::query!(
        "SELECT event_id, tier_id, capacity, confirmed, waitlisted FROM tiers
         WHERE event_id = ANY($1) ORDER BY event_id, tier_id FOR UPDATE",
        &events
    )
    .fetch_all(&mut *conn)
    .await?;
    let (evs, users): (Vec<Uuid>, Vec<Uuid>) = batch.iter().map(|c| (c.event, c.user)).unzip();
    let regs = sqlx::query_as!(
        RegRow,
        r#"SELECT r.id, r.event_id, r.user_id, r.tier_id, r.status, r.waitlist_seq, r.answers, r.created_at, r.updated_at
           FROM registrations r JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(e, u) ON r.event_id = k.e AND r.user_id = k.u"#,
        &evs,
        &users
    )
    .fetch_all(&mut *conn)
    .await?;
    let snapshots = snaps
        .into_iter()
        .map(|s| {
            let questions = ev::EventDraft::decode(s.questions.as_slice())
                .map(|d| d.questions)
                .unwrap_or_default();
            let snap = Snapshot {
                status: s.status,
                hidden: s.hidden,
                ends_at: s.ends_at,
                waitlist_cap: s.waitlist_cap,
                questions,
                default_tier: s.default_tier,
                next_seq: s.next_waitlist_seq,
                touched: false,
            };
            (s.event_id, snap)
        })
        .collect();
    let tiers = tiers
        .into_iter()
        .map(|t| {
            let tier = Tier {
                capacity: t.capacity,
                confirmed: t.confirmed,
                waitlisted: t.waitlisted,
                touched: false,
            };
            ((t.event_id, t.tier_id), tier)
        })
        .collect();
    let regs = regs
        .into_iter()
        .map(|r| ((r.event_id, r.user_id), r))
        .collect();
    Ok(Ledger {
        snapshots,
        tiers,
        regs,
        new_regs: Vec::new(),
    })
}

fn refuse(code: ErrorCode, reason: &'static str, msg: &str) -> Error {
    Error::new(code, msg).with_reason(reason)
}

impl Ledger {
    /// Decides one join against the locked counters.
    pub(super) fn decide(&mut self, cmd: &JoinCommand) -> Result<Outcome> {
        let now = Utc::now();
        let snap = self.snapshots.get_mut(&cmd.event).ok_or_else(|| {
            refuse(
                ErrorCode::NotFound,
                "EVENT_NOT_FOUND",
                "event_id: no such event",
            )
        })?;
        match snap.status.as_str() {
            "draft" => {
                return Err(refuse(
                    ErrorCode::FailedPrecondition,
                    "EVENT_NOT_PUBLISHED",
                    "the event is not published yet",
                ));
            }
            "cancelled" => {
                return Err(refuse(
                    ErrorCode::FailedPrecondition,
                    "EVENT_CANCELLED",
                    "the event has been cancelled",
                ));
            }
            _ => {}
        }
        if snap.hidden {
            return Err(refuse(
                ErrorCode::FailedPrecondition,
                "EVENT_HIDDEN",
                "the event has been hidden by a moderator",
            ));
        }
        if snap.ends_at <= now {
            return Err(refuse(
                ErrorCode::FailedPrecondition,
                "EVENT_PAST",
                "the event is over",
            ));
        }
        let tier_id = if cmd.tier.is_empty() {
            snap.default_tier.clone()
        } else {
            cmd.tier.clone()
        };
        if let Some(r) = self
            .regs
            .get(&(cmd.event, cmd.user))
            .filter(|r| r.status != "cancelled")
        {
            // One registration per user per event: a repeat gets it back.
            let position = if r.status == "waitlisted" { -1 } else { 0 };
            return Ok(Outcome::Registration(r.clone(), position));
        }
        let answers = answers::validate(&snap.questions, &cmd.answers)?;
        let waitlisted_total: i32 = self
            .tiers
            .iter()
            .filter(|((e, _), _)| *e == cmd.event)
            .map(|(_, t)| t.waitlisted)
            .sum();
        let tier = self
            .tiers
            .get_mut(&(cmd.event, tier_id.clone()))
            .ok_or_else(|| Error::invalid("tier_id", "is not a tier of this event"))?;
        let (status, seq, position) = if tier.capacity == 0 || tier.confirmed < tier.capacity {
            tier.confirmed += 1;
            ("confirmed", None, 0)
        } else if snap.waitlist_cap == 0 || waitlisted_total < snap.waitlist_cap {
            tier.waitlisted += 1;
            snap.next_seq += 1;
            snap.touched = true;
            ("waitlisted", Some(snap.next_seq - 1), tier.waitlisted)
        } else {
            return Err(refuse(
                ErrorCode::ResourceExhausted,
                "WAITLIST_FULL",
                "the event and its waitlist are full",
            ));
        };
        tier.touched = true;
        let row = RegRow {
            id: Uuid::now_v7(),
            event_id: cmd.event,
            user_id: cmd.user,
            tier_id,
            status: status.into(),
            waitlist_seq: seq,
            answers: pb::JoinRequest {
                answers,
                ..Default::default()
            }
            .encode_to_vec(),
            created_at: now,
            updated_at: now,
        };
        self.regs.insert((cmd.event, cmd.user), row.clone());
        self.new_regs.push(row.clone());
        Ok(Outcome::Registration(row, position))
    }

    /// Writes the batch: registrations, counters, outbox.
    pub(super) async fn write(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        if self.new_regs.is_empty() {
            return Ok(());
        }
        let r = &self.new_regs;
        let ids: Vec<Uuid> = r.iter().map(|r| r.id).collect();
        let events: Vec<Uuid> = r.iter().map(|r| r.event_id).collect();
        let users: Vec<Uuid> = r.iter().map(|r| r.user_id).collect();
        let tiers: Vec<String> = r.iter().map(|r| r.tier_id.clone()).collect();
        let statuses: Vec<String> = r.iter().map(|r| r.status.clone()).collect();
        let seqs: Vec<Option<i64>> = r.iter().map(|r| r.waitlist_seq).collect();
        let answers: Vec<Vec<u8>> = r.iter().map(|r| r.answers.clone()).collect();
        // A user who left and comes back reuses their row with a new id.
        sqlx::query!(
            r#"INSERT INTO registrations (id, event_id, user_id, tier_id, status, waitlist_seq, answers)
               SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bigint[], $7::bytea[])
               ON CONFLICT (event_id, user_id) DO UPDATE SET
                 id = EXCLUDED.id, tier_id = EXCLUDED.tier_id, status = EXCLUDED.status,
                 waitlist_seq = EXCLUDED.waitlist_seq, answers = EXCLUDED.answers,
                 created_at = now(), updated_at = now()
               WHERE registrations.status = 'cancelled'"#,
            &ids,
            &events,
            &users,
            &tiers,
            &statuses,
            &seqs as &[Option<i64>],
            &answers
        )
        .execute(&mut *conn)
        .await?;
        self.write_counters(conn).await?;
        outbox::enqueue_many(conn, self.events()).await?;
        Ok(())
    }

    async fn write_counters(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        let touched: Vec<_> = self.tiers.iter().filter(|(_, t)| t.touched).collect();
        let events: Vec<Uuid> = touched.iter().map(|((e, _), _)| *e).collect();
        let tier_ids: Vec<String> = touched.iter().map(|((_, t), _)| t.clone()).collect();
        let confirmed: Vec<i32> = touched.iter().map(|(_, t)| t.confirmed).collect();
        let waitlisted: Vec<i32> = touched.iter().map(|(_, t)| t.waitlisted).collect();
        sqlx::query!(
            "UPDATE tiers SET confirmed = v.c, waitlisted = v.w
             FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::int[]) AS v(e, t, c, w)
             WHERE tiers.event_id = v.e AND tiers.tier_id = v.t",
            &events,
            &tier_ids,
            &confirmed,
            &waitlisted
        )
        .execute(&mut *conn)
        .await?;
        let (snap_ids, seqs): (Vec<Uuid>, Vec<i64>) = self
            .snapshots
            .iter()
            .filter(|(_, s)| s.touched)
            .map(|(id, s)| (*id, s.next_seq))
            .unzip();
        if !snap_ids.is_empty() {
            sqlx::query!(
                "UPDATE event_snapshots SET next_waitlist_seq = v.s FROM UNNEST($1::uuid[], $2::bigint[]) AS v(e, s)
                 WHERE event_snapshots.event_id = v.e",
                &snap_ids,
                &seqs
            )
            .execute(conn)
            .await?;
        }
        Ok(())
    }

    /// `join.confirmed` / `join.waitlisted` per registration, and
    /// `join.counts_changed` per event.
    fn events(&self) -> Vec<NewEvent> {
        let mut out: Vec<NewEvent> = self
            .new_regs
            .iter()
            .map(|r| NewEvent {
                event_type: if r.status == "confirmed" {
                    "join.confirmed"
                } else {
                    "join.waitlisted"
                },
                aggregate_id: r.id.to_string(),
                payload: pb::RegistrationChanged {
                    registration: Some(r.to_pb(0)),
                    event_title: String::new(),
                }
                .encode_to_vec(),
            })
            .collect();
        let events: HashSet<Uuid> = self.new_regs.iter().map(|r| r.event_id).collect();
        for event in events {
            let tiers: Vec<(&String, &Tier)> = self
                .tiers
                .iter()
                .filter(|((e, _), _)| *e == event)
                .map(|((_, id), t)| (id, t))
                .collect();
            let counts = pb::GetCountsResponse {
                event_id: event.to_string(),
                confirmed: tiers.iter().map(|(_, t)| t.confirmed).sum(),
                waitlisted: tiers.iter().map(|(_, t)| t.waitlisted).sum(),
                tiers: tiers
                    .iter()
                    .map(|(id, t)| pb::TierCounts {
                        tier_id: (*id).clone(),
                        capacity: t.capacity,
                        confirmed: t.confirmed,
                        remaining: if t.capacity == 0 {
                            -1
                        } else {
                            (t.capacity - t.confirmed).max(0)
                        },
                    })
                    .collect(),
            };
            out.push(NewEvent {
                event_type: "join.counts_changed",
                aggregate_id: event.to_string(),
                payload: pb::CountsChanged {
                    counts: Some(counts),
                }
                .encode_to_vec(),
            });
        }
        out
    }
}
