//! PostgreSQL: a pool, and migrations applied under an advisory lock.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseConfig;

/// Opens a pool. Connects lazily, so a service starts while the database is
/// still coming up; readiness waits for the first successful query.
pub fn pool(cfg: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = cfg
        .url
        .expose()
        .parse()
        .map_err(|e| anyhow::anyhow!("database.url is not a valid postgres URL: {e}"))?;
    Ok(PgPoolOptions::new()
        .max_connections(cfg.max_connections)
        .acquire_timeout(Duration::from_millis(cfg.acquire_timeout_ms))
        .connect_lazy_with(options))
}

/// Applies `migrator`'s migrations. sqlx holds a PostgreSQL advisory lock
/// (keyed on the database) for the whole run, so replicas starting together
/// migrate one at a time and the others find nothing left to do.
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> anyhow::Result<()> {
    migrator
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
    tracing::info!(count = migrator.iter().count(), "migrations applied");
    Ok(())
}
