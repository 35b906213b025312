//! Domain events between services: transactional outbox → NATS JetStream →
//! idempotent consumers.
//!
//! - [`outbox::enqueue`] writes an event in the caller's transaction.
//! - [`relay::Relay`] publishes outbox rows (every replica runs one;
//!   `FOR UPDATE SKIP LOCKED` splits the work) with `Nats-Msg-Id` = row id,
//!   and deletes them after the ack. A crash between publish and delete
//!   republishes; JetStream's duplicate window drops the copy.
//! - [`consumer::run`] drives a durable consumer: the handler's effect and an
//!   `inbox` row commit together, failures back off and retry, and after
//!   `max_deliver` attempts the message is parked in the dead-letter stream.
//! - [`streams`] names streams and subjects and creates them idempotently.
//! - [`dead_letters`] lists and replays parked messages (the services'
//!   `dead-letters` command).
//!
//! Every message is a `cityevents.messaging.v1.Envelope`; the `traceparent`
//! header carries the producing request's trace across the bus.

pub mod consumer;
pub mod dead_letters;
pub mod metrics;
pub mod outbox;
pub mod relay;
pub mod streams;

pub use cityevents_proto::cityevents::messaging::v1::Envelope;

/// The outbox and inbox tables' migrations, tracked in their own table so they
/// sit beside a service's own migrations.
pub async fn migrate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let mut migrator = sqlx::migrate!();
    migrator.dangerous_set_table_name("_messaging_migrations");
    migrator
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("messaging migrations failed: {e}"))
}

/// The messaging tables, then the service's own migrations: what every
/// service applies at start-up (or in the chart's migration hook).
pub async fn migrate_with(
    pool: &sqlx::PgPool,
    service: &sqlx::migrate::Migrator,
) -> anyhow::Result<()> {
    migrate(pool).await?;
    cityevents_runtime::db::migrate(pool, service).await
}

/// What a service that owns a database and publishes domain events opens
/// first: its pool (migrated if configured), JetStream, and its outbox relay.
pub struct Backbone {
    /// The service's database.
    pub pool: sqlx::PgPool,
    /// JetStream, for consumers.
    pub js: async_nats::jetstream::Context,
    /// The outbox relay, to run beside the server.
    pub relay: relay::Relay,
    /// Outbox and consumer metrics, for consumers.
    pub metrics: metrics::MessagingMetrics,
}

/// Opens the [`Backbone`] of `producer` (e.g. "join").
pub async fn open(
    database: &cityevents_runtime::config::DatabaseConfig,
    nats: &NatsConfig,
    producer: &str,
    migrator: &sqlx::migrate::Migrator,
    registry: &cityevents_runtime::metrics::Metrics,
) -> anyhow::Result<Backbone> {
    let pool = cityevents_runtime::db::pool(database)?;
    if database.migrate_on_start {
        migrate_with(&pool, migrator).await?;
    }
    let metrics = metrics::MessagingMetrics::register(registry)?;
    let js = connect(nats).await?;
    let relay = relay::Relay::new(
        pool.clone(),
        js.clone(),
        producer,
        &nats.stream_prefix,
        metrics.clone(),
    );
    Ok(Backbone {
        pool,
        js,
        relay,
        metrics,
    })
}

/// NATS connection settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// `nats://host:port`.
    pub url: String,
    /// Prefix of every stream name (tests use a unique one).
    pub stream_prefix: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream_prefix: "CE".into(),
        }
    }
}

/// Connects to NATS and returns a JetStream context.
pub async fn connect(cfg: &NatsConfig) -> anyhow::Result<async_nats::jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name("cityevents")
        .retry_on_initial_connect()
        .connect(&cfg.url)
        .await
        .map_err(|e| anyhow::anyhow!("nats connect {}: {e}", cfg.url))?;
    Ok(async_nats::jetstream::new(client))
}
