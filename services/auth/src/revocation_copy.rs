//! Keeps Redis's copy of the revocation state true to the database, the
//! source of truth: token versions (`users.token_version`) and sessions
//! ended within an access token's life (`sessions.revoked_at`).
//!
//! Handlers still write Redis right after their commit, so a logout or ban
//! takes effect at once; this copier makes it certain. Every second it
//! writes what changed since its last round (with an overlap for
//! transactions that committed late), so a write that failed after a commit
//! lands as soon as Redis answers. When the `synced` marker is missing
//! (Redis lost its data) it copies everything, then sets the marker;
//! until then verifiers refuse every token (fail closed). Writes are
//! monotonic and idempotent, so repeating them is harmless.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use cityevents_authn::Revocations;
use cityevents_runtime::CancellationToken;

/// How often the copier runs.
const EVERY: Duration = Duration::from_secs(1);
/// How far back each round looks before the previous round's start.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(30);

/// The copier; [`RevocationCopy::run`] is a host task.
pub struct RevocationCopy {
    pub pool: PgPool,
    pub revocations: Revocations,
    /// An access token's longest life (TTL plus leeway), in seconds.
    pub access_ttl_secs: u64,
}

impl RevocationCopy {
    /// Copies every round until `stop`.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let mut since = None;
        loop {
            match self.round(since).await {
                Ok(started) => since = Some(started),
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "revocation copy failed; retrying")
                }
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// One round: everything when Redis lacks the marker or `since` is
    /// unknown, else what changed since `since`. Returns when it started
    /// (the database's clock).
    pub async fn round(&self, since: Option<DateTime<Utc>>) -> anyhow::Result<DateTime<Utc>> {
        let full = since.is_none() || !self.revocations.is_synced().await?;
        let from = if full {
            None
        } else {
            since.map(|s| s - OVERLAP)
        };
        let started: DateTime<Utc> = sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
            .fetch_one(&self.pool)
            .await?;
        let versions: Vec<(Uuid, i64)> = sqlx::query!(
            "SELECT id, token_version FROM users
             WHERE token_version > 0 AND ($1::timestamptz IS NULL OR updated_at >= $1)",
            from
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| (r.id, r.token_version))
        .collect();
        let ttl = self.access_ttl_secs as f64;
        let sessions: Vec<(Uuid, u64)> = sqlx::query!(
            r#"SELECT id, EXTRACT(EPOCH FROM revoked_at - now())::float8 + $2 AS "left!"
               FROM sessions
               WHERE revoked_at > now() - make_interval(secs => $2) AND ($1::timestamptz IS NULL OR revoked_at >= $1)"#,
            from,
            ttl
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| (r.id, r.left.ceil().max(1.0) as u64))
        .collect();
        self.revocations.set_token_versions(&versions).await?;
        self.revocations.revoke_sessions(&sessions).await?;
        if full {
            self.revocations.mark_synced().await?;
            tracing::info!(
                users = versions.len(),
                sessions = sessions.len(),
                "revocation state copied to redis"
            );
        }
        Ok(started)
    }
}
