//! Stream and subject names. Each producing service owns one stream,
//! `<prefix>_<SERVICE>`, holding subjects `<prefix>.<service>.<event>`; its
//! dead letters go to `<prefix>_DLQ` under `<prefix>.dlq.<consumer>`.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

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
