//! Revocation state in Redis, written by the auth service and read by every
//! verifier: `<prefix>tv:<user>` holds the user's current token version and
//! `<prefix>sid:<session>` marks an ended session until its last access token
//! has expired.

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use crate::claims::Claims;

/// Reads and writes revocation keys.
#[derive(Clone)]
pub struct Revocations {
    conn: ConnectionManager,
    prefix: String,
}

impl Revocations {
    /// Uses `conn`, with keys under `prefix` (shared by auth and verifiers).
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self {
            conn,
            prefix: prefix.into(),
        }
    }

    fn tv_key(&self, user: Uuid) -> String {
        format!("{}tv:{user}", self.prefix)
    }

    fn sid_key(&self, sid: Uuid) -> String {
        format!("{}sid:{sid}", self.prefix)
    }

    /// Records `version` as the user's current token version; tokens with a
    /// lower one are dead from now on.
    pub async fn set_token_version(&self, user: Uuid, version: i64) -> redis::RedisResult<()> {
        self.conn.clone().set(self.tv_key(user), version).await
    }

    /// Ends a session: its access tokens are refused until `ttl_secs` (their
    /// longest remaining life) has passed.
    pub async fn revoke_session(&self, sid: Uuid, ttl_secs: u64) -> redis::RedisResult<()> {
        self.conn
            .clone()
            .set_ex(self.sid_key(sid), 1, ttl_secs.max(1))
            .await
    }

    /// Whether the token described by `claims` has been revoked.
    pub async fn is_revoked(&self, claims: &Claims) -> redis::RedisResult<bool> {
        let (tv, sid): (Option<i64>, Option<i64>) = redis::pipe()
            .get(self.tv_key(claims.sub))
            .get(self.sid_key(claims.sid))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(sid.is_some() || tv.is_some_and(|current| current > claims.tv))
    }
}
