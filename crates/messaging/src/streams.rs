//! Stream and subject names. Each producing service owns one stream,
//! `<prefix>_<SERVICE>`, holding subjects `<prefix>.<service>.<event>`; its
//! dead letters go to `<prefix>_DLQ` under `<prefix>.dlq.<consumer>`.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use cityevents_runtime::CancellationToken;

/// The stream of `producer` (e.g. "join" → `CE_JOIN`).
pub fn stream_name(prefix: &str, producer: &str) -> String {
    format!("{prefix}_{}", producer.to_uppercase())
}

/// The subject of an event type (e.g. "join.promoted" → `CE.join.promoted`).
pub fn subject(prefix: &str, event_type: &str) -> String {
    format!("{prefix}.{event_type}")
}

/// Creates (or finds) the stream of `producer`, with a dedup window long
/// enough to cover a relay restart.
pub async fn ensure_stream(
    js: &jetstream::Context,
    prefix: &str,
    producer: &str,
) -> anyhow::Result<stream::Stream> {
    let cfg = stream::Config {
        name: stream_name(prefix, producer),
        subjects: vec![format!("{prefix}.{producer}.>")],
        duplicate_window: Duration::from_secs(120),
        max_age: Duration::from_secs(7 * 24 * 3600),
        ..Default::default()
    };
    js.get_or_create_stream(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("stream {producer}: {e}"))
}

/// Creates (or finds) the dead-letter stream.
pub async fn ensure_dead_letters(
    js: &jetstream::Context,
    prefix: &str,
) -> anyhow::Result<stream::Stream> {
    let cfg = stream::Config {
        name: format!("{prefix}_DLQ"),
        subjects: vec![format!("{prefix}.dlq.>")],
        max_age: Duration::from_secs(30 * 24 * 3600),
        ..Default::default()
    };
    js.get_or_create_stream(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("dead-letter stream: {e}"))
}

/// Retries `setup` (creating a stream or a consumer) with capped backoff
/// until it succeeds or `shutdown` fires (then `None`). NATS may come up
/// after the service: a relay or consumer waits for it instead of exiting.
pub async fn retry_setup<T, F, Fut>(
    shutdown: &CancellationToken,
    what: &str,
    mut setup: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut failures = 0u32;
    loop {
        match setup().await {
            Ok(v) => return Some(v),
            Err(e) => {
                failures += 1;
                tracing::warn!(
                    error = format!("{e:#}"),
                    what,
                    failures,
                    "messaging setup failed; retrying"
                );
            }
        }
        let wait = Duration::from_millis(100u64 << failures.min(6));
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
