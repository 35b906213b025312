//! The sender: takes due mails from the delivery log (leased, so replicas
//! share the work), sends them over SMTP, and records what happened. A
//! transient failure (the relay away, a 4xx) is tried again later, the
//! delay doubling from `mail.retry_base_ms` up to ten minutes; a permanent
//! one (a 5xx: no such mailbox) is recorded and not retried; after
//! `mail.max_attempts` a mail is recorded as failed.

use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use prometheus::{IntCounterVec, Opts};
use sqlx::PgPool;

use cityevents_runtime::CancellationToken;
use cityevents_runtime::metrics::Metrics;

use crate::compose::{Composer, Delivery};
use crate::config::{MailConfig, SmtpConfig};
use crate::store;

/// How long a claimed mail is left to its replica before another may take it.
const LEASE_SECS: f64 = 120.0;
/// How often the log is looked at when nothing was due.
const IDLE: Duration = Duration::from_millis(250);

pub struct Sender {
    pub pool: PgPool,
    pub composer: Arc<Composer>,
    pub transport: AsyncSmtpTransport<Tokio1Executor>,
    pub max_attempts: i32,
    pub retry_base: Duration,
    pub batch: i64,
    pub sent: IntCounterVec,
}

/// The SMTP transport `cfg` describes.
pub fn transport(cfg: &SmtpConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut b = match cfg.security.as_str() {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
        "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)?,
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)?,
        other => anyhow::bail!("smtp.security {other:?}: none, starttls or tls"),
    }
    .port(cfg.port)
    .timeout(Some(Duration::from_millis(cfg.timeout_ms)));
    if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
        b = b.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    Ok(b.build())
}

impl Sender {
    pub fn new(
        pool: PgPool,
        composer: Arc<Composer>,
        smtp: &SmtpConfig,
        mail: &MailConfig,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let sent = IntCounterVec::new(
            Opts::new(
                "mail_deliveries_total",
                "Mails by template and result (sent, retry, failed).",
            ),
            &["template", "result"],
        )?;
        metrics.registry().register(Box::new(sent.clone()))?;
        Ok(Self {
            pool,
            composer,
            transport: transport(smtp)?,
            max_attempts: mail.max_attempts.max(1),
            retry_base: Duration::from_millis(mail.retry_base_ms.max(1)),
            batch: mail.send_batch.max(1),
            sent,
        })
    }

    /// Sends until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let sent = match store::claim(&self.pool, self.batch, LEASE_SECS).await {
                Ok(due) => {
                    let n = due.len();
                    let sends = due.into_iter().map(|d| self.deliver(d));
                    futures::future::join_all(sends).await;
                    n
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the delivery log failed");
                    0
                }
            };
            if sent == 0 {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(IDLE) => {}
                }
            } else if shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }

    async fn deliver(&self, d: Delivery) {
        let outcome = match self.composer.message(&d) {
            Ok(m) => self.transport.send(m).await.map(|_| ()).map_err(|e| {
                let permanent = e.is_permanent();
                (e.to_string(), permanent)
            }),
            Err(e) => Err((format!("{e:#}"), true)),
        };
        let result = match outcome {
            Ok(()) => store::mark_sent(&self.pool, d.id).await.map(|()| "sent"),
            Err((error, permanent)) => {
                let last = permanent || d.attempts >= self.max_attempts;
                let delay =
                    self.retry_base.as_secs_f64() * 2f64.powi((d.attempts - 1).clamp(0, 20));
                tracing::warn!(delivery = %d.id, template = %d.template, attempts = d.attempts, permanent, %error, "mail not sent");
                store::mark_failed(&self.pool, d.id, &error, delay.min(600.0), last)
                    .await
                    .map(|()| if last { "failed" } else { "retry" })
            }
        };
        match result {
            Ok(r) => self.sent.with_label_values(&[&d.template, r]).inc(),
            // The lease runs out and the mail is tried again.
            Err(e) => tracing::warn!(delivery = %d.id, error = %e, "recording a delivery failed"),
        }
    }
}
