//! The event database (compile-checked SQL).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_runtime::{Error, ErrorCode, Result};

/// An event as stored, with its co-organizers.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: Uuid,
    pub organizer_id: Uuid,
    pub status: String,
    pub hidden: bool,
    pub version: i64,
    pub draft: Vec<u8>,
    pub ends_at: DateTime<Utc>,
    pub co_organizers: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EventRow {
    /// Organizer or co-organizer.
    pub fn is_organizer(&self, user: Uuid) -> bool {
        self.organizer_id == user || self.co_organizers.contains(&user)
    }
}

#[tracing::instrument(name = "db.insert", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    organizer: Uuid,
    draft: &[u8],
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO events (id, organizer_id, draft, starts_at, ends_at) VALUES ($1, $2, $3, $4, $5)",
        id,
        organizer,
        draft,
        starts_at,
        ends_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The event, locked for the rest of the transaction when `lock` is set.
#[tracing::instrument(name = "db.get", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<EventRow>> {
    Ok(sqlx::query_as!(
        EventRow,
        r#"SELECT e.id, e.organizer_id, e.status, e.hidden, e.version, e.draft, e.ends_at, e.created_at, e.updated_at,
                  COALESCE((SELECT array_agg(c.user_id ORDER BY c.user_id) FROM co_organizers c WHERE c.event_id = e.id),
                           '{}') AS "co_organizers!"
           FROM events e WHERE e.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// Locks the event row for the transaction and returns it, or NOT_FOUND.
#[tracing::instrument(name = "db.lock", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<EventRow> {
    sqlx::query!("SELECT id FROM events WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?;
    get(conn, id).await?.ok_or_else(not_found)
}

pub fn not_found() -> Error {
    Error::no_such_event()
}

/// Replaces the draft and bumps the version.
#[tracing::instrument(name = "db.update_draft", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn update_draft(
    conn: &mut PgConnection,
    id: Uuid,
    draft: &[u8],
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE events SET draft = $2, starts_at = $3, ends_at = $4, version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        draft,
        starts_at,
        ends_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "db.set_status", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE events SET status = $2, cancel_reason = $3, version = version + 1, updated_at = now() WHERE id = $1",
        id,
        status,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "db.set_hidden", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn set_hidden(conn: &mut PgConnection, id: Uuid, hidden: bool) -> Result<()> {
    sqlx::query!(
        "UPDATE events SET hidden = $2, version = version + 1, updated_at = now() WHERE id = $1",
        id,
        hidden
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds (`add`) or removes a co-organizer and bumps the version.
#[tracing::instrument(name = "db.set_co_organizer", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn set_co_organizer(
    conn: &mut PgConnection,
    id: Uuid,
    user: Uuid,
    add: bool,
) -> Result<()> {
    if add {
        sqlx::query!(
            "INSERT INTO co_organizers VALUES ($1, $2) ON CONFLICT DO NOTHING",
            id,
            user
        )
        .execute(&mut *conn)
        .await?;
    } else {
        sqlx::query!(
            "DELETE FROM co_organizers WHERE event_id = $1 AND user_id = $2",
            id,
            user
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query!(
        "UPDATE events SET version = version + 1, updated_at = now() WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Events `user` organizes or co-organizes, by id, after `after`.
#[tracing::instrument(name = "db.list_organized", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn list_organized(
    conn: &mut PgConnection,
    user: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM events
           WHERE (organizer_id = $1 OR id IN (SELECT event_id FROM co_organizers WHERE user_id = $1))
             AND ($2::uuid IS NULL OR id > $2)
           ORDER BY id LIMIT $3"#,
        user,
        after,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Files a report; a second one by the same user is ALREADY_EXISTS.
#[tracing::instrument(name = "db.report", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn report(
    conn: &mut PgConnection,
    event: Uuid,
    reporter: Uuid,
    reason: &str,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO reports (id, event_id, reporter_id, reason) VALUES ($1, $2, $3, $4)",
        id,
        event,
        reporter,
        reason
    )
    .execute(conn)
    .await
    .map_err(|e| match e.as_database_error() {
        Some(db) if db.is_unique_violation() => {
            Error::new(ErrorCode::AlreadyExists, "you already reported this event")
        }
        _ => e.into(),
    })?;
    Ok(id)
}

/// A row of `reports`.
pub struct ReportRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub reporter_id: Uuid,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

#[tracing::instrument(name = "db.list_reports", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn list_reports(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ReportRow>> {
    Ok(sqlx::query_as!(
        ReportRow,
        "SELECT id, event_id, reporter_id, reason, created_at FROM reports
         WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
        after,
        limit
    )
    .fetch_all(conn)
    .await?)
}

#[tracing::instrument(name = "db.audit", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn audit(
    conn: &mut PgConnection,
    event: Uuid,
    moderator: Uuid,
    action: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO moderation_audit (event_id, moderator_id, action, reason) VALUES ($1, $2, $3, $4)",
        event,
        moderator,
        action,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}
