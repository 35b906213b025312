//! Durable, idempotent consumers with retry, backoff and dead letters.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use futures::future::BoxFuture;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use tracing::Instrument;
use uuid::Uuid;

use cityevents_runtime::CancellationToken;

use crate::Envelope;
use crate::metrics::MessagingMetrics;
use crate::streams;

/// What a consumer does with one message, inside the transaction that also
/// records the message id in the inbox.
pub trait Handler: Send + Sync + 'static {
    /// Applies `envelope`. An error rolls the transaction back and retries.
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        envelope: &'a Envelope,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Runs after `envelope`'s effect committed (not for duplicates): for
    /// what must only follow a durable change, such as invalidating a cache
    /// that readers could otherwise refill with the old state.
    fn committed<'a>(&'a self, _envelope: &'a Envelope) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// One durable consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Durable name (also the inbox's consumer column), e.g. "join-events".
    pub name: String,
    /// Producer whose stream is read, e.g. "event".
    pub producer: String,
    /// Event types to receive, e.g. ["event.>"]; empty for all.
    pub event_types: Vec<String>,
    /// Deliveries before a message is parked as a dead letter.
    pub max_deliver: i64,
    /// Delay before each retry (the last repeats).
    pub backoff: Vec<Duration>,
}

impl ConsumerSpec {
    /// Ten deliveries, backing off 0.1 s, 0.5 s, 2 s, 10 s, 30 s, 60 s, then
    /// 120 s: about eight minutes before a message is parked, longer than a
    /// PostgreSQL fail-over.
    pub fn new(name: &str, producer: &str, event_types: &[&str]) -> Self {
        Self {
            name: name.into(),
            producer: producer.into(),
            event_types: event_types.iter().map(|s| (*s).to_owned()).collect(),
            max_deliver: 10,
            backoff: [100, 500, 2_000, 10_000, 30_000, 60_000, 120_000]
                .map(Duration::from_millis)
                .to_vec(),
        }
    }

    fn delay(&self, delivered: i64) -> Duration {
        let i = usize::try_from(delivered.max(1) - 1)
            .unwrap_or(0)
            .min(self.backoff.len().saturating_sub(1));
        self.backoff
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// Adds to `host` one durable consumer per `(name, producer)`, each reading
/// every event type of that producer's stream into `handler`: how a service
/// follows other services' streams.
pub fn follow(
    mut host: cityevents_runtime::host::Host,
    consumers: &[(&'static str, &'static str)],
    pool: &PgPool,
    js: &jetstream::Context,
    prefix: &str,
    handler: Arc<dyn Handler>,
    metrics: &MessagingMetrics,
) -> cityevents_runtime::host::Host {
    for (name, producer) in consumers {
        let consumer = Consumer {
            pool: pool.clone(),
            js: js.clone(),
            prefix: prefix.to_owned(),
            spec: ConsumerSpec::new(name, producer, &[&format!("{producer}.>")]),
            handler: handler.clone(),
            metrics: metrics.clone(),
        };
        host = host.task(name, move |t| consumer.run(t));
    }
    host
}

/// Inbox rows older than this can never meet a redelivery: streams keep
/// messages 7 days.
pub const INBOX_RETENTION: Duration = Duration::from_secs(8 * 24 * 3600);

/// Consumes until `shutdown` fires.
pub struct Consumer {
    pub pool: PgPool,
    pub js: jetstream::Context,
    pub prefix: String,
    pub spec: ConsumerSpec,
    pub handler: Arc<dyn Handler>,
    pub metrics: MessagingMetrics,
}

impl Consumer {
    /// Creates the stream, dead-letter stream and durable consumer (all
    /// idempotent; retried while NATS is away), then handles messages until
    /// `shutdown`. A message stream that ends is opened again.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let name = self.spec.name.clone();
        self.metrics.touch_consumer(&name);
        while !shutdown.is_cancelled() {
            let Some((consumer, mut messages)) =
                streams::retry_setup(&shutdown, &name, || self.open()).await
            else {
                break;
            };
            let mut lag = tokio::time::interval(Duration::from_secs(5));
            let mut purge = tokio::time::interval(Duration::from_secs(600));
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = lag.tick() => self.gauge_lag(&consumer).await,
                    _ = purge.tick() => {
                        if let Err(e) = self.purge_inbox(INBOX_RETENTION).await {
                            tracing::warn!(error = format!("{e:#}"), consumer = %name, "inbox purge failed");
                        }
                    }
                    next = messages.next() => match next {
                        Some(Ok(msg)) => self.process(msg).await,
                        Some(Err(e)) => tracing::warn!(error = %e, consumer = %name, "consumer stream error"),
                        None => {
                            tracing::warn!(consumer = %name, "message stream ended; opening it again");
                            break;
                        }
                    },
                }
            }
        }
        tracing::info!(consumer = %name, "consumer stopped");
        Ok(())
    }

    /// The streams, the durable consumer and its message stream. NATS never
    /// gives up on a message by itself (`max_deliver` unlimited there): this
    /// consumer parks it after `spec.max_deliver` deliveries, and only once
    /// the dead-letter copy is stored, so a failed park is retried.
    async fn open(&self) -> anyhow::Result<(jetstream::consumer::PullConsumer, pull::Stream)> {
        let stream = streams::ensure_stream(&self.js, &self.prefix, &self.spec.producer).await?;
        streams::ensure_dead_letters(&self.js, &self.prefix).await?;
        let config = pull::Config {
            durable_name: Some(self.spec.name.clone()),
            filter_subjects: self
                .spec
                .event_types
                .iter()
                .map(|t| streams::subject(&self.prefix, t))
                .collect(),
            max_deliver: -1,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&self.spec.name, config)
            .await
            .map_err(|e| anyhow::anyhow!("consumer {}: {e}", self.spec.name))?;
        let messages = consumer.messages().await?;
        Ok((consumer, messages))
    }

    /// Deletes this consumer's inbox rows older than `older_than`, 1,000 a
    /// statement; returns how many.
    pub async fn purge_inbox(&self, older_than: Duration) -> anyhow::Result<u64> {
        let secs = older_than.as_secs_f64();
        let mut total = 0;
        loop {
            let n = sqlx::query!(
                "DELETE FROM inbox WHERE (consumer, message_id) IN (
                   SELECT consumer, message_id FROM inbox
                   WHERE consumer = $1 AND handled_at < now() - make_interval(secs => $2) LIMIT 1000)",
                self.spec.name,
                secs
            )
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += n;
            if n < 1000 {
                return Ok(total);
            }
        }
    }

    async fn gauge_lag(&self, consumer: &jetstream::consumer::PullConsumer) {
        let mut consumer = consumer.clone();
        if let Ok(info) = consumer.info().await {
            self.metrics
                .pending
                .with_label_values(&[&self.spec.name])
                .set(info.num_pending as i64);
        }
    }

    async fn process(&self, msg: jetstream::Message) {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        if delivered > 1 {
            self.metrics
                .redeliveries
                .with_label_values(&[&self.spec.name])
                .inc();
        }
        let span = message_span(&msg, &self.spec.name);
        let outcome = async {
            let envelope = Envelope::decode(msg.payload.as_ref())
                .map_err(|e| Fatal(format!("undecodable envelope: {e}")))?;
            let id: Uuid = envelope
                .id
                .parse()
                .map_err(|_| Fatal("envelope id is not a uuid".into()))?;
            self.handle_once(id, &envelope)
                .await
                .map_err(|e| Retry(format!("{e:#}")))
        }
        .instrument(span.clone())
        .await;
        let _enter = span.enter();
        let result = match outcome {
            Ok(true) => self.ack(&msg, AckKind::Ack, "ok").await,
            Ok(false) => self.ack(&msg, AckKind::Ack, "duplicate").await,
            Err(Retry(e)) if delivered < self.spec.max_deliver => {
                tracing::warn!(error = %e, delivered, "handler failed; will retry");
                self.ack(
                    &msg,
                    AckKind::Nak(Some(self.spec.delay(delivered))),
                    "retry",
                )
                .await
            }
            Err(Retry(e) | Fatal(e)) => self.dead_letter(&msg, &e).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "ack failed; the message will be redelivered");
        }
    }

    /// Applies the message once: the inbox row and the effect commit together.
    async fn handle_once(&self, id: Uuid, envelope: &Envelope) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let fresh = sqlx::query!(
            "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            self.spec.name,
            id
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(false);
        }
        self.handler.handle(&mut tx, envelope).await?;
        tx.commit().await?;
        self.handler.committed(envelope).await;
        Ok(true)
    }

    async fn ack(
        &self,
        msg: &jetstream::Message,
        kind: AckKind,
        result: &str,
    ) -> anyhow::Result<()> {
        self.metrics
            .handled
            .with_label_values(&[&self.spec.name, result])
            .inc();
        msg.ack_with(kind).await.map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Parks the message in the dead-letter stream with the error, then
    /// acknowledges it so it stops blocking the consumer.
    async fn dead_letter(&self, msg: &jetstream::Message, error: &str) -> anyhow::Result<()> {
        tracing::error!(error, consumer = %self.spec.name, "message parked as dead letter");
        let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
        let publish = jetstream::message::PublishMessage::build()
            .payload(msg.payload.clone())
            .message_id(format!("{}:{seq}", self.spec.name))
            .header(
                "CityEvents-Error",
                error.chars().take(1_000).collect::<String>().as_str(),
            )
            .header("CityEvents-Subject", msg.subject.as_str())
            .header("CityEvents-Consumer", self.spec.name.as_str());
        let subject = format!("{}.dlq.{}", self.prefix, self.spec.name);
        self.js.send_publish(subject, publish).await?.await?;
        self.metrics
            .dead_letters
            .with_label_values(&[&self.spec.name])
            .inc();
        self.ack(msg, AckKind::Term, "dead_letter").await
    }
}

enum Failure {
    Retry(String),
    Fatal(String),
}
use Failure::{Fatal, Retry};

/// A span per message, parented on the producer's `traceparent`.
fn message_span(msg: &jetstream::Message, consumer: &str) -> tracing::Span {
    let span = tracing::info_span!("nats.consume", otel.kind = "consumer", consumer, subject = %msg.subject);
    if let Some(tp) = msg.headers.as_ref().and_then(|h| h.get("traceparent")) {
        cityevents_runtime::telemetry::set_parent(&span, tp.as_str());
    }
    span
}
