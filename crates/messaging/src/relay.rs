//! Publishes outbox rows to JetStream.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use prost::Message;
use sqlx::PgPool;
use uuid::Uuid;

use cityevents_runtime::{CancellationToken, telemetry};

use crate::Envelope;
use crate::metrics::MessagingMetrics;
use crate::streams;

/// One relay per replica; any number may run against one database, one of
/// them publishing at a time.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    producer: String,
    prefix: String,
    batch_size: i64,
    idle: Duration,
    metrics: MessagingMetrics,
}

/// The advisory lock the publishing relay of a database holds.
const RELAY_LOCK: i64 = 0x6f75_7462_6f78; // "outbox"

/// How often the backlog gauges are refreshed (a count over the outbox,
/// kept off the publishing path).
const GAUGES_EVERY: Duration = Duration::from_secs(5);

impl Relay {
    /// Relays `producer`'s outbox to its stream under `prefix`.
    pub fn new(
        pool: PgPool,
        js: jetstream::Context,
        producer: &str,
        prefix: &str,
        metrics: MessagingMetrics,
    ) -> Self {
        Self {
            pool,
            js,
            producer: producer.into(),
            prefix: prefix.into(),
            batch_size: 500,
            idle: Duration::from_millis(50),
            metrics,
        }
    }

    /// Creates the stream (retrying while NATS is away), then publishes
    /// until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.metrics.touch_producer(&self.producer);
        let what = format!("stream of {}", self.producer);
        let ensure = || streams::ensure_stream(&self.js, &self.prefix, &self.producer);
        if streams::retry_setup(&shutdown, &what, ensure)
            .await
            .is_none()
        {
            return Ok(());
        }
        let mut failures = 0u32;
        let mut gauged = None::<Instant>;
        while !shutdown.is_cancelled() {
            if gauged.is_none_or(|t| t.elapsed() >= GAUGES_EVERY) {
                gauged = Some(Instant::now());
                if let Err(e) = self.refresh_gauges().await {
                    tracing::warn!(error = format!("{e:#}"), producer = %self.producer, "outbox gauges failed");
                }
            }
            let wait = match self.publish_once().await {
                Ok(n) if n as i64 == self.batch_size => Duration::ZERO,
                Ok(_) => {
                    failures = 0;
                    self.idle
                }
                Err(e) => {
                    failures += 1;
                    self.metrics
                        .publish_failures
                        .with_label_values(&[&self.producer])
                        .inc();
                    tracing::warn!(error = format!("{e:#}"), producer = %self.producer, "outbox relay failed");
                    Duration::from_millis(100 << failures.min(6))
                }
            };
            if wait > Duration::ZERO {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
        tracing::info!(producer = %self.producer, "outbox relay stopped");
        Ok(())
    }

    /// Publishes one batch and deletes its rows; returns how many rows.
    pub async fn publish_once(&self) -> anyhow::Result<usize> {
        self.publish_batch(true).await
    }

    /// Publishes one batch and keeps its rows: what a relay killed between
    /// the publish acks and the delete leaves behind. For fault tests.
    pub async fn publish_without_deleting(&self) -> anyhow::Result<usize> {
        self.publish_batch(false).await
    }

    async fn publish_batch(&self, mark: bool) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        // One relay per database publishes at a time (the others stand by),
        // so rows reach the stream in id order and the events of one
        // aggregate (a registration confirmed, then cancelled) are never
        // reversed. The lock ends with the transaction.
        let leader = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_xact_lock($1) AS "leader!""#,
            RELAY_LOCK
        )
        .fetch_one(&mut *tx)
        .await?;
        if !leader {
            tx.rollback().await?;
            return Ok(0);
        }
        let rows = sqlx::query!(
            r#"SELECT id, event_type, aggregate_id, payload, traceparent, created_at
               FROM outbox ORDER BY id LIMIT $1 FOR UPDATE"#,
            self.batch_size
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut acks = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        let mut parked = Vec::new();
        for row in rows {
            let envelope = Envelope {
                id: row.id.to_string(),
                r#type: row.event_type.clone(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: row.created_at.timestamp(),
                    nanos: row.created_at.timestamp_subsec_nanos() as i32,
                }),
                producer: self.producer.clone(),
                aggregate_id: row.aggregate_id,
                payload: row.payload,
                traceparent: row.traceparent.clone(),
            };
            let subject = streams::subject(&self.prefix, &row.event_type);
            // A publish span in the request's trace; consumers continue it.
            let span =
                tracing::info_span!("nats.publish", otel.kind = "producer", subject = %subject);
            telemetry::set_parent(&span, &row.traceparent);
            let traceparent = telemetry::traceparent_of(&span);
            let mut msg = PublishMessage::build()
                .payload(envelope.encode_to_vec().into())
                .message_id(row.id.to_string());
            if !traceparent.is_empty() {
                msg = msg.header("traceparent", traceparent.as_str());
            }
            match self.js.send_publish(subject, msg).await {
                Ok(ack) => {
                    acks.push(ack);
                    ids.push(row.id);
                }
                // Refused for good: parked, so the rows behind it flow.
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    tracing::error!(id = %row.id, event_type = %row.event_type, error = %e, "outbox row parked: JetStream refuses it");
                    parked.push(row.id);
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Deleted only after every ack: a crash before this point
        // republishes, and the stream's duplicate window drops the copies.
        for ack in futures::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await {
            ack?;
        }
        let n = ids.len();
        if mark && n + parked.len() > 0 {
            sqlx::query!("DELETE FROM outbox WHERE id = ANY($1)", &ids)
                .execute(&mut *tx)
                .await?;
            self.park(&mut tx, &parked).await?;
            tx.commit().await?;
            self.metrics
                .published
                .with_label_values(&[&self.producer])
                .inc_by(n as u64);
        } else {
            // Release the row locks now, not when the pooled connection is
            // next used.
            tx.rollback().await?;
        }
        Ok(n + parked.len())
    }

    /// Moves rows JetStream refuses into `outbox_parked`.
    async fn park(&self, conn: &mut sqlx::PgConnection, ids: &[Uuid]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "WITH moved AS (DELETE FROM outbox WHERE id = ANY($1) RETURNING *)
             INSERT INTO outbox_parked (id, event_type, aggregate_id, payload, traceparent, created_at, error)
             SELECT id, event_type, aggregate_id, payload, traceparent, created_at, $2 FROM moved",
            ids,
            "larger than the NATS server's max_payload"
        )
        .execute(conn)
        .await?;
        self.metrics
            .parked
            .with_label_values(&[&self.producer])
            .inc_by(ids.len() as u64);
        Ok(())
    }

    /// Sets the backlog and oldest-row gauges.
    pub async fn refresh_gauges(&self) -> anyhow::Result<()> {
        let b = sqlx::query!(
            r#"SELECT count(*) AS "n!", COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::bigint, 0) AS "age!"
               FROM outbox"#
        )
        .fetch_one(&self.pool)
        .await?;
        self.metrics
            .outbox_backlog
            .with_label_values(&[&self.producer])
            .set(b.n);
        self.metrics
            .outbox_oldest_seconds
            .with_label_values(&[&self.producer])
            .set(b.age);
        let parked = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM outbox_parked"#)
            .fetch_one(&self.pool)
            .await?;
        self.metrics
            .parked_rows
            .with_label_values(&[&self.producer])
            .set(parked);
        Ok(())
    }
}
