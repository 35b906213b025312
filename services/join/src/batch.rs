//! The join hot path. Joins are queued per shard (events hash to shards);
//! each shard takes everything waiting, up to `max_batch`, and settles it in
//! one transaction: lock the events' snapshot and tier rows (in id order),
//! decide every join in arrival order against the locked counters, then one
//! multi-row insert, one counter update and one outbox batch. A burst of
//! joins costs one commit instead of one each, and the row locks keep every
//! replica's batches for an event in series, so capacity is never exceeded.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use cityevents_messaging::outbox::{self, NewEvent};
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{CancellationToken, Error, ErrorCode, Result};

use crate::answers;
use crate::metrics::JoinMetrics;
use crate::store::RegRow;

/// One join waiting for its batch.
pub struct JoinCommand {
    pub user: Uuid,
    pub event: Uuid,
    /// Empty for the event's default tier.
    pub tier: String,
    pub answers: Vec<pb::Answer>,
    /// Idempotency key and the request's hash.
    pub idempotency: Option<(String, Vec<u8>)>,
    pub reply: oneshot::Sender<Result<Outcome>>,
}

/// What a join produced.
pub enum Outcome {
    /// The registration (new or already there) and its waitlist position.
    Registration(RegRow, i32),
    /// The stored response of an earlier request with the same key.
    Stored(Vec<u8>),
}

/// Shard queues; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    shards: Arc<[mpsc::Sender<JoinCommand>]>,
}

/// The shard workers, run by the host until shutdown.
pub struct Workers {
    queues: Vec<mpsc::Receiver<JoinCommand>>,
    pool: PgPool,
    max_batch: usize,
    metrics: JoinMetrics,
}

/// Creates `shards` queues and their workers.
pub fn batcher(
    pool: PgPool,
    shards: usize,
    max_batch: usize,
    metrics: JoinMetrics,
) -> (Batcher, Workers) {
    let (senders, queues): (Vec<_>, Vec<_>) =
        (0..shards.max(1)).map(|_| mpsc::channel(8_192)).unzip();
    (
        Batcher {
            shards: senders.into(),
        },
        Workers {
            queues,
            pool,
            max_batch: max_batch.max(1),
            metrics,
        },
    )
}

impl Batcher {
    /// Queues a join and waits for its batch to settle.
    pub async fn submit(&self, cmd: JoinCommand) -> Result<Outcome> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        cmd.event.hash(&mut h);
        let shard = &self.shards[(h.finish() % self.shards.len() as u64) as usize];
        let rx = {
            let (tx, rx) = oneshot::channel();
            let cmd = JoinCommand { reply: tx, ..cmd };
            shard.send(cmd).await.map_err(|_| stopping())?;
            rx
        };
        rx.await.map_err(|_| stopping())?
    }
}

fn stopping() -> Error {
    Error::unavailable(anyhow::anyhow!("join batcher stopped"))
}

impl Workers {
    /// Runs every shard until `stop` fires.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let Workers {
            queues,
            pool,
            max_batch,
            metrics,
        } = self;
        let shards = queues
            .into_iter()
            .map(|q| shard(q, pool.clone(), max_batch, metrics.clone(), stop.clone()));
        futures::future::join_all(shards).await;
        Ok(())
    }
}

async fn shard(
    mut queue: mpsc::Receiver<JoinCommand>,
    pool: PgPool,
    max: usize,
    metrics: JoinMetrics,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => break,
            cmd = queue.recv() => match cmd { Some(c) => c, None => break },
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match queue.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        metrics.batch_size.observe(batch.len() as f64);
        settle(&pool, batch, &metrics).await;
    }
}

/// Runs one batch and answers every waiter.
async fn settle(pool: &PgPool, mut batch: Vec<JoinCommand>, metrics: &JoinMetrics) {
    let results = match run(pool, &mut batch).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, size = batch.len(), "join batch failed");
            batch
                .iter()
                .map(|_| Err(Error::unavailable(anyhow::anyhow!("join batch failed"))))
                .collect()
        }
    };
    for (cmd, result) in batch.into_iter().zip(results) {
        let label = match &result {
            Ok(Outcome::Registration(r, _)) => r.status.as_str(),
            Ok(Outcome::Stored(_)) => "replayed",
            Err(_) => "refused",
        };
        metrics.joins.with_label_values(&[label]).inc();
        let _ = cmd.reply.send(result);
    }
}

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
struct Ledger {
    snapshots: HashMap<Uuid, Snapshot>,
    tiers: HashMap<(Uuid, String), Tier>,
    regs: HashMap<(Uuid, Uuid), RegRow>,
    new_regs: Vec<RegRow>,
}

enum Pending {
    Done(Result<Outcome>),
    /// Another request holds the key: read its stored answer after commit.
    Replay,
    /// An earlier request of this batch has the same key.
    SameAs(usize),
}

async fn run(pool: &PgPool, batch: &mut [JoinCommand]) -> anyhow::Result<Vec<Result<Outcome>>> {
    let mut tx = pool.begin().await?;
    let mut ledger = lock(&mut tx, batch).await?;
    let claimed = claim_keys(&mut tx, batch).await?;
    let mut pending = Vec::with_capacity(batch.len());
    let mut first_with_key: HashMap<(Uuid, &str), usize> = HashMap::new();
    for (i, cmd) in batch.iter().enumerate() {
        if let Some((key, _)) = &cmd.idempotency {
            if let Some(&j) = first_with_key.get(&(cmd.user, key.as_str())) {
                pending.push(Pending::SameAs(j));
                continue;
            }
            first_with_key.insert((cmd.user, key.as_str()), i);
            if !claimed.contains(&(cmd.user, key.clone())) {
                pending.push(Pending::Replay);
                continue;
            }
        }
        pending.push(Pending::Done(ledger.decide(cmd)));
    }
    ledger.write(&mut tx).await?;
    store_responses(&mut tx, batch, &pending).await?;
    tx.commit().await?;
    resolve(pool, batch, pending).await
}

/// Locks the snapshot and tier rows of the batch's events, in id order, and
/// reads the registrations the batch's users already have.
async fn lock(conn: &mut PgConnection, batch: &[JoinCommand]) -> anyhow::Result<Ledger> {
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

/// Claims the batch's idempotency keys; returns the ones this batch owns.
async fn claim_keys(
    conn: &mut PgConnection,
    batch: &[JoinCommand],
) -> anyhow::Result<HashSet<(Uuid, String)>> {
    let (mut users, mut keys, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for cmd in batch {
        if let Some((key, hash)) = &cmd.idempotency {
            users.push(cmd.user);
            keys.push(key.clone());
            hashes.push(hash.clone());
        }
    }
    if users.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, expires_at)
         SELECT u, k, h, now() + interval '24 hours' FROM UNNEST($1::uuid[], $2::text[], $3::bytea[]) AS t(u, k, h)
         ON CONFLICT DO NOTHING RETURNING user_id, key",
        &users,
        &keys,
        &hashes
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.key)).collect())
}

fn refuse(code: ErrorCode, reason: &'static str, msg: &str) -> Error {
    Error::new(code, msg).with_reason(reason)
}

impl Ledger {
    /// Decides one join against the locked counters.
    fn decide(&mut self, cmd: &JoinCommand) -> Result<Outcome> {
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
    async fn write(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
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

/// Stores the first answer of each claimed key; frees keys whose join failed.
async fn store_responses(
    conn: &mut PgConnection,
    batch: &[JoinCommand],
    pending: &[Pending],
) -> anyhow::Result<()> {
    let (mut users, mut keys, mut responses, mut freed_users, mut freed_keys) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (cmd, p) in batch.iter().zip(pending) {
        let (Some((key, _)), Pending::Done(result)) = (&cmd.idempotency, p) else {
            continue;
        };
        match result {
            Ok(Outcome::Registration(row, position)) => {
                users.push(cmd.user);
                keys.push(key.clone());
                responses.push(
                    pb::JoinResponse {
                        registration: Some(row.to_pb(*position)),
                    }
                    .encode_to_vec(),
                );
            }
            _ => {
                freed_users.push(cmd.user);
                freed_keys.push(key.clone());
            }
        }
    }
    if !users.is_empty() {
        sqlx::query!(
            "UPDATE idempotency_keys SET response = v.r FROM UNNEST($1::uuid[], $2::text[], $3::bytea[]) AS v(u, k, r)
             WHERE user_id = v.u AND key = v.k",
            &users,
            &keys,
            &responses
        )
        .execute(&mut *conn)
        .await?;
    }
    if !freed_users.is_empty() {
        sqlx::query!(
            "DELETE FROM idempotency_keys USING UNNEST($1::uuid[], $2::text[]) AS v(u, k) WHERE user_id = v.u AND key = v.k",
            &freed_users,
            &freed_keys
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Turns pending results into answers; replays read the stored response.
async fn resolve(
    pool: &PgPool,
    batch: &[JoinCommand],
    pending: Vec<Pending>,
) -> anyhow::Result<Vec<Result<Outcome>>> {
    let mut out: Vec<Result<Outcome>> = Vec::with_capacity(batch.len());
    for (i, p) in pending.into_iter().enumerate() {
        let cmd = &batch[i];
        let result = match p {
            Pending::Done(r) => r,
            Pending::SameAs(j) if !same_hash(cmd, &batch[j]) => Err(key_reused()),
            Pending::SameAs(j) => match &out[j] {
                Ok(Outcome::Registration(row, pos)) => Ok(Outcome::Registration(row.clone(), *pos)),
                Ok(Outcome::Stored(bytes)) => Ok(Outcome::Stored(bytes.clone())),
                Err(_) => Err(Error::new(
                    ErrorCode::Conflict,
                    "a request with this idempotency key failed; retry it",
                )),
            },
            Pending::Replay => stored(pool, cmd).await?,
        };
        out.push(result);
    }
    Ok(out)
}

fn same_hash(a: &JoinCommand, b: &JoinCommand) -> bool {
    a.idempotency.as_ref().map(|k| &k.1) == b.idempotency.as_ref().map(|k| &k.1)
}

pub fn key_reused() -> Error {
    Error::new(
        ErrorCode::FailedPrecondition,
        "idempotency-key: already used for a different request",
    )
    .with_reason("IDEMPOTENCY_KEY_REUSED")
}

async fn stored(pool: &PgPool, cmd: &JoinCommand) -> anyhow::Result<Result<Outcome>> {
    let Some((key, hash)) = &cmd.idempotency else {
        return Ok(Err(key_reused()));
    };
    let row = sqlx::query!(
        "SELECT request_hash, response FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        cmd.user,
        key
    )
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(r) if &r.request_hash != hash => Err(key_reused()),
        Some(r) => match r.response {
            Some(bytes) => Ok(Outcome::Stored(bytes)),
            None => Err(Error::new(
                ErrorCode::Conflict,
                "a request with this idempotency key is in progress; retry",
            )),
        },
        None => Err(Error::new(
            ErrorCode::Conflict,
            "a request with this idempotency key failed; retry it",
        )),
    })
}
