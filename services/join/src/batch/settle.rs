//! One batch, one transaction, in named phases:
//!
//! 1. **lock** the events' rows ([`ledger::lock`]);
//! 2. **leave out** joins whose caller has gone (they take nothing);
//! 3. **claim** the idempotency keys;
//! 4. **decide** each join in arrival order;
//! 5. **write** registrations, counters and outbox rows in one statement;
//! 6. **look up** what refused rejoiners already hold and what repeats of a
//!    key were answered before;
//! 7. **record** the keys' answers, and **commit**.
//!
//! Every answer is built from what the transaction itself read and wrote:
//! nothing runs after the commit that could turn a committed seat into an
//! error. A failed statement fails the batch, which is split in halves and
//! tried again, so one bad join cannot fail hundreds of others.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::future::BoxFuture;
use prost::Message;
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, PgConnection, PgPool, Postgres};

use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use super::keys::{self, KeyId, key_reused};
use super::ledger::{self, Decision, Existing, Ledger};
use tracing::Instrument;

use super::{JoinCommand, Outcome};
use crate::metrics::JoinMetrics;

/// What a batch says to one waiter.
enum Answer {
    /// The join's result.
    Decided(Result<Outcome>),
    /// Nobody was waiting any more; the join took nothing.
    Gone,
}

/// Settles `batch` and answers every waiter. Returns the repeats of an
/// idempotency key already in the batch, for the next batch, where their
/// first copy's stored answer is theirs.
pub(super) async fn settle(
    pool: &PgPool,
    conn: &mut Option<PoolConnection<Postgres>>,
    batch: Vec<JoinCommand>,
    metrics: &JoinMetrics,
) -> Vec<JoinCommand> {
    // One span for the batch, linked to every join it settles (each
    // join's own trace goes on through the events it wrote).
    let span = tracing::info_span!("join.settle", joins = batch.len());
    for cmd in &batch {
        cityevents_runtime::telemetry::add_link(&span, &cmd.traceparent);
    }
    settle_in(pool, conn, batch, metrics).instrument(span).await
}

async fn settle_in(
    pool: &PgPool,
    conn: &mut Option<PoolConnection<Postgres>>,
    batch: Vec<JoinCommand>,
    metrics: &JoinMetrics,
) -> Vec<JoinCommand> {
    let (batch, deferred) = defer_repeated_keys(batch);
    let answers = settle_or_split(pool, conn, &batch).await;
    for (cmd, answer) in batch.into_iter().zip(answers) {
        let (label, result) = match answer {
            Answer::Decided(Ok(o)) => (outcome_label(&o), Ok(o)),
            Answer::Decided(Err(e)) => {
                metrics.refusals.with_label_values(&[e.reason()]).inc();
                ("refused", Err(e))
            }
            Answer::Gone => ("expired", Err(gone())),
        };
        metrics.joins.with_label_values(&[label]).inc();
        let _ = cmd.reply.send(result);
    }
    deferred
}

fn outcome_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Registration(r, _) => r.status.as_str(),
        Outcome::Stored(_) => "replayed",
    }
}

fn gone() -> Error {
    Error::new(
        ErrorCode::DeadlineExceeded,
        "the deadline passed before the join was decided; nothing was taken",
    )
}

/// Splits off every copy of a `(user, key)` after its first.
fn defer_repeated_keys(batch: Vec<JoinCommand>) -> (Vec<JoinCommand>, Vec<JoinCommand>) {
    let mut seen = HashSet::new();
    batch.into_iter().partition(|cmd| match &cmd.idempotency {
        Some(k) => seen.insert((cmd.user, k.key.clone())),
        None => true,
    })
}

/// Settles `batch`; on a failed statement, settles each half on its own.
fn settle_or_split<'a>(
    pool: &'a PgPool,
    conn: &'a mut Option<PoolConnection<Postgres>>,
    batch: &'a [JoinCommand],
) -> BoxFuture<'a, Vec<Answer>> {
    Box::pin(async move {
        let error = match transact(pool, conn, batch).await {
            Ok(answers) => return answers,
            Err(e) => e,
        };
        // The connection may be broken or mid-transaction: close it.
        if let Some(mut c) = conn.take() {
            c.close_on_drop();
        }
        if batch.len() > 1 && is_statement_error(&error) {
            tracing::warn!(
                error = format!("{error:#}"),
                size = batch.len(),
                "join batch failed; splitting it"
            );
            let (a, b) = batch.split_at(batch.len() / 2);
            let mut answers = settle_or_split(pool, conn, a).await;
            answers.extend(settle_or_split(pool, conn, b).await);
            return answers;
        }
        tracing::error!(
            error = format!("{error:#}"),
            size = batch.len(),
            "join batch failed"
        );
        batch
            .iter()
            .map(|_| {
                Answer::Decided(Err(Error::unavailable(anyhow::anyhow!(
                    "join batch failed"
                ))))
            })
            .collect()
    })
}

/// A statement the database refused (a deadlock, a constraint): splitting
/// the batch isolates it. A lost connection or an exhausted pool is not.
fn is_statement_error(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<sqlx::Error>(),
        Some(sqlx::Error::Database(_))
    )
}

async fn transact(
    pool: &PgPool,
    conn: &mut Option<PoolConnection<Postgres>>,
    batch: &[JoinCommand],
) -> anyhow::Result<Vec<Answer>> {
    let conn = match conn {
        Some(c) => c,
        None => conn.insert(pool.acquire().await?),
    };
    // Most joins are a user's first for the event, so the batch first
    // assumes so; if its insert meets a registration that holds a place, it
    // rolls back and settles again with the registrations read.
    if let Some(answers) = attempt(conn, batch, Existing::AssumedNone).await? {
        return Ok(answers);
    }
    attempt(conn, batch, Existing::Read)
        .await?
        .ok_or_else(|| anyhow::anyhow!("join batch met registrations it had read as absent"))
}

/// A join's place in the batch before the look-ups of phase 6.
enum Step {
    Gone,
    Decided(Decision),
    /// Its key is held by an earlier request: answered from what is stored.
    Replay,
}

/// One try at a batch; `None` when the assumption about existing
/// registrations was wrong (nothing was written).
async fn attempt(
    conn: &mut PgConnection,
    batch: &[JoinCommand],
    existing: Existing,
) -> anyhow::Result<Option<Vec<Answer>>> {
    let mut tx = conn.begin().await?;
    let mut ledger = ledger::lock(&mut tx, batch, existing).await?;
    let now = Instant::now();
    let live: Vec<bool> = batch.iter().map(|c| !c.is_gone(now)).collect();
    let claimed = keys::claim(&mut tx, keys_of(batch, &live)).await?;
    let steps = decide(&mut ledger, batch, &live, &claimed);
    if !ledger.write(&mut tx).await? {
        tx.rollback().await?;
        return Ok(None);
    }
    let answers = look_up(&mut tx, batch, steps, existing).await?;
    record_keys(&mut tx, batch, &answers, &claimed).await?;
    tx.commit().await?;
    Ok(Some(answers))
}

/// The keys of the joins still waited for, with their request hashes.
fn keys_of(batch: &[JoinCommand], live: &[bool]) -> Vec<(KeyId, Vec<u8>)> {
    batch
        .iter()
        .zip(live)
        .filter(|(_, live)| **live)
        .filter_map(|(c, _)| {
            let k = c.idempotency.as_ref()?;
            Some(((c.user, k.key.clone()), k.hash.clone()))
        })
        .collect()
}

fn decide(
    ledger: &mut Ledger,
    batch: &[JoinCommand],
    live: &[bool],
    claimed: &HashSet<KeyId>,
) -> Vec<Step> {
    batch
        .iter()
        .zip(live)
        .map(|(cmd, live)| match &cmd.idempotency {
            _ if !live => Step::Gone,
            Some(k) if !claimed.contains(&(cmd.user, k.key.clone())) => Step::Replay,
            _ => Step::Decided(ledger.decide(cmd)),
        })
        .collect()
}

/// Turns steps into answers: a join refused for room whose user already
/// holds a registration gets it back; a repeated key gets its first answer.
async fn look_up(
    conn: &mut PgConnection,
    batch: &[JoinCommand],
    steps: Vec<Step>,
    existing: Existing,
) -> anyhow::Result<Vec<Answer>> {
    let full: Vec<_> = batch
        .iter()
        .zip(&steps)
        .filter(|(_, s)| matches!(s, Step::Decided(Decision::Full)))
        .map(|(c, _)| (c.event, c.user))
        .collect();
    let held: HashMap<_, _> = if existing == Existing::AssumedNone && !full.is_empty() {
        ledger::held(conn, full.into_iter())
            .await?
            .into_iter()
            .map(|(r, p)| ((r.event_id, r.user_id), (r, p)))
            .collect()
    } else {
        HashMap::new()
    };
    let replays: Vec<KeyId> = batch
        .iter()
        .zip(&steps)
        .filter(|(_, s)| matches!(s, Step::Replay))
        .filter_map(|(c, _)| Some((c.user, c.idempotency.as_ref()?.key.clone())))
        .collect();
    let stored = keys::stored(conn, &replays).await?;
    Ok(batch
        .iter()
        .zip(steps)
        .map(|(cmd, step)| match step {
            Step::Gone => Answer::Gone,
            Step::Decided(Decision::New(row, p) | Decision::Held(row, p)) => {
                Answer::Decided(Ok(Outcome::Registration(row, p)))
            }
            Step::Decided(Decision::Full) => Answer::Decided(
                held.get(&(cmd.event, cmd.user))
                    .map(|(row, p)| Outcome::Registration(row.clone(), *p))
                    .ok_or_else(ledger::full),
            ),
            Step::Decided(Decision::Refused(e)) => Answer::Decided(Err(e)),
            Step::Replay => Answer::Decided(replay(cmd, &stored)),
        })
        .collect())
}

fn replay(cmd: &JoinCommand, stored: &HashMap<KeyId, keys::Stored>) -> Result<Outcome> {
    let Some(key) = &cmd.idempotency else {
        return Err(key_reused());
    };
    match stored.get(&(cmd.user, key.key.clone())) {
        Some(s) if s.hash != key.hash => Err(key_reused()),
        Some(keys::Stored {
            response: Some(bytes),
            ..
        }) => Ok(Outcome::Stored(bytes.clone())),
        // Claims and answers commit together, so a visible key has its
        // answer, and a key whose request failed is gone; either way this
        // join took nothing.
        _ => Err(Error::new(
            ErrorCode::Conflict,
            "a request with this idempotency key did not finish; retry it",
        )),
    }
}

/// Stores the answer of each key this batch claimed; frees the keys of
/// refused joins.
async fn record_keys(
    conn: &mut PgConnection,
    batch: &[JoinCommand],
    answers: &[Answer],
    claimed: &HashSet<KeyId>,
) -> anyhow::Result<()> {
    let (mut answered, mut failed) = (Vec::new(), Vec::new());
    for (cmd, answer) in batch.iter().zip(answers) {
        let (Some(k), Answer::Decided(result)) = (&cmd.idempotency, answer) else {
            continue;
        };
        let id = (cmd.user, k.key.clone());
        if !claimed.contains(&id) {
            continue;
        }
        match result {
            Ok(Outcome::Registration(row, position)) => {
                let response = pb::JoinResponse {
                    registration: Some(row.to_pb(*position)),
                };
                answered.push((id, response.encode_to_vec()));
            }
            Ok(Outcome::Stored(_)) => {}
            Err(_) => failed.push(id),
        }
    }
    keys::record(conn, answered, failed).await
}
