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

use prost::Message;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, PgConnection, PgPool, Postgres};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{CancellationToken, Error, ErrorCode, Result};

mod ledger;

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
    // The shard keeps its connection between batches (no pool round trip,
    // no liveness ping per batch) and takes a fresh one after a failure.
    let mut conn: Option<PoolConnection<Postgres>> = None;
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
        settle(&pool, &mut conn, batch, &metrics).await;
    }
}

/// Runs one batch and answers every waiter.
async fn settle(
    pool: &PgPool,
    conn: &mut Option<PoolConnection<Postgres>>,
    mut batch: Vec<JoinCommand>,
    metrics: &JoinMetrics,
) {
    let outcome = match conn {
        Some(c) => run(c, &mut batch).await,
        None => match pool.acquire().await {
            Ok(c) => run(conn.insert(c), &mut batch).await,
            Err(e) => Err(e.into()),
        },
    };
    let results = match outcome {
        Ok(r) => r,
        Err(e) => {
            // The connection may be broken or mid-transaction: close it.
            if let Some(mut c) = conn.take() {
                c.close_on_drop();
            }
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

enum Pending {
    Done(Result<Outcome>),
    /// Another request holds the key: read its stored answer after commit.
    Replay,
    /// An earlier request of this batch has the same key.
    SameAs(usize),
}

/// Settles a batch. Most joins are a user's first for the event, so the
/// batch first assumes so and skips reading registrations; if its insert
/// meets one that still holds a place, it rolls back and settles again with
/// the users' registrations read.
async fn run(
    conn: &mut PgConnection,
    batch: &mut [JoinCommand],
) -> anyhow::Result<Vec<Result<Outcome>>> {
    if let Some(done) = attempt(conn, batch, Existing::AssumedNone).await? {
        return Ok(done);
    }
    attempt(conn, batch, Existing::Read)
        .await?
        .ok_or_else(|| anyhow::anyhow!("join batch met registrations it had read as absent"))
}

/// What a batch knows of its users' registrations before deciding.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// None holds a place (checked when inserting).
    AssumedNone,
    /// Read under the event's lock.
    Read,
}

/// One try at a batch; `None` when the assumption about existing
/// registrations was wrong (nothing was written).
async fn attempt(
    conn: &mut PgConnection,
    batch: &mut [JoinCommand],
    existing: Existing,
) -> anyhow::Result<Option<Vec<Result<Outcome>>>> {
    let mut tx = conn.begin().await?;
    let mut ledger = ledger::lock(&mut tx, batch, existing).await?;
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
    if !ledger.write(&mut tx).await? {
        tx.rollback().await?;
        return Ok(None);
    }
    store_responses(&mut tx, batch, &pending).await?;
    tx.commit().await?;
    resolve(conn, batch, pending).await.map(Some)
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
    conn: &mut PgConnection,
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
            Pending::Replay => stored(conn, cmd).await?,
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

async fn stored(conn: &mut PgConnection, cmd: &JoinCommand) -> anyhow::Result<Result<Outcome>> {
    let Some((key, hash)) = &cmd.idempotency else {
        return Ok(Err(key_reused()));
    };
    let row = sqlx::query!(
        "SELECT request_hash, response FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        cmd.user,
        key
    )
    .fetch_optional(conn)
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
