//! The transactional outbox: a domain event is a row written in the same
//! transaction as the change it describes. The relay publishes it later.

use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_runtime::Result;

/// Writes one event. Call with the transaction that makes the change.
pub async fn enqueue(
    conn: &mut PgConnection,
    event_type: &str,
    aggregate_id: Uuid,
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
