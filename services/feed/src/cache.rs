//! Cache-aside for hot pages in Redis, with short TTLs and a generation
//! that projection updates bump (after their commit), so a changed listing
//! is never served from a page cached before it. In front of Redis, each
//! replica keeps what it read for [`LOCAL_TTL`] (a hot page then costs no
//! round trip; a change shows within that, well inside the second the
//! feed promises). Concurrent misses of one key share one query (single
//! flight). When Redis fails the feed answers from PostgreSQL, skips Redis
//! for a second, and says so in `feed_cache_degraded` and
//! `feed_cache_requests_total{result="error"}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGauge, Opts};
use redis::AsyncCommands;
use tokio::sync::OnceCell;

use cityevents_runtime::Result;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;

/// How long Redis is left alone after it failed.
const BACKOFF: Duration = Duration::from_secs(1);
/// How long a replica reuses a page without asking Redis.
pub const LOCAL_TTL: Duration = Duration::from_millis(250);
/// Pages a replica keeps at most (all dropped when full).
const LOCAL_CAP: usize = 10_000;

type Flight = Arc<OnceCell<Arc<Vec<u8>>>>;
/// A page read, and when.
type Local = HashMap<String, (Instant, Arc<Vec<u8>>)>;

pub struct Cache {
    redis: Option<Redis>,
    ttl: Duration,
    flights: Mutex<HashMap<String, Flight>>,
    local: Mutex<Local>,
    down_until: Mutex<Option<Instant>>,
    requests: IntCounterVec,
    degraded: IntGauge,
}

impl Cache {
    /// `ttl` zero turns caching off (single flight stays).
    pub fn new(redis: Redis, ttl: Duration, metrics: &Metrics) -> anyhow::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "feed_cache_requests_total",
                "Cache lookups by result (hit, miss, error).",
            ),
            &["result"],
        )?;
        let degraded = IntGauge::new(
            "feed_cache_degraded",
            "1 while Redis failed recently and pages come from PostgreSQL only.",
        )?;
        metrics.registry().register(Box::new(requests.clone()))?;
        metrics.registry().register(Box::new(degraded.clone()))?;
        Ok(Self {
            redis: (!ttl.is_zero()).then_some(redis),
            ttl,
            flights: Mutex::default(),
            local: Mutex::default(),
            down_until: Mutex::default(),
            requests,
            degraded,
        })
    }

    fn usable(&self) -> Option<&Redis> {
        let redis = self.redis.as_ref()?;
        let mut down = self.down_until.lock().unwrap_or_else(|e| e.into_inner());
        match *down {
            Some(t) if t > Instant::now() => None,
            Some(_) => {
                *down = None;
                self.degraded.set(0);
                Some(redis)
            }
            None => Some(redis),
        }
    }

    fn failed(&self, e: &redis::RedisError) {
        tracing::warn!(error = %e, "redis failed; answering from the database");
        self.requests.with_label_values(&["error"]).inc();
        self.degraded.set(1);
        *self.down_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + BACKOFF);
    }

    fn local_get(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local
            .get(key)
            .filter(|(at, _)| at.elapsed() < LOCAL_TTL)
            .map(|(_, v)| v.clone())
    }

    fn local_put(&self, key: &str, value: Arc<Vec<u8>>) {
        if self.redis.is_none() {
            return;
        }
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if local.len() >= LOCAL_CAP {
            local.clear();
        }
        local.insert(key.to_owned(), (Instant::now(), value));
    }

    /// The cached bytes of `key`, or `fill`'s (cached for the next caller).
    pub async fn get_or_fill<F, Fut>(&self, key: &str, fill: F) -> Result<Arc<Vec<u8>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>>>,
    {
        if let Some(v) = self.local_get(key) {
            self.requests.with_label_values(&["hit"]).inc();
            return Ok(v);
        }
        let mut generation = None;
        if let Some(redis) = self.usable() {
            let mut conn = redis.conn.clone();
            let got: redis::RedisResult<(Option<u64>, Option<Vec<u8>>)> = redis::cmd("MGET")
                .arg(redis.key("feed:gen"))
                .arg(redis.key(key))
                .query_async(&mut conn)
                .await;
            match got {
                Ok((g, value)) => {
                    let g = g.unwrap_or(0);
                    generation = Some(g);
                    if let Some(v) = value
                        && v.len() >= 8
                        && v[..8] == g.to_le_bytes()
                    {
                        self.requests.with_label_values(&["hit"]).inc();
                        let v = Arc::new(v[8..].to_vec());
                        self.local_put(key, v.clone());
                        return Ok(v);
                    }
                    self.requests.with_label_values(&["miss"]).inc();
                }
                Err(e) => self.failed(&e),
            }
        }
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            flights.entry(key.to_owned()).or_default().clone()
        };
        let result = flight
            .get_or_try_init(|| async {
                let bytes = Arc::new(fill().await?);
                self.local_put(key, bytes.clone());
                if let (Some(g), Some(redis)) = (generation, self.usable()) {
                    let mut value = g.to_le_bytes().to_vec();
                    value.extend_from_slice(&bytes);
                    let mut conn = redis.conn.clone();
                    let ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
                    if let Err(e) = conn.pset_ex::<_, _, ()>(redis.key(key), value, ms).await {
                        self.failed(&e);
                    }
                }
                Ok::<_, cityevents_runtime::Error>(bytes)
            })
            .await
            .cloned();
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(key);
        }
        result
    }

    /// Makes every cached page stale (after a listing changed): at once on
    /// this replica, within [`LOCAL_TTL`] on the others.
    pub async fn invalidate(&self) {
        self.local.lock().unwrap_or_else(|e| e.into_inner()).clear();
        if let Some(redis) = self.usable() {
            let mut conn = redis.conn.clone();
            if let Err(e) = conn.incr::<_, _, ()>(redis.key("feed:gen"), 1).await {
                self.failed(&e);
            }
        }
    }
}
