//! The auth service's settings (see `cityevents_runtime::config` for sources).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use cityevents_authn::{SealConfig, SigningKey, VerifierConfig};
use cityevents_messaging::NatsConfig;
use cityevents_runtime::client_addr::TrustedProxies;
use cityevents_runtime::config::{
    DatabaseConfig, RedisConfig, Secret, ServerConfig, TelemetryConfig,
};

/// Everything the auth service reads at start-up.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listeners and limits.
    pub server: ServerConfig,
    /// Logs, traces.
    pub telemetry: TelemetryConfig,
    /// The auth database.
    pub database: DatabaseConfig,
    /// Rate limits and revocation.
    pub redis: RedisConfig,
    /// Where the outbox relay publishes domain events.
    pub nats: NatsConfig,
    /// Token lifetimes and keys.
    pub tokens: TokenConfig,
    /// Login, register and reset limits.
    pub rate_limits: RateLimits,
    /// Proxies (addresses or CIDR blocks, e.g. the BFF's pod range) whose
    /// `x-forwarded-for` is believed; the client is the right-most hop that
    /// is not one of them. Empty: the direct peer is the client.
    pub trusted_proxies: TrustedProxies,
}

/// Token lifetimes, issuer and keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    /// `iss`, `aud`, leeway and the revocation key prefix shared with verifiers.
    pub verifier: VerifierConfig,
    /// Access-token lifetime.
    pub access_ttl_secs: u64,
    /// Refresh-token lifetime (each rotation starts it again).
    pub refresh_ttl_secs: u64,
    /// Email-verification token lifetime.
    pub verify_ttl_secs: u64,
    /// Password-reset token lifetime.
    pub reset_ttl_secs: u64,
    /// PKCS#8 PEM files of Ed25519 keys; the first signs, all verify.
    pub signing_key_files: Vec<PathBuf>,
    /// The same, inline (tests); used after the files.
    pub signing_keys: Vec<Secret>,
    /// Keys sealing verification and reset tokens for the mail service
    /// (shared with it only); `auth sealkey` makes one.
    pub link_seal: SealConfig,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            verifier: VerifierConfig::default(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 30 * 24 * 3600,
            verify_ttl_secs: 48 * 3600,
            reset_ttl_secs: 3600,
            signing_key_files: Vec::new(),
            signing_keys: Vec::new(),
            link_seal: SealConfig::default(),
        }
    }
}

impl TokenConfig {
    /// Loads every configured key; at least one is needed.
    pub fn load_keys(&self) -> anyhow::Result<Vec<SigningKey>> {
        let mut keys = Vec::new();
        for path in &self.signing_key_files {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("tokens.signing_key_files: {}: {e}", path.display())
            })?;
            keys.push(
                SigningKey::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            );
        }
        for pem in &self.signing_keys {
            keys.push(
                SigningKey::from_pem(pem.expose())
                    .map_err(|e| anyhow::anyhow!("tokens.signing_keys: {e}"))?,
            );
        }
        anyhow::ensure!(
            !keys.is_empty(),
            "no signing key: set tokens.signing_key_files (create one with `auth keygen`)"
        );
        Ok(keys)
    }
}

pub use cityevents_runtime::ratelimit::Limit;

/// The limits the auth service enforces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Logins per account (email).
    pub login_per_account: Limit,
    /// Logins per client address.
    pub login_per_address: Limit,
    /// Registrations per client address.
    pub register_per_address: Limit,
    /// Verification and reset mails per account.
    pub mail_per_account: Limit,
}

impl RateLimits {
    /// Checks every limit at start-up.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.login_per_account
            .validate("rate_limits.login_per_account")?;
        self.login_per_address
            .validate("rate_limits.login_per_address")?;
        self.register_per_address
            .validate("rate_limits.register_per_address")?;
        self.mail_per_account
            .validate("rate_limits.mail_per_account")
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_per_account: Limit {
                per_minute: 5,
                burst: 5,
            },
            login_per_address: Limit {
                per_minute: 30,
                burst: 30,
            },
            register_per_address: Limit {
                per_minute: 10,
                burst: 10,
            },
            mail_per_account: Limit {
                per_minute: 2,
                burst: 3,
            },
        }
    }
}

impl cityevents_runtime::cli::ServiceConfig for Config {
    fn telemetry(&self) -> &cityevents_runtime::config::TelemetryConfig {
        &self.telemetry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_the_limiter_cannot_enforce_are_refused_at_start_up() {
        assert!(RateLimits::default().validate().is_ok());
        let mut limits = RateLimits::default();
        limits.login_per_address.per_minute = 60_001;
        let err = limits.validate().unwrap_err().to_string();
        assert!(err.contains("login_per_address.per_minute"), "{err}");
        limits.login_per_address.per_minute = 30;
        limits.mail_per_account.burst = 0;
        assert!(limits.validate().is_err());
    }
}
