//! Revocation state in Redis, written by the auth service and read by every
//! verifier: `<prefix>tv:<user>` holds the user's current token version and
//! `<prefix>sid:<session>` marks an ended session until its last access token
//! has expired.
//!
//! Every request is checked, so checks are batched: the requests waiting
//! while one `MGET` is out go together in the next (one command and one
//! round trip for a burst instead of one each). A check is never answered
//! from an earlier read.

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::claims::Claims;

/// Checks sent together at most.
const MAX_BATCH: usize = 256;

/// One revocation check waiting for its batch: the token-version and
/// session keys, and where their values go.
struct Check {
    keys: [String; 2],
    reply: oneshot::Sender<redis::RedisResult<(Option<i64>, Option<i64>)>>,
}

/// Reads and writes revocation keys; cheap to clone.
#[derive(Clone)]
pub struct Revocations {
    conn: ConnectionManager,
    prefix: String,
    checks: mpsc::Sender<Check>,
}

impl Revocations {
    /// Uses `conn`, with keys under `prefix` (shared by auth and verifiers).
    /// Spawns the batching task, which ends when the last clone is dropped;
    /// call from within a Tokio runtime.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>) -> Self {
        let (checks, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run_checks(conn.clone(), queue));
        Self {
            conn,
            prefix: prefix.into(),
            checks,
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

    /// Whether the token described by `claims` has been revoked, as Redis
    /// says now (the read starts after this call).
    pub async fn is_revoked(&self, claims: &Claims) -> redis::RedisResult<bool> {
        let (reply, answer) = oneshot::channel();
        let check = Check {
            keys: [self.tv_key(claims.sub), self.sid_key(claims.sid)],
            reply,
        };
        let stopped =
            || redis::RedisError::from((redis::ErrorKind::Io, "revocation checks stopped"));
        self.checks.send(check).await.map_err(|_| stopped())?;
        let (tv, sid) = answer.await.map_err(|_| stopped())??;
        Ok(sid.is_some() || tv.is_some_and(|current| current > claims.tv))
    }
}

/// Sends the waiting checks as one `MGET` at a time until every
/// [`Revocations`] clone is gone.
async fn run_checks(mut conn: ConnectionManager, mut queue: mpsc::Receiver<Check>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let keys: Vec<&String> = batch.iter().flat_map(|c| &c.keys).collect();
        let values: redis::RedisResult<Vec<Option<i64>>> = conn.mget(keys).await;
        match values {
            // A reply left unsent (never, short of a protocol fault) reads as
            // an error on its receiver: the check fails closed.
            Ok(values) => {
                for (check, pair) in batch.drain(..).zip(values.chunks_exact(2)) {
                    let _ = check.reply.send(Ok((pair[0], pair[1])));
                }
            }
            Err(e) => {
                for check in batch.drain(..) {
                    let _ = check.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
