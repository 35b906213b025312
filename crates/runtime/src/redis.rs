//! Redis: one multiplexed, self-reconnecting connection per app.

use redis::aio::ConnectionManager;

use crate::config::RedisConfig;

/// A Redis connection and the prefix every key of this app starts with.
#[derive(Clone)]
pub struct Redis {
    /// The connection (cheap to clone).
    pub conn: ConnectionManager,
    prefix: String,
}

impl Redis {
    /// Connects to `cfg.url`.
    pub async fn connect(cfg: &RedisConfig) -> anyhow::Result<Self> {
        let client = redis::Client::open(cfg.url.expose())
            .map_err(|e| anyhow::anyhow!("redis.url is not valid: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_millis(
                cfg.response_timeout_ms,
            )))
            .set_connection_timeout(Some(std::time::Duration::from_millis(
                cfg.connect_timeout_ms,
            )));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| anyhow::anyhow!("redis connect: {e}"))?;
        Ok(Self {
            conn,
            prefix: cfg.key_prefix.clone(),
        })
    }

    /// `prefix + key`.
    pub fn key(&self, key: impl std::fmt::Display) -> String {
        format!("{}{key}", self.prefix)
    }
}
