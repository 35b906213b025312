//! Sessions (refresh-token families) and their refresh tokens.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_runtime::Result;

/// Starts a session for `user_id`.
#[tracing::instrument(name = "db.create", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn create(conn: &mut PgConnection, user_id: Uuid) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO sessions (id, user_id) VALUES ($1, $2)",
        id,
        user_id
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// Ends one session of `user_id`; false if it was not theirs or already ended.
#[tracing::instrument(name = "db.revoke", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn revoke(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    reason: &str,
) -> Result<bool> {
    let done = sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoke_reason = $3
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        id,
        user_id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of `user_id`.
#[tracing::instrument(name = "db.revoke_all", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn revoke_all(conn: &mut PgConnection, user_id: Uuid, reason: &str) -> Result<u64> {
    let done = sqlx::query!(
        "UPDATE sessions SET revoked_at = now(), revoke_reason = $2
         WHERE user_id = $1 AND revoked_at IS NULL",
        user_id,
        reason
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Stores a refresh token's hash in `session_id`'s family.
#[tracing::instrument(name = "db.insert_refresh", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn insert_refresh(
    conn: &mut PgConnection,
    hash: &[u8],
    session_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        hash,
        session_id,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A refresh token as stored.
#[derive(Debug)]
pub struct RefreshRow {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub used: bool,
    pub expired: bool,
    pub session_revoked: bool,
}

/// Marks the token used if it was unused and unexpired, in one statement, so
/// of two racing refreshes exactly one wins. `None`: the token was not
/// claimable; look it up with [`lookup_refresh`] to tell why.
#[tracing::instrument(name = "db.claim_refresh", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn claim_refresh(conn: &mut PgConnection, hash: &[u8]) -> Result<Option<(Uuid, Uuid)>> {
    let row = sqlx::query!(
        r#"UPDATE refresh_tokens rt SET used_at = now()
           FROM sessions s
           WHERE rt.token_hash = $1 AND rt.used_at IS NULL AND rt.expires_at > now()
             AND s.id = rt.session_id AND s.revoked_at IS NULL
           RETURNING rt.session_id, s.user_id"#,
        hash
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.session_id, r.user_id)))
}

/// What is known of a refresh token, claimable or not.
#[tracing::instrument(name = "db.lookup_refresh", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn lookup_refresh(conn: &mut PgConnection, hash: &[u8]) -> Result<Option<RefreshRow>> {
    Ok(sqlx::query_as!(
        RefreshRow,
        r#"SELECT rt.session_id, s.user_id,
                  rt.used_at IS NOT NULL AS "used!",
                  rt.expires_at <= now() AS "expired!",
                  s.revoked_at IS NOT NULL AS "session_revoked!"
           FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
           WHERE rt.token_hash = $1"#,
        hash
    )
    .fetch_optional(conn)
    .await?)
}
