//! Several rate limits checked in one Redis call: all are charged, or none
//! (a call refused by one budget does not spend the others). Needs Redis
//! (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
#![allow(clippy::unwrap_used)]

use cityevents_runtime::ErrorCode;
use cityevents_runtime::config::{RedisConfig, Secret};
use cityevents_runtime::metrics::{Metrics, RedisCalls};
use cityevents_runtime::ratelimit::{Limit, RateLimiter};
use cityevents_runtime::redis::Redis;
use sha2::{Digest, Sha256};

async fn redis() -> Redis {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let cfg = RedisConfig {
        url: Secret::new(url),
        key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
        ..RedisConfig::default()
    };
    Redis::connect(&cfg).await.unwrap()
}

async fn limiter() -> RateLimiter {
    RateLimiter::new(redis().await, RedisCalls::unregistered())
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

#[tokio::test]
async fn a_failing_redis_call_is_refused_as_unavailable_and_counted_as_an_error() {
    let redis = redis().await;
    let metrics = Metrics::new().unwrap();
    let limiter = RateLimiter::new(redis.clone(), metrics.redis_calls("rate_limit"));
    limiter.check("user", "ada", allows(5)).await.unwrap();

    // A budget key of the wrong type makes the script fail inside Redis.
    let digest = Sha256::digest(b"grace");
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let _: () = redis::cmd("LPUSH")
        .arg(redis.key(format!("rl:user:{hex}")))
        .arg("not a budget")
        .query_async(&mut redis.conn.clone())
        .await
        .unwrap();
    let failed = limiter.check("user", "grace", allows(5)).await.unwrap_err();

    assert_eq!(failed.code(), ErrorCode::Unavailable);
    let exported = metrics.render();
    assert!(exported.contains(r#"redis_calls_total{result="ok",use="rate_limit"} 1"#));
    assert!(exported.contains(r#"redis_calls_total{result="error",use="rate_limit"} 1"#));
}
