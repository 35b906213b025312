//! The batch's view of the rows it locked: the events' snapshots and tiers
//! and the users' registrations, updated as each join is decided, then
//! written back in bulk.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_messaging::outbox::{self, NewEvent};
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{Error, ErrorCode};

use super::JoinCommand;
use crate::answers;
use crate::status::{EventStatus, RegStatus};
use crate::store::{self, PositionedRow, RegRow, TierCounters};

/// What a batch knows of its users' registrations before deciding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Existing {
    /// Assumed absent: most joins are a user's first for the event. The
    /// insert checks it; a refusal for room looks them up.
    AssumedNone,
    /// Read under the event's lock.
    Read,
}

/// What one join comes to, against the locked counters.
pub(super) enum Decision {
    /// A new registration (a place or a waitlist entry) and its position.
    New(RegRow, i32),
    /// The user already holds this registration; it is the answer.
    Held(RegRow, i32),
    /// No place and no room on the waitlist (the user may hold one already
    /// when registrations were [`Existing::AssumedNone`]).
    Full,
    /// Refused for another reason, nothing taken.
    Refused(Error),
}

struct Snapshot {
    title: String,
    status: EventStatus,
    hidden: bool,
    ends_at: DateTime<Utc>,
    waitlist_cap: i32,
    questions: Vec<ev::Question>,
    default_tier: String,
    next_seq: i64,
    /// The sum of the offered tiers' capacities; `None` when one is unlimited.
    capacity: Option<i64>,
    /// Places held in every tier, removed ones included.
    confirmed: i64,
    waitlisted: i64,
    touched: bool,
}

#[derive(Clone, Copy)]
struct Tier {
    capacity: i32,
    confirmed: i32,
    waitlisted: i32,
    removed: bool,
    touched: bool,
}

impl Snapshot {
    /// Refuses joins to events that are not open.
    fn check_open(&self, now: DateTime<Utc>) -> Result<(), Error> {
        match self.status {
            EventStatus::Draft => Err(refuse(
                ErrorCode::FailedPrecondition,
                "EVENT_NOT_PUBLISHED",
                "the event is not published yet",
            )),
            EventStatus::Cancelled => Err(refuse(
                ErrorCode::FailedPrecondition,
                "EVENT_CANCELLED",
                "the event has been cancelled",
            )),
            _ if self.hidden => Err(refuse(
                ErrorCode::FailedPrecondition,
                "EVENT_HIDDEN",
                "the event has been hidden by a moderator",
            )),
            _ if self.ends_at <= now => Err(refuse(
                ErrorCode::FailedPrecondition,
                "EVENT_PAST",
                "the event is over",
            )),
            EventStatus::Published => Ok(()),
        }
    }

    fn has_room(&self) -> bool {
        self.capacity.is_none_or(|c| self.confirmed < c)
    }

    fn waitlist_has_room(&self) -> bool {
        self.waitlist_cap == 0 || self.waitlisted < i64::from(self.waitlist_cap)
    }
}

impl Tier {
    fn has_room(&self) -> bool {
        self.capacity == 0 || self.confirmed < self.capacity
    }
}

/// The batch's view of the locked rows, updated as joins are decided.
pub(super) struct Ledger {
    snapshots: HashMap<Uuid, Snapshot>,
    tiers: BTreeMap<(Uuid, String), Tier>,
    /// Registrations that hold a place or a waitlist entry, with positions.
    regs: HashMap<(Uuid, Uuid), (RegRow, i32)>,
    new_regs: Vec<RegRow>,
    /// The `traceparent` of the join that made each of `new_regs`.
    new_traces: Vec<String>,
}

/// Locks the snapshot and tier rows of the batch's events (each event's
/// snapshot, then its tiers, events in id order: the order every writer
/// takes them in) and reads the registrations the batch's users already
/// have, if asked to.
pub(super) async fn lock(
    conn: &mut PgConnection,
    batch: &[JoinCommand],
    existing: Existing,
) -> anyhow::Result<Ledger> {
    let mut events: Vec<Uuid> = batch.iter().map(|c| c.event).collect();
    events.sort_unstable();
    events.dedup();
    let rows = sqlx::query!(
        r#"SELECT s.event_id, s.title, s.status AS "status: EventStatus", s.hidden, s.ends_at, s.waitlist_cap,
                s.questions, s.default_tier, s.next_waitlist_seq,
                t.tier_id, t.capacity, t.confirmed, t.waitlisted, t.removed
         FROM event_snapshots s JOIN tiers t USING (event_id)
         WHERE s.event_id = ANY($1) AND t.event_id = ANY($1)
         ORDER BY s.event_id, t.tier_id FOR UPDATE"#,
        &events
    )
    .fetch_all(&mut *conn)
    .await?;
    let regs = match existing {
        Existing::AssumedNone => Vec::new(),
        Existing::Read => held(conn, batch.iter().map(|c| (c.event, c.user))).await?,
    };
    let mut snapshots: HashMap<Uuid, Snapshot> = HashMap::new();
    let mut tiers = BTreeMap::new();
    for s in rows {
        let tier = Tier {
            capacity: s.capacity,
            confirmed: s.confirmed,
            waitlisted: s.waitlisted,
            removed: s.removed,
            touched: false,
        };
        let snap = snapshots.entry(s.event_id).or_insert_with(|| Snapshot {
            title: s.title,
            status: s.status,
            hidden: s.hidden,
            ends_at: s.ends_at,
            waitlist_cap: s.waitlist_cap,
            questions: ev::EventDraft::decode(s.questions.as_slice())
                .map(|d| d.questions)
                .unwrap_or_default(),
            default_tier: s.default_tier,
            next_seq: s.next_waitlist_seq,
            capacity: Some(0),
            confirmed: 0,
            waitlisted: 0,
            touched: false,
        });
        snap.confirmed += i64::from(tier.confirmed);
        snap.waitlisted += i64::from(tier.waitlisted);
        if !tier.removed {
            snap.capacity = match (snap.capacity, tier.capacity) {
                (_, 0) | (None, _) => None,
                (Some(sum), c) => Some(sum + i64::from(c)),
            };
        }
        tiers.insert((s.event_id, s.tier_id), tier);
    }
    let regs = regs
        .into_iter()
        .map(|(r, position)| ((r.event_id, r.user_id), (r, position)))
        .collect();
    Ok(Ledger {
        snapshots,
        tiers,
        regs,
        new_regs: Vec::new(),
        new_traces: Vec::new(),
    })
}

/// The registrations that hold a place or a waitlist entry among
/// `(event, user)` pairs, each with its waitlist position (0 for a place).
pub(super) async fn held(
    conn: &mut PgConnection,
    pairs: impl Iterator<Item = (Uuid, Uuid)>,
) -> anyhow::Result<Vec<(RegRow, i32)>> {
    let (evs, users): (Vec<Uuid>, Vec<Uuid>) = pairs.unzip();
    let rows = sqlx::query_as!(
        PositionedRow,
        r#"SELECT r.id, r.event_id, r.user_id, r.tier_id, r.status AS "status: RegStatus", r.waitlist_seq, r.answers,
                  r.created_at, r.updated_at,
                  CASE WHEN r.status = 'waitlisted' THEN
                    (SELECT count(*) FROM registrations w WHERE w.event_id = r.event_id AND w.tier_id = r.tier_id
                       AND w.status = 'waitlisted' AND w.waitlist_seq <= r.waitlist_seq)
                  ELSE 0 END AS "position!"
           FROM registrations r JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(e, u) ON r.event_id = k.e AND r.user_id = k.u
           WHERE r.status <> 'cancelled'"#,
        &evs,
        &users
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(PositionedRow::split).collect())
}

fn refuse(code: ErrorCode, reason: &'static str, msg: &str) -> Error {
    Error::new(code, msg).with_reason(reason)
}

/// The answer to a join that found no room.
pub(super) fn full() -> Error {
    refuse(
        ErrorCode::ResourceExhausted,
        "WAITLIST_FULL",
        "the event and its waitlist are full",
    )
}

impl Ledger {
    /// Decides one join against the locked counters: a place while the
    /// tier and the event have room, else a waitlist entry while the
    /// waitlist has room.
    pub(super) fn decide(&mut self, cmd: &JoinCommand) -> Decision {
        let now = Utc::now();
        let Some(snap) = self.snapshots.get_mut(&cmd.event) else {
            return Decision::Refused(Error::no_such_event());
        };
        if let Err(e) = snap.check_open(now) {
            return Decision::Refused(e);
        }
        if let Some((row, position)) = self.regs.get(&(cmd.event, cmd.user)) {
            // One registration per user per event: a repeat gets it back.
            return Decision::Held(row.clone(), *position);
        }
        let answers = match answers::validate(&snap.questions, &cmd.answers) {
            Ok(a) => a,
            Err(e) => return Decision::Refused(e),
        };
        let tier_id = if cmd.tier.is_empty() {
            snap.default_tier.clone()
        } else {
            cmd.tier.clone()
        };
        let Some(tier) = self.tiers.get_mut(&(cmd.event, tier_id.clone())) else {
            return Decision::Refused(Error::invalid("tier_id", "is not a tier of this event"));
        };
        if tier.removed {
            return Decision::Refused(refuse(
                ErrorCode::FailedPrecondition,
                "TIER_REMOVED",
                "tier_id: the organizer no longer offers this tier",
            ));
        }
        let (status, seq, position) = if tier.has_room() && snap.has_room() {
            tier.confirmed += 1;
            snap.confirmed += 1;
            (RegStatus::Confirmed, None, 0)
        } else if snap.waitlist_has_room() {
            tier.waitlisted += 1;
            snap.waitlisted += 1;
            snap.next_seq += 1;
            snap.touched = true;
            (
                RegStatus::Waitlisted,
                Some(snap.next_seq - 1),
                tier.waitlisted,
            )
        } else {
            return Decision::Full;
        };
        tier.touched = true;
        let row = RegRow {
            id: Uuid::now_v7(),
            event_id: cmd.event,
            user_id: cmd.user,
            tier_id,
            status,
            waitlist_seq: seq,
            answers: pb::JoinRequest {
                answers,
                ..Default::default()
            }
            .encode_to_vec(),
            created_at: now,
            updated_at: now,
        };
        self.regs
            .insert((cmd.event, cmd.user), (row.clone(), position));
        self.new_regs.push(row.clone());
        self.new_traces.push(cmd.traceparent.clone());
        Decision::New(row, position)
    }

    /// Writes the batch in one statement: the registrations, the touched
    /// tier counters and waitlist sequences, and the outbox rows. False when
    /// a registration met one that holds a place (see [`Existing`]); the
    /// caller rolls back.
    pub(super) async fn write(&self, conn: &mut PgConnection) -> anyhow::Result<bool> {
        if self.new_regs.is_empty() {
            return Ok(true);
        }
        let r = &self.new_regs;
        let ids: Vec<Uuid> = r.iter().map(|r| r.id).collect();
        let events: Vec<Uuid> = r.iter().map(|r| r.event_id).collect();
        let users: Vec<Uuid> = r.iter().map(|r| r.user_id).collect();
        let tiers: Vec<String> = r.iter().map(|r| r.tier_id.clone()).collect();
        let statuses: Vec<&str> = r.iter().map(|r| r.status.as_str()).collect();
        let seqs: Vec<Option<i64>> = r.iter().map(|r| r.waitlist_seq).collect();
        let answers: Vec<Vec<u8>> = r.iter().map(|r| r.answers.clone()).collect();
        let touched: Vec<_> = self.tiers.iter().filter(|(_, t)| t.touched).collect();
        let tier_events: Vec<Uuid> = touched.iter().map(|((e, _), _)| *e).collect();
        let tier_ids: Vec<String> = touched.iter().map(|((_, t), _)| t.clone()).collect();
        let confirmed: Vec<i32> = touched.iter().map(|(_, t)| t.confirmed).collect();
        let waitlisted: Vec<i32> = touched.iter().map(|(_, t)| t.waitlisted).collect();
        let (snap_ids, next_seqs): (Vec<Uuid>, Vec<i64>) = self
            .snapshots
            .iter()
            .filter(|(_, s)| s.touched)
            .map(|(id, s)| (*id, s.next_seq))
            .unzip();
        let out = outbox::Rows::new(self.events());
        // A user who left and comes back reuses their row with a new id.
        let written = sqlx::query!(
            r#"WITH regs AS (
                 INSERT INTO registrations (id, event_id, user_id, tier_id, status, waitlist_seq, answers)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bigint[], $7::bytea[])
                 ON CONFLICT (event_id, user_id) DO UPDATE SET
                   id = EXCLUDED.id, tier_id = EXCLUDED.tier_id, status = EXCLUDED.status,
                   waitlist_seq = EXCLUDED.waitlist_seq, answers = EXCLUDED.answers,
                   created_at = now(), updated_at = now()
                 WHERE registrations.status = 'cancelled'
                 RETURNING 1
               ), counters AS (
                 UPDATE tiers SET confirmed = v.c, waitlisted = v.w
                 FROM UNNEST($8::uuid[], $9::text[], $10::int[], $11::int[]) AS v(e, t, c, w)
                 WHERE tiers.event_id = v.e AND tiers.tier_id = v.t AND tiers.event_id = ANY($8)
                 RETURNING 1
               ), seqs AS (
                 UPDATE event_snapshots SET next_waitlist_seq = v.s
                 FROM UNNEST($12::uuid[], $13::bigint[]) AS v(e, s)
                 WHERE event_snapshots.event_id = v.e AND event_snapshots.event_id = ANY($12)
                 RETURNING 1
               ), events AS (
                 INSERT INTO outbox (id, event_type, aggregate_id, payload, traceparent)
                 SELECT * FROM UNNEST($14::uuid[], $15::text[], $16::text[], $17::bytea[], $18::text[])
                 RETURNING 1
               )
               SELECT (SELECT count(*) FROM regs) AS "regs!", (SELECT count(*) FROM counters) AS "counters!",
                      (SELECT count(*) FROM seqs) AS "seqs!", (SELECT count(*) FROM events) AS "events!""#,
            &ids,
            &events,
            &users,
            &tiers,
            &statuses as &[&str],
            &seqs as &[Option<i64>],
            &answers,
            &tier_events,
            &tier_ids,
            &confirmed,
            &waitlisted,
            &snap_ids,
            &next_seqs,
            &out.ids,
            &out.types,
            &out.aggregates,
            &out.payloads,
            &out.traceparents,
        )
        .fetch_one(conn)
        .await?;
        // The counters and sequences were locked above, so those writes land.
        anyhow::ensure!(
            (written.counters, written.seqs, written.events)
                == (
                    tier_ids.len() as i64,
                    snap_ids.len() as i64,
                    out.ids.len() as i64
                ),
            "join batch wrote other rows than it decided"
        );
        Ok(written.regs == ids.len() as i64)
    }

    /// `join.confirmed` / `join.waitlisted` per registration, each with its
    /// event's counts as this batch leaves them.
    fn events(&self) -> Vec<NewEvent> {
        let mut counts: HashMap<Uuid, pb::GetCountsResponse> = HashMap::new();
        self.new_regs
            .iter()
            .zip(&self.new_traces)
            .map(|(r, traceparent)| {
                let counts = counts
                    .entry(r.event_id)
                    .or_insert_with(|| store::counts_of(r.event_id, self.counters(r.event_id)))
                    .clone();
                let title = self
                    .snapshots
                    .get(&r.event_id)
                    .map_or("", |s| s.title.as_str());
                NewEvent {
                    event_type: if r.status == RegStatus::Confirmed {
                        "join.confirmed"
                    } else {
                        "join.waitlisted"
                    },
                    aggregate_id: r.id.to_string(),
                    payload: r.changed(title, counts).encode_to_vec(),
                    traceparent: traceparent.clone(),
                }
            })
            .collect()
    }

    /// The event's tier counters as this batch leaves them, in id order.
    fn counters(&self, event: Uuid) -> impl Iterator<Item = TierCounters> + '_ {
        self.tiers
            .range((event, String::new())..)
            .take_while(move |((e, _), _)| *e == event)
            .map(|((_, id), t)| TierCounters {
                tier_id: id.clone(),
                capacity: t.capacity,
                confirmed: t.confirmed,
                waitlisted: t.waitlisted,
                removed: t.removed,
            })
    }
}
