//! The mail service's settings.

use serde::{Deserialize, Serialize};

use cityevents_authn::VerifierConfig;
use cityevents_authn::sealed::SealConfig;
use cityevents_messaging::NatsConfig;
use cityevents_runtime::config::{
    DatabaseConfig, RedisConfig, Secret, ServerConfig, TelemetryConfig,
};
use cityevents_runtime::grpc::client::ClientConfig;

/// Everything the mail service reads at start-up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// People, events and registrations as the streams tell them, and the
    /// delivery log.
    pub database: DatabaseConfig,
    /// Token revocation lookups (the operator calls).
    pub redis: RedisConfig,
    pub nats: NatsConfig,
    pub verifier: VerifierConfig,
    /// The auth service, for its JWKS.
    pub auth: ClientConfig,
    /// Opens the one-time link tokens auth seals for this service (the
    /// same keys as auth's `tokens.link_seal`).
    pub link_seal: SealConfig,
    pub smtp: SmtpConfig,
    pub mail: MailConfig,
}

/// The relay mail goes through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `none` (a local catcher or a relay on a trusted network),
    /// `starttls`, or `tls` (implicit, port 465).
    pub security: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Per command.
    pub timeout_ms: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 2525,
            security: "none".into(),
            username: None,
            password: None,
            timeout_ms: 10_000,
        }
    }
}

/// What mail says and how hard it tries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `From:` of every mail.
    pub from: String,
    /// Where links in mails point (the web app in front of the BFF; this
    /// project's app routes in the fragment: `https://app.example.org/#`).
    pub public_base_url: String,
    /// Where mail clients reach the BFF itself (one-click unsubscribe);
    /// empty: `public_base_url`.
    pub api_base_url: String,
    /// Signs unsubscribe links (HMAC-SHA256); the same on every replica.
    pub unsubscribe_key: Secret,
    /// Attempts at most before a mail is recorded as failed.
    pub max_attempts: i32,
    /// First retry delay in milliseconds; it doubles each attempt (at most
    /// ten minutes).
    pub retry_base_ms: u64,
    /// Mails sent at once at most.
    pub send_batch: i64,
    /// How long before an event its reminder goes, in hours.
    pub reminder_hours: i64,
    /// Seconds between looks for due reminders.
    pub reminder_every_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "CityEvents <no-reply@cityevents.local>".into(),
            public_base_url: "http://127.0.0.1:8080".into(),
            api_base_url: String::new(),
            unsubscribe_key: Secret::default(),
            max_attempts: 10,
            retry_base_ms: 1_000,
            send_batch: 20,
            reminder_hours: 24,
            reminder_every_secs: 30,
        }
    }
}

impl cityevents_runtime::cli::ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
