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
    /// The W3C `traceparent` of the request that caused it; empty: the
    /// current span's (a batch writes each join's own).
    pub traceparent: String,
}

/// Events as the outbox's column arrays, for a caller that writes them in a
/// statement of its own (the join batch folds them into one round trip).
/// Each row carries its own trace context, or the current one.
pub struct Rows {
    pub ids: Vec<Uuid>,
    pub types: Vec<String>,
    pub aggregates: Vec<String>,
    pub payloads: Vec<Vec<u8>>,
    pub traceparents: Vec<String>,
}

impl Rows {
    pub fn new(events: Vec<NewEvent>) -> Self {
        let n = events.len();
        let current = cityevents_runtime::telemetry::current_traceparent();
        let mut rows = Rows {
            ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            aggregates: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            traceparents: Vec::with_capacity(n),
        };
        for e in events {
            rows.ids.push(Uuid::now_v7());
            rows.types.push(e.event_type.to_owned());
            rows.aggregates.push(e.aggregate_id);
            rows.payloads.push(e.payload);
            rows.traceparents.push(if e.traceparent.is_empty() {
                current.clone()
            } else {
                e.traceparent
            });
        }
        rows
    }
}

/// Writes many events in one statement.
pub async fn enqueue_many(conn: &mut PgConnection, events: Vec<NewEvent>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = Rows::new(events);
    sqlx::query!(
        "INSERT INTO outbox (id, event_type, aggregate_id, payload, traceparent)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[])",
        &rows.ids,
        &rows.types,
        &rows.aggregates,
        &rows.payloads,
        &rows.traceparents
    )
    .execute(conn)
    .await?;
    Ok(())
}
