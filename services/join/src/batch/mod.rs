//! The join hot path. Joins are queued per shard (events hash to shards);
//! each shard takes everything waiting, up to `max_batch`, and settles it in
//! one transaction ([`settle`]): lock the events' snapshot and tier rows (in
//! id order), leave out joins whose caller has gone, decide every other join
//! in arrival order against the locked counters, then one multi-row insert,
//! one counter update and one outbox batch. A burst of joins costs one
//! commit instead of one each, and the row locks keep every replica's
//! batches for an event in series, so capacity is never exceeded.
//!
//! Admission: a join is refused at once (RESOURCE_EXHAUSTED with
//! `retry-after`, nothing taken) when its shard's queue is full, or when the
//! batches queued ahead of it (one per `max_batch` joins, at the recent
//! batch time) would outlast its deadline. The excess of an
//! overload is answered fast and the rest within their deadlines, instead of
//! a queue in which every caller times out.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::pool::PoolConnection;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{CancellationToken, Error, ErrorCode, Result};

mod keys;
mod ledger;
mod settle;

pub use keys::{IdempotencyKey, key_reused, sweep_expired, sweeper};

use crate::metrics::JoinMetrics;
use crate::store::RegRow;

/// One join waiting for its batch.
pub struct JoinCommand {
    pub user: Uuid,
    pub event: Uuid,
    /// Empty for the event's default tier.
    pub tier: String,
    pub answers: Vec<pb::Answer>,
    pub idempotency: Option<IdempotencyKey>,
    /// When the caller stops waiting; a join still queued then takes nothing.
    pub deadline: Option<Instant>,
    /// The caller's W3C `traceparent`: its events carry it, and the batch
    /// span links to it.
    pub traceparent: String,
    pub reply: oneshot::Sender<Result<Outcome>>,
}

impl JoinCommand {
    /// Whether nobody waits for the answer any more (cancelled, or past
    /// its deadline): such a join is left out before the batch decides.
    fn is_gone(&self, now: Instant) -> bool {
        self.reply.is_closed() || self.deadline.is_some_and(|d| d <= now)
    }
}

/// What a join produced.
pub enum Outcome {
    /// The registration (new or already held) and its waitlist position
    /// (0 for a place).
    Registration(RegRow, i32),
    /// The stored response of an earlier request with the same key.
    Stored(Vec<u8>),
}

/// Shard queues; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    shards: Arc<[Shard]>,
}

struct Shard {
    queue: mpsc::Sender<JoinCommand>,
    load: Arc<Load>,
}

/// What a shard's admission needs to know: how much is queued and how long
/// the recent batches took.
struct Load {
    queued: AtomicUsize,
    max_batch: usize,
    /// Moving average of a batch's time, in nanoseconds.
    batch_ns: AtomicU64,
}

impl Load {
    fn new(max_batch: usize) -> Self {
        Self {
            queued: AtomicUsize::new(0),
            max_batch: max_batch.max(1),
            batch_ns: AtomicU64::new(0),
        }
    }

    /// How long a join queued now would wait for its answer: the batch in
    /// progress, then one batch per `max_batch` joins ahead of it. A batch
    /// costs mostly its round trips, so a longer queue means fuller
    /// batches, not proportionally longer ones.
    fn expected_wait(&self) -> Duration {
        let queued = self.queued.load(Ordering::Relaxed);
        let batches = queued.div_ceil(self.max_batch) as u64 + 1;
        Duration::from_nanos(batches.saturating_mul(self.batch_ns.load(Ordering::Relaxed)))
    }

    /// Folds one batch's time into the average (weight 1/4).
    fn record(&self, took: Duration) {
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let ewma = |old: u64| {
            if old == 0 {
                took
            } else {
                (old / 4) * 3 + took / 4
            }
        };
        let _ = self
            .batch_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| Some(ewma(o)));
    }
}

/// The shard workers, run by the host until shutdown.
pub struct Workers {
    queues: Vec<(mpsc::Receiver<JoinCommand>, Arc<Load>)>,
    pool: PgPool,
    max_batch: usize,
    metrics: JoinMetrics,
}

/// Creates `shards` queues of `max_queue` joins each, and their workers.
pub fn batcher(
    pool: PgPool,
    shards: usize,
    max_batch: usize,
    max_queue: usize,
    metrics: JoinMetrics,
) -> (Batcher, Workers) {
    let (senders, queues): (Vec<_>, Vec<_>) = (0..shards.max(1))
        .map(|_| {
            let (tx, rx) = mpsc::channel(max_queue.max(1));
            let load = Arc::new(Load::new(max_batch));
            (
                Shard {
                    queue: tx,
                    load: load.clone(),
                },
                (rx, load),
            )
        })
        .unzip();
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
    /// Queues a join and waits for its batch to settle; refuses it at once
    /// when the shard cannot answer it in time.
    pub async fn submit(&self, cmd: JoinCommand) -> Result<Outcome> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        cmd.event.hash(&mut h);
        let shard = &self.shards[(h.finish() % self.shards.len() as u64) as usize];
        let wait = shard.load.expected_wait();
        if cmd.deadline.is_some_and(|d| Instant::now() + wait >= d) {
            return Err(overloaded(wait));
        }
        let (tx, rx) = oneshot::channel();
        let cmd = JoinCommand { reply: tx, ..cmd };
        // Counted before sending, so the worker's decrement never comes first.
        shard.load.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = shard.queue.try_send(cmd) {
            shard.load.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => overloaded(wait),
                mpsc::error::TrySendError::Closed(_) => stopping(),
            });
        }
        rx.await.map_err(|_| stopping())?
    }
}

fn overloaded(wait: Duration) -> Error {
    Error::new(
        ErrorCode::ResourceExhausted,
        "the join service is at capacity and could not answer in time; nothing was taken, retry after the delay in retry-after",
    )
    .with_reason("OVERLOADED")
    .with_retry_after(wait.max(Duration::from_secs(1)))
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
        let shards = queues.into_iter().map(|(queue, load)| {
            let worker = ShardWorker {
                queue,
                load,
                pool: pool.clone(),
                max_batch,
                metrics: metrics.clone(),
                conn: None,
            };
            worker.run(stop.clone())
        });
        futures::future::join_all(shards).await;
        Ok(())
    }
}

/// One shard: takes what is queued, settles it, repeats.
struct ShardWorker {
    queue: mpsc::Receiver<JoinCommand>,
    load: Arc<Load>,
    pool: PgPool,
    max_batch: usize,
    metrics: JoinMetrics,
    /// Kept between batches (no pool round trip, no liveness ping per
    /// batch); a fresh one is taken after a failure.
    conn: Option<PoolConnection<sqlx::Postgres>>,
}

impl ShardWorker {
    async fn run(mut self, stop: CancellationToken) {
        // Repeats of an idempotency key wait for the batch after their
        // first copy's, which answers them from the stored response.
        let mut deferred = Vec::new();
        loop {
            let mut batch = std::mem::take(&mut deferred);
            let carried = batch.len();
            if batch.is_empty() {
                tokio::select! {
                    () = stop.cancelled() => break,
                    cmd = self.queue.recv() => match cmd {
                        Some(c) => batch.push(c),
                        None => break,
                    },
                }
            }
            while batch.len() < self.max_batch {
                match self.queue.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.load
                .queued
                .fetch_sub(batch.len() - carried, Ordering::Relaxed);
            self.metrics.batch_size.observe(batch.len() as f64);
            let started = Instant::now();
            deferred = settle::settle(&self.pool, &mut self.conn, batch, &self.metrics).await;
            self.load.record(started.elapsed());
        }
    }
}
