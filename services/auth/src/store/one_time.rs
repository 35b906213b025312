//! Single-use, expiring tokens for email verification and password reset.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_runtime::{Error, ErrorCode, Result};

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms the email address.
    VerifyEmail,
    /// Sets a new password.
    ResetPassword,
}

impl Purpose {
    /// The stored name, also the purpose a sealed link token is bound to.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// Stores a token hash for `user_id`.
#[tracing::instrument(name = "db.insert", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn insert(
    conn: &mut PgConnection,
    hash: &[u8],
    user_id: Uuid,
    purpose: Purpose,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
        hash,
        user_id,
        purpose.as_str(),
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Uses the token up and returns its user, or says why it cannot be used.
#[tracing::instrument(name = "db.consume", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn consume(conn: &mut PgConnection, hash: &[u8], purpose: Purpose) -> Result<Uuid> {
    let claimed = sqlx::query_scalar!(
        "UPDATE one_time_tokens SET used_at = now()
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id",
        hash,
        purpose.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(user_id) = claimed {
        return Ok(user_id);
    }
    let state = sqlx::query!(
        r#"SELECT used_at IS NOT NULL AS "used!" FROM one_time_tokens WHERE token_hash = $1 AND purpose = $2"#,
        hash,
        purpose.as_str()
    )
    .fetch_optional(conn)
    .await?;
    Err(match state {
        None => Error::invalid("token", "is not a token we issued"),
        Some(s) if s.used => Error::new(
            ErrorCode::FailedPrecondition,
            "token: has already been used",
        ),
        Some(_) => Error::new(
            ErrorCode::FailedPrecondition,
            "token: has expired; request a new one",
        ),
    })
}

/// Voids the unused tokens of `user_id` for `purpose` (a new one supersedes them).
#[tracing::instrument(name = "db.void_unused", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn void_unused(conn: &mut PgConnection, user_id: Uuid, purpose: Purpose) -> Result<()> {
    sqlx::query!(
        "UPDATE one_time_tokens SET expires_at = LEAST(expires_at, now())
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        user_id,
        purpose.as_str()
    )
    .execute(conn)
    .await?;
    Ok(())
}
