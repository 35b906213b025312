//! PostgreSQL: a pool, and migrations applied under an advisory lock.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseConfig;

/// Opens a pool. Connects lazily, so a service starts while the database is
/// still coming up; readiness waits for the first successful query.
pub fn pool(cfg: &DatabaseConfig) -> anyhow::Result<PgPool> {
    pool_with(cfg, &[])
}

/// [`pool`], with run-time settings every connection starts with (e.g.
/// `plan_cache_mode`).
pub fn pool_with(cfg: &DatabaseConfig, settings: &[(&str, &str)]) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = cfg
        .url
        .expose()
        .parse()
        .map_err(|e| anyhow::anyhow!("database.url is not a valid postgres URL: {e}"))?;
    let options = options.options(settings.iter().copied());
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

/// Pool figures read at scrape time: `db_pool_connections{pool,state}`
/// (`idle`, `in_use`), `db_pool_max_connections{pool}` and
/// `db_pool_saturated{pool}` (1 when every connection is in use, so callers
/// wait for one).
pub struct PoolCollector {
    pools: Vec<(String, PgPool)>,
    connections: prometheus::IntGaugeVec,
    max: prometheus::IntGaugeVec,
    saturated: prometheus::IntGaugeVec,
}

impl PoolCollector {
    /// Registers figures for `pools` (name, pool) in `metrics`.
    pub fn register(
        metrics: &crate::metrics::Metrics,
        pools: &[(&str, &PgPool)],
    ) -> prometheus::Result<()> {
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            prometheus::IntGaugeVec::new(prometheus::Opts::new(name, help), labels)
        };
        let collector = Self {
            pools: pools
                .iter()
                .map(|(n, p)| ((*n).to_owned(), (*p).clone()))
                .collect(),
            connections: gauge(
                "db_pool_connections",
                "Pool connections by state.",
                &["pool", "state"],
            )?,
            max: gauge("db_pool_max_connections", "Pool size limit.", &["pool"])?,
            saturated: gauge(
                "db_pool_saturated",
                "1 when every connection is in use and callers wait.",
                &["pool"],
            )?,
        };
        metrics.registry().register(Box::new(collector))
    }
}

impl prometheus::core::Collector for PoolCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        [&self.connections, &self.max, &self.saturated]
            .into_iter()
            .flat_map(|g| g.desc())
            .collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        for (name, pool) in &self.pools {
            let (size, idle) = (i64::from(pool.size()), pool.num_idle() as i64);
            let max = i64::from(pool.options().get_max_connections());
            let in_use = (size - idle).max(0);
            self.connections
                .with_label_values(&[name, "idle"])
                .set(idle);
            self.connections
                .with_label_values(&[name, "in_use"])
                .set(in_use);
            self.max.with_label_values(&[name]).set(max);
            self.saturated
                .with_label_values(&[name])
                .set(i64::from(in_use >= max));
        }
        [&self.connections, &self.max, &self.saturated]
            .into_iter()
            .flat_map(|g| g.collect())
            .collect()
    }
}
