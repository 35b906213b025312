use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cityevents_runtime::config::{RedisConfig, Secret};
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::redis::Redis;
use feed::cache::Cache;

async fn cache() -> Arc<Cache> {
    let cfg = RedisConfig {
        url: Secret::new(cityevents_testkit::redis_url()),
        key_prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
        ..RedisConfig::default()
    };
    let redis = Redis::connect(&cfg).await.unwrap();
    let metrics = Metrics::new().unwrap();
    Arc::new(Cache::new(redis, Duration::from_secs(60), &metrics).unwrap())
}

#[tokio::test]
async fn concurrent_misses_of_one_key_share_one_query_until_a_change() {
    let cache = cache().await;
    let fills = Arc::new(AtomicUsize::new(0));
    let read = |cache: Arc<Cache>, fills: Arc<AtomicUsize>| async move {
        let fill = || async {
            fills.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(b"page".to_vec())
        };
        cache.get_or_fill("k", fill).await.unwrap()
    };
    let readers: Vec<_> = (0..20)
        .map(|_| tokio::spawn(read(cache.clone(), fills.clone())))
        .collect();
    for r in readers {
        assert_eq!(r.await.unwrap().as_slice(), b"page");
    }
    assert_eq!(fills.load(Ordering::SeqCst), 1, "twenty misses, one query");
    read(cache.clone(), fills.clone()).await;
    assert_eq!(
        fills.load(Ordering::SeqCst),
        1,
        "then served from the cache"
    );
    cache.invalidate().await;
    read(cache.clone(), fills.clone()).await;
    assert_eq!(fills.load(Ordering::SeqCst), 2, "a change makes it stale");
}
