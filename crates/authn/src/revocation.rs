//! Revocation state in Redis, written by the auth service and read by every
//! verifier: `<prefix>tv:<user>` holds the user's current token version and
//! `<prefix>sid:<session>` marks an ended session until its last access token
//! has expired.
//!
//! Every request is checked, so checks are batched: the requests waiting
//! while one `MGET` is out go together in the next (one command and one
//! round trip for a burst instead of one each). A check is never answered
//! from an earlier read.
//!
//! **Fail closed.** The keys are a copy of what auth's database holds. The
//! marker `<prefix>synced` says the copy is complete: auth sets it after
//! writing every token version and recent session revocation. If Redis lost
//! its data (a restart without persistence, a flush), the marker is gone
//! with the keys, and every check fails (UNAVAILABLE) until auth has
//! rebuilt them, instead of silently forgetting bans and logouts.
//!
//! **Monotonic.** Token versions are written with a script that never
//! lowers one, so concurrent or repeated writes cannot bring a revoked
//! token back.

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use cityevents_runtime::metrics::RedisCalls;

use crate::claims::Claims;

/// Checks sent together at most.
const MAX_BATCH: usize = 256;

/// One revocation check waiting for its batch: the token-version and
/// session keys, and where their values go.
struct Check {
    keys: [String; 2],
    /// The token version, the session mark, and the `synced` marker (read
    /// once per batch).
    reply: oneshot::Sender<redis::RedisResult<[Option<i64>; 3]>>,
}

/// Sets each `KEYS[i]` to `ARGV[i]` unless it already holds a higher value.
const SET_MAX: &str = r#"
for i, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '-1')
  if tonumber(ARGV[i]) > current then redis.call('SET', key, ARGV[i]) end
end
return 0
"#;

/// Keys written per script call at most.
const WRITE_CHUNK: usize = 500;

/// Reads and writes revocation keys; cheap to clone.
#[derive(Clone)]
pub struct Revocations {
    conn: ConnectionManager,
    prefix: String,
    checks: mpsc::Sender<Check>,
}

impl Revocations {
    /// Uses `conn`, with keys under `prefix` (shared by auth and verifiers),
    /// counting the checks' Redis calls in `calls`. Spawns the batching
    /// task, which ends when the last clone is dropped; call from within a
    /// Tokio runtime.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>, calls: RedisCalls) -> Self {
        let (checks, queue) = mpsc::channel(4 * MAX_BATCH);
        let prefix = prefix.into();
        let synced = format!("{prefix}synced");
        tokio::spawn(run_checks(conn.clone(), queue, synced, calls));
        Self {
            conn,
            prefix,
            checks,
        }
    }

    fn tv_key(&self, user: Uuid) -> String {
        format!("{}tv:{user}", self.prefix)
    }

    fn sid_key(&self, sid: Uuid) -> String {
        format!("{}sid:{sid}", self.prefix)
    }

    fn synced_key(&self) -> String {
        format!("{}synced", self.prefix)
    }

    /// Records `version` as the user's current token version; tokens with a
    /// lower one are dead from now on. Never lowers a stored version.
    pub async fn set_token_version(&self, user: Uuid, version: i64) -> redis::RedisResult<()> {
        self.set_token_versions(&[(user, version)]).await
    }

    /// [`Revocations::set_token_version`] for many users, a few commands in all.
    pub async fn set_token_versions(&self, versions: &[(Uuid, i64)]) -> redis::RedisResult<()> {
        let script = redis::Script::new(SET_MAX);
        for chunk in versions.chunks(WRITE_CHUNK) {
            let mut call = script.prepare_invoke();
            for (user, version) in chunk {
                call.key(self.tv_key(*user)).arg(*version);
            }
            let _: i64 = call.invoke_async(&mut self.conn.clone()).await?;
        }
        Ok(())
    }

    /// Ends a session: its access tokens are refused until `ttl_secs` (their
    /// longest remaining life) has passed.
    pub async fn revoke_session(&self, sid: Uuid, ttl_secs: u64) -> redis::RedisResult<()> {
        self.revoke_sessions(&[(sid, ttl_secs)]).await
    }

    /// [`Revocations::revoke_session`] for many sessions, one round trip.
    pub async fn revoke_sessions(&self, sessions: &[(Uuid, u64)]) -> redis::RedisResult<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (sid, ttl) in sessions {
            pipe.set_ex(self.sid_key(*sid), 1, (*ttl).max(1)).ignore();
        }
        pipe.query_async(&mut self.conn.clone()).await
    }

    /// Says the copy is complete (auth, after writing everything).
    pub async fn mark_synced(&self) -> redis::RedisResult<()> {
        self.conn.clone().set(self.synced_key(), 1).await
    }

    /// Whether the copy is complete.
    pub async fn is_synced(&self) -> redis::RedisResult<bool> {
        self.conn.clone().exists(self.synced_key()).await
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
        let [tv, sid, synced] = answer.await.map_err(|_| stopped())??;
        if synced.is_none() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "revocation state is not loaded (Redis lost it?); auth is rebuilding it",
            )));
        }
        Ok(sid.is_some() || tv.is_some_and(|current| current > claims.tv))
    }
}

/// Sends the waiting checks as one `MGET` at a time (their keys, then the
/// `synced` marker once) until every [`Revocations`] clone is gone.
async fn run_checks(
    mut conn: ConnectionManager,
    mut queue: mpsc::Receiver<Check>,
    synced: String,
    calls: RedisCalls,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut keys: Vec<&String> = batch.iter().flat_map(|c| &c.keys).collect();
        keys.push(&synced);
        let values: redis::RedisResult<Vec<Option<i64>>> = calls.record(conn.mget(keys).await);
        match values {
            // A reply left unsent (never, short of a protocol fault) reads as
            // an error on its receiver: the check fails closed.
            Ok(values) => {
                let marker = values.last().copied().flatten();
                for (check, v) in batch.drain(..).zip(values.chunks_exact(2)) {
                    let _ = check.reply.send(Ok([v[0], v[1], marker]));
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
