//! Wiring: config in, a runnable host out — the operators' API, three
//! stream consumers (auth, event, join), the sender and the reminder pass.

use std::sync::Arc;
use std::time::Duration;

use cityevents_messaging::consumer;
use cityevents_messaging::metrics::MessagingMetrics;
use cityevents_proto::cityevents::mail::v1::mail_service_server::MailServiceServer;
use cityevents_runtime::CancellationToken;
use cityevents_runtime::db;
use cityevents_runtime::grpc::client::channel;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;

use crate::api::{MailApi, State};
use crate::compose::Composer;
use crate::config::Config;
use crate::notify::{MailHandler, Notifier};
use crate::send::Sender;

/// The durable consumers: (name, producer).
pub const CONSUMERS: [(&str, &str); 3] = [
    ("mail-auth", "auth"),
    ("mail-events", "event"),
    ("mail-joins", "join"),
];

pub async fn build(cfg: Config) -> anyhow::Result<Host> {
    let metrics = Metrics::new()?;
    let pool = db::pool(&cfg.database)?;
    if cfg.database.migrate_on_start {
        cityevents_messaging::migrate_with(&pool, &crate::MIGRATOR).await?;
    }
    db::PoolCollector::register(&metrics, &[("main", &pool)])?;
    let messaging = MessagingMetrics::register(&metrics)?;
    let js = cityevents_messaging::connect(&cfg.nats).await?;
    let redis = Redis::connect(&cfg.redis).await?;
    let composer = Arc::new(
        Composer::new(
            &cfg.mail.from,
            &cfg.mail.public_base_url,
            cfg.mail.unsubscribe_key.expose(),
        )?
        .with_api_base(&cfg.mail.api_base_url),
    );
    let notifier = Arc::new(Notifier {
        composer: composer.clone(),
        sealer: cfg.link_seal.load()?,
    });
    let verifier = cityevents_authn::remote(
        &cfg.verifier,
        channel(&cfg.auth, &metrics)?,
        redis.conn.clone(),
        &metrics,
    );
    let sender = Sender::new(
        pool.clone(),
        composer.clone(),
        &cfg.smtp,
        &cfg.mail,
        &metrics,
    )?;
    let state = State {
        pool: pool.clone(),
        verifier: Arc::new(verifier),
        composer: composer.clone(),
    };
    let services = ServiceSet::new().with(MailServiceServer::new(MailApi::new(state)));
    let host = Host::bind(cfg.server, metrics, services).await?;
    let handler = Arc::new(MailHandler(notifier));
    let prefix = &cfg.nats.stream_prefix;
    let host = consumer::follow(host, &CONSUMERS, &pool, &js, prefix, handler, &messaging);
    let hours = cfg.mail.reminder_hours.max(1);
    let every = Duration::from_secs(cfg.mail.reminder_every_secs.max(1));
    Ok(host
        .task("mail-sender", move |t| sender.run(t))
        .task("mail-reminders", move |t| {
            reminders(pool, composer, hours, every, t)
        }))
}

/// Logs due reminders every `every`.
async fn reminders(
    pool: sqlx::PgPool,
    composer: Arc<Composer>,
    hours: i64,
    every: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => match crate::notify::remind(&pool, &composer, hours).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reminders = n, "reminders logged"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "the reminder pass failed"),
            },
        }
    }
}

/// Applies the migrations and returns (the chart's pre-upgrade hook).
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    cityevents_messaging::migrate_with(&db::pool(&cfg.database)?, &crate::MIGRATOR).await
}
