//! Several rate limits checked in one Redis call: all are charged, or none
//! (a call refused by one budget does not spend the others). Needs Redis
//! (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
#![allow(clippy::unwrap_used)]

use cityevents_runtime::config::{RedisConfig, Secret};
use cityevents_runtime::ratelimit::{Limit, RateLimiter};
use cityevents_runtime::redis::Redis;

async fn limiter() -> RateLimiter {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let cfg = RedisConfig {
        url: Secret::new(url),
        key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
        ..RedisConfig::default()
    };
    RateLimiter::new(Redis::connect(&cfg).await.unwrap())
}

/// `burst` calls at once, then one a minute (no refill during the test).
fn allows(burst: u32) -> Limit {
    Limit {
        per_minute: 1,
        burst,
    }
}

#[tokio::test]
async fn a_call_refused_by_one_budget_spends_none_of_the_others() {
    let limiter = limiter().await;
    let both = [
        ("address", "10.0.0.1", allows(2)),
        ("user", "ada", allows(1)),
    ];

    limiter.check_all(&both).await.unwrap();
    let refused = limiter.check_all(&both).await.unwrap_err();
    assert!(
        refused.retry_after().is_some(),
        "the refusal says when to come back"
    );

    // The address budget still holds its second call, and only that one.
    let address = [("address", "10.0.0.1", allows(2))];
    limiter.check_all(&address).await.unwrap();
    assert!(limiter.check_all(&address).await.is_err());
}
