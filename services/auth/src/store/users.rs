//! Accounts.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_runtime::{Error, ErrorCode, Result};

/// A row of `users`.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub email_verified: bool,
    pub banned_at: Option<DateTime<Utc>>,
    pub token_version: i64,
    pub created_at: DateTime<Utc>,
}

/// Inserts an account; a taken email is ALREADY_EXISTS.
#[tracing::instrument(name = "db.insert", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    email: &str,
    display_name: &str,
    password_hash: &str,
) -> Result<UserRow> {
    sqlx::query_as!(
        UserRow,
        r#"INSERT INTO users (id, email, display_name, password_hash)
           VALUES ($1, $2, $3, $4)
           RETURNING id, email, display_name, password_hash, role, email_verified,
                     banned_at, token_version, created_at"#,
        id,
        email,
        display_name,
        password_hash
    )
    .fetch_one(conn)
    .await
    .map_err(|e| match e.as_database_error() {
        Some(db) if db.is_unique_violation() => Error::new(
            ErrorCode::AlreadyExists,
            "email: an account with this email already exists",
        ),
        _ => e.into(),
    })
}

/// The account with `email` (normalised), if any.
#[tracing::instrument(name = "db.by_email", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn by_email(conn: &mut PgConnection, email: &str) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, display_name, password_hash, role, email_verified,
                  banned_at, token_version, created_at
           FROM users WHERE email = $1"#,
        email
    )
    .fetch_optional(conn)
    .await?)
}

/// The account with `id`, if any.
#[tracing::instrument(name = "db.by_id", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, display_name, password_hash, role, email_verified,
                  banned_at, token_version, created_at
           FROM users WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// The account with `id`, or NOT_FOUND naming `field`.
#[tracing::instrument(name = "db.require", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn require(conn: &mut PgConnection, id: Uuid, field: &str) -> Result<UserRow> {
    by_id(conn, id)
        .await?
        .ok_or_else(|| Error::new(ErrorCode::NotFound, format!("{field}: no such user")))
}

/// Kills every access token of the user; returns the new version.
#[tracing::instrument(name = "db.bump_token_version", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn bump_token_version(conn: &mut PgConnection, id: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        "UPDATE users SET token_version = token_version + 1, updated_at = now()
         WHERE id = $1 RETURNING token_version",
        id
    )
    .fetch_one(conn)
    .await?)
}

/// Marks the email verified.
#[tracing::instrument(name = "db.set_verified", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn set_verified(conn: &mut PgConnection, id: Uuid) -> Result<()> {
    sqlx::query!(
        "UPDATE users SET email_verified = true, updated_at = now() WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the password hash and kills every access token; returns the new version.
#[tracing::instrument(name = "db.set_password", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn set_password(conn: &mut PgConnection, id: Uuid, hash: &str) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        "UPDATE users SET password_hash = $2, token_version = token_version + 1, updated_at = now()
         WHERE id = $1 RETURNING token_version",
        id,
        hash
    )
    .fetch_one(conn)
    .await?)
}

/// Changes the role and kills tokens carrying the old one.
#[tracing::instrument(name = "db.set_role", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn set_role(conn: &mut PgConnection, id: Uuid, role: &str) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as!(
        UserRow,
        r#"UPDATE users SET role = $2, token_version = token_version + 1, updated_at = now()
           WHERE id = $1
           RETURNING id, email, display_name, password_hash, role, email_verified,
                     banned_at, token_version, created_at"#,
        id,
        role
    )
    .fetch_optional(conn)
    .await?)
}

/// Bans (`reason` given) or unbans (`None`); a ban kills every access token.
#[tracing::instrument(name = "db.set_banned", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn set_banned(
    conn: &mut PgConnection,
    id: Uuid,
    reason: Option<&str>,
) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as!(
        UserRow,
        r#"UPDATE users
           SET banned_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END,
               ban_reason = $2,
               token_version = token_version + CASE WHEN $2::text IS NULL THEN 0 ELSE 1 END,
               updated_at = now()
           WHERE id = $1
           RETURNING id, email, display_name, password_hash, role, email_verified,
                     banned_at, token_version, created_at"#,
        id,
        reason
    )
    .fetch_optional(conn)
    .await?)
}

/// The display names of the accounts among `ids` that exist and are not
/// banned.
#[tracing::instrument(name = "db.public_names", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn public_names(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>> {
    Ok(sqlx::query!(
        "SELECT id, display_name FROM users WHERE id = ANY($1) AND banned_at IS NULL",
        ids
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| (r.id, r.display_name))
    .collect())
}
