//! The BFF's settings.

use serde::{Deserialize, Serialize};

use cityevents_authn::VerifierConfig;
use cityevents_messaging::NatsConfig;
use cityevents_runtime::client_addr::TrustedProxies;
use cityevents_runtime::config::{RedisConfig, ServerConfig, TelemetryConfig};
use cityevents_runtime::grpc::client::ClientConfig;
use cityevents_runtime::ratelimit::Limit;

/// Everything the BFF reads at start-up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// One port for gRPC, gRPC-web, REST/JSON and server-sent events.
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// Rate limits and token revocation.
    pub redis: RedisConfig,
    /// The domain-event streams the live updates follow.
    pub nats: NatsConfig,
    /// Token checks at the edge (each service checks again).
    pub verifier: VerifierConfig,
    pub auth: ClientConfig,
    pub event: ClientConfig,
    pub join: ClientConfig,
    /// The feed service (discovery).
    pub feed: ClientConfig,
    /// The mail service (unsubscribe links).
    pub mail: ClientConfig,
    /// The media service (uploads, image links, `/media/...`).
    pub media: ClientConfig,
    pub edge: EdgeConfig,
    pub live: LiveConfig,
}

/// What the edge enforces before a call reaches a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Browser origins allowed by CORS (`https://app.example.org`); empty
    /// allows no cross-origin caller. Never `*`.
    pub cors_origins: Vec<String>,
    /// Proxies whose `x-forwarded-for` is believed (e.g. the ingress).
    pub trusted_proxies: TrustedProxies,
    /// Calls per signed-in user.
    pub per_user: Limit,
    /// Calls per client address (signed in or not).
    pub per_address: Limit,
    /// Largest REST body or gRPC message accepted, in bytes.
    pub max_body_bytes: usize,
    /// Calls this replica handles at once (all transports, live streams
    /// only while they open); the next is refused at once with
    /// RESOURCE_EXHAUSTED `OVERLOADED` / 503 and `retry-after`. 0: no limit.
    pub max_in_flight: usize,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            per_user: Limit {
                per_minute: 6_000,
                burst: 200,
            },
            per_address: Limit {
                per_minute: 30_000,
                burst: 1_000,
            },
            max_body_bytes: 256 * 1024,
            max_in_flight: 256,
        }
    }
}

/// Live updates (`WatchEvent`, `GET /v1/events/{id}/live`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// Seconds a live stream stays quiet before a heartbeat (a message on
    /// gRPC and gRPC-web, a comment on server-sent events).
    pub heartbeat_secs: u64,
    /// Watchers one BFF replica holds at once; more are refused
    /// (RESOURCE_EXHAUSTED) rather than slowing the others.
    pub max_watchers: usize,
    /// Seconds a watcher may leave a ready update unread before it is told
    /// it fell behind (RESOURCE_EXHAUSTED, WATCHER_TOO_SLOW) and closed.
    pub stall_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            heartbeat_secs: 15,
            max_watchers: 50_000,
            stall_secs: 30,
        }
    }
}

impl Config {
    /// Checks what start-up can check.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.edge.per_user.validate("edge.per_user")?;
        self.edge.per_address.validate("edge.per_address")?;
        for origin in &self.edge.cors_origins {
            anyhow::ensure!(
                origin != "*" && origin.parse::<http::HeaderValue>().is_ok(),
                "edge.cors_origins: {origin:?} is not an origin (`*` is not allowed)"
            );
        }
        self.edge.trusted_proxies.parse()?;
        for (name, c) in self.backends() {
            anyhow::ensure!(!c.endpoint.is_empty(), "{name}.endpoint is required");
        }
        Ok(())
    }

    /// Every backend the BFF calls, by name.
    pub fn backends(&self) -> [(&'static str, &ClientConfig); 6] {
        [
            ("auth", &self.auth),
            ("event", &self.event),
            ("join", &self.join),
            ("feed", &self.feed),
            ("mail", &self.mail),
            ("media", &self.media),
        ]
    }
}

impl cityevents_runtime::cli::ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
