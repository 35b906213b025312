//! Writing domain events in the caller's transaction.

use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_runtime::Result;

/// Writes one event; call it with the transaction that makes the change.
pub async fn enqueue(
    conn: &mut PgConnection,
    event_type: &str,
    aggregate_id: impl ToString,
    payload: &impl prost::Message,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO outbox (id, event_type, aggregate_id, payload, traceparent) VALUES ($1, $2, $3, $4, $5)",
        id,
        event_type,
        aggregate_id.to_string(),
        payload.encode_to_vec(),
        cityevents_runtime::telemetry::current_traceparent()
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// An event to write in bulk with [`enqueue_many`].
pub struct NewEvent {
    /// Dotted type, e.g. "join.confirmed".
    pub event_type: &'static str,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

/// Writes many events in one statement (the join hot path).
pub async fn enqueue_many(conn: &mut PgConnection, events: Vec<NewEvent>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let traceparent = cityevents_runtime::telemetry::current_traceparent();
    let n = events.len();
    let (mut ids, mut types, mut aggs, mut payloads) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in events {
        ids.push(Uuid::now_v7());
        types.push(e.event_type.to_owned());
        aggs.push(e.aggregate_id);
        payloads.push(e.payload);
    }
    sqlx::query!(
        "INSERT INTO outbox (id, event_type, aggregate_id, payload, traceparent)
         SELECT *, $5 FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bytea[])",
        &ids,
        &types,
        &aggs,
        &payloads,
        traceparent
    )
    .execute(conn)
    .await?;
    Ok(())
}
