//! `feed rebuild`: the projection from scratch, replaying the event stream
//! and then the join stream from their first messages, a few hundred
//! messages per transaction. Applying is idempotent, so the live consumers
//! may keep running beside it.

use std::fmt;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;
use prost::Message;
use sqlx::PgPool;

use cityevents_messaging::{Envelope, streams};

use crate::app::CONSUMERS;
use crate::config::Config;
use crate::projection;

/// Messages applied per transaction.
const BATCH: usize = 500;

/// What a rebuild did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    /// Messages read from the streams.
    pub messages: u64,
    /// Rows the projection took from them (cards, registrations, counts).
    pub applied: u64,
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "feed rebuilt: {} messages read, {} rows written, in {:.2} s ({:.0} messages/s)",
            self.messages,
            self.applied,
            secs,
            self.messages as f64 / secs.max(1e-9)
        )
    }
}

/// Empties the projection and replays both streams into it.
pub async fn run(cfg: &Config) -> anyhow::Result<Report> {
    let pool = crate::app::pool(&cfg.database, &cfg.feed)?;
    cityevents_messaging::migrate_with(&pool, &crate::MIGRATOR).await?;
    let js = cityevents_messaging::connect(&cfg.nats).await?;
    replay(&pool, &js, &cfg.nats.stream_prefix, true).await
}

/// Replays every message of the event and join streams (as they stand when
/// it starts); `fresh` empties the projection first.
pub async fn replay(
    pool: &PgPool,
    js: &jetstream::Context,
    prefix: &str,
    fresh: bool,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    if fresh {
        let mut tx = pool.begin().await?;
        sqlx::query!("TRUNCATE events, event_stats, registrations, lexicon, ranked_lists")
            .execute(&mut *tx)
            .await?;
        let names: Vec<String> = CONSUMERS.iter().map(|(n, _)| (*n).to_owned()).collect();
        sqlx::query!("DELETE FROM inbox WHERE consumer = ANY($1)", &names)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let mut report = Report::default();
    for (_, producer) in CONSUMERS {
        let mut stream = streams::ensure_stream(js, prefix, producer).await?;
        let last = stream.info().await?.state.last_sequence;
        if last == 0 {
            continue;
        }
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                filter_subject: streams::subject(prefix, &format!("{producer}.>")),
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("replay consumer for {producer}: {e}"))?;
        let mut messages = consumer.messages().await?;
        let mut batch: Vec<Envelope> = Vec::with_capacity(BATCH);
        let mut done = false;
        while !done {
            let Some(msg) = messages.next().await else {
                break;
            };
            let msg = msg.map_err(|e| anyhow::anyhow!("reading {producer}: {e}"))?;
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(last);
            done = seq >= last;
            match Envelope::decode(msg.payload.as_ref()) {
                Ok(env) => batch.push(env),
                Err(e) => tracing::warn!(seq, error = %e, "skipping an undecodable message"),
            }
            report.messages += 1;
            if batch.len() >= BATCH || done {
                report.applied += apply_batch(pool, &batch).await?;
                batch.clear();
            }
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Applies `batch` in one transaction; returns the rows written. A batch
/// that fails is applied again message by message, so one bad message
/// (which the live consumer parks as a dead letter) cannot stop a rebuild.
async fn apply_batch(pool: &PgPool, batch: &[Envelope]) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    match projection::apply(&mut tx, batch).await {
        Ok(c) => {
            tx.commit().await?;
            Ok(c.listings + c.stats)
        }
        Err(e) if batch.len() > 1 => {
            tracing::warn!(
                error = format!("{e:#}"),
                "batch failed; applying it one message at a time"
            );
            drop(tx);
            let mut written = 0;
            for env in batch {
                written += Box::pin(apply_batch(pool, std::slice::from_ref(env))).await?;
            }
            Ok(written)
        }
        Err(e) => {
            if let Some(env) = batch.first() {
                tracing::warn!(id = %env.id, r#type = %env.r#type, error = format!("{e:#}"), "message not applied");
            }
            Ok(0)
        }
    }
}
