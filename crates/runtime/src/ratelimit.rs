//! GCRA rate limits in Redis: one key per (limit, subject), one atomic script
//! per check, using Redis's clock so replicas agree. Auth limits sign-ins and
//! sign-ups with it; the BFF limits every caller at the edge.

use std::time::Duration;

use redis::Script;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::metrics::RedisCalls;
use crate::redis::Redis;
use crate::{Error, ErrorCode, Result};

/// One GCRA limit: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Sustained rate.
    pub per_minute: u32,
    /// Requests allowed back to back.
    pub burst: u32,
}

impl Limit {
    /// Refuses limits the limiter cannot enforce: over 60,000 a minute the
    /// emission interval rounds to 0 ms and Redis refuses the expiry, which
    /// made every Register and Login UNAVAILABLE. `name` is the setting's
    /// path, named in the message.
    pub fn validate(&self, name: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=60_000).contains(&self.per_minute),
            "{name}.per_minute must be 1 to 60000 (got {})",
            self.per_minute
        );
        anyhow::ensure!(
            (1..=100_000).contains(&self.burst),
            "{name}.burst must be 1 to 100000 (got {})",
            self.burst
        );
        Ok(())
    }
}

// GCRA over several limits at once. KEYS[i]: limit i's theoretical arrival
// time (ms); ARGV[2i-1], ARGV[2i]: its emission interval (ms) and burst.
// Takes one request from every limit or from none: returns 0 when allowed,
// else the ms to wait for the most distant one.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local new_tats = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = interval * tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if now < allow_at and allow_at - now > wait then wait = allow_at - now end
  new_tats[i] = new_tat
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, new_tats[i], 'PX', math.ceil(new_tats[i] - now))
end
return 0
"#;

/// Checks limits; shared by all handlers.
#[derive(Clone)]
pub struct RateLimiter {
    redis: Redis,
    script: Script,
    calls: RedisCalls,
}

impl RateLimiter {
    /// Limits stored in `redis`; its calls counted in `calls`.
    pub fn new(redis: Redis, calls: RedisCalls) -> Self {
        Self {
            redis,
            script: Script::new(GCRA),
            calls,
        }
    }

    /// Takes one request from `name`'s budget for `subject`, or answers
    /// RESOURCE_EXHAUSTED with the time to wait. Subjects are hashed, so no
    /// email or address is kept in Redis in clear.
    pub async fn check(&self, name: &str, subject: &str, limit: Limit) -> Result<()> {
        self.check_all(&[(name, subject, limit)]).await
    }

    /// Takes one request from each `(name, subject, limit)` budget in one
    /// Redis call — from all of them or, when any is spent, from none — or
    /// answers RESOURCE_EXHAUSTED with the longest wait.
    pub async fn check_all(&self, checks: &[(&str, &str, Limit)]) -> Result<()> {
        let mut call = self.script.prepare_invoke();
        for (name, subject, limit) in checks {
            let digest = Sha256::digest(subject.as_bytes());
            call.key(self.redis.key(format!("rl:{name}:{}", hex(&digest[..12]))))
                .arg(60_000 / u64::from(limit.per_minute.max(1)))
                .arg(limit.burst.max(1));
        }
        let wait_ms: u64 = self
            .calls
            .record(call.invoke_async(&mut self.redis.conn.clone()).await)?;
        if wait_ms == 0 {
            return Ok(());
        }
        let wait = Duration::from_millis(wait_ms);
        Err(Error::new(
            ErrorCode::ResourceExhausted,
            format!("too many attempts; retry in {} s", wait.as_secs().max(1)),
        )
        .with_retry_after(wait))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
