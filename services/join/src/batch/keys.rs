//! Idempotency keys inside the batch's transaction: claimed before deciding
//! (in one order, so batches never deadlock on each other's claims), the
//! first answer stored before commit, and a repeat answered from what is
//! stored. An expired key is free again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use cityevents_runtime::{CancellationToken, Error, ErrorCode};

/// A client's `idempotency-key` and the hash of the request it came with.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    pub key: String,
    pub hash: Vec<u8>,
}

/// `(user, key)`: what a key is unique by.
pub(super) type KeyId = (Uuid, String);

pub fn key_reused() -> Error {
    Error::new(
        ErrorCode::FailedPrecondition,
        "idempotency-key: already used for a different request",
    )
    .with_reason("IDEMPOTENCY_KEY_REUSED")
}

/// Claims `keys`; returns the ones this transaction now owns. The others
/// are held by a committed request (a claim waits for an uncommitted one).
pub(super) async fn claim(
    conn: &mut PgConnection,
    mut keys: Vec<(KeyId, Vec<u8>)>,
) -> anyhow::Result<HashSet<KeyId>> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let (mut users, mut names, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for ((user, key), hash) in keys {
        users.push(user);
        names.push(key);
        hashes.push(hash);
    }
    let rows = sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, expires_at)
         SELECT u, k, h, now() + interval '24 hours'
         FROM UNNEST($1::uuid[], $2::text[], $3::bytea[]) WITH ORDINALITY AS t(u, k, h, n) ORDER BY n
         ON CONFLICT (user_id, key) DO UPDATE SET
           request_hash = EXCLUDED.request_hash, response = NULL, expires_at = EXCLUDED.expires_at
         WHERE idempotency_keys.expires_at <= now()
         RETURNING user_id, key",
        &users,
        &names,
        &hashes
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.user_id, r.key)).collect())
}

/// A stored key: the request's hash and the first answer.
pub(super) struct Stored {
    pub hash: Vec<u8>,
    pub response: Option<Vec<u8>>,
}

/// The unexpired stored keys among `keys`.
pub(super) async fn stored(
    conn: &mut PgConnection,
    keys: &[KeyId],
) -> anyhow::Result<HashMap<KeyId, Stored>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (users, names): (Vec<Uuid>, Vec<String>) = keys.iter().cloned().unzip();
    let rows = sqlx::query!(
        "SELECT i.user_id, i.key, i.request_hash, i.response
         FROM idempotency_keys i JOIN UNNEST($1::uuid[], $2::text[]) AS k(u, n) ON i.user_id = k.u AND i.key = k.n
         WHERE i.expires_at > now()",
        &users,
        &names
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let stored = Stored {
                hash: r.request_hash,
                response: r.response,
            };
            ((r.user_id, r.key), stored)
        })
        .collect())
}

/// Stores the first answer of each key in `answered`; frees `failed` keys,
/// so the client's retry is decided afresh.
pub(super) async fn record(
    conn: &mut PgConnection,
    answered: Vec<(KeyId, Vec<u8>)>,
    failed: Vec<KeyId>,
) -> anyhow::Result<()> {
    if !answered.is_empty() {
        let (mut users, mut names, mut responses) = (Vec::new(), Vec::new(), Vec::new());
        for ((user, key), response) in answered {
            users.push(user);
            names.push(key);
            responses.push(response);
        }
        sqlx::query!(
            "UPDATE idempotency_keys SET response = v.r FROM UNNEST($1::uuid[], $2::text[], $3::bytea[]) AS v(u, k, r)
             WHERE user_id = v.u AND key = v.k",
            &users,
            &names,
            &responses
        )
        .execute(&mut *conn)
        .await?;
    }
    if !failed.is_empty() {
        let (users, names): (Vec<Uuid>, Vec<String>) = failed.into_iter().unzip();
        sqlx::query!(
            "DELETE FROM idempotency_keys USING UNNEST($1::uuid[], $2::text[]) AS v(u, k) WHERE user_id = v.u AND key = v.k",
            &users,
            &names
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Expired keys deleted per statement at most.
const SWEEP_BATCH: i64 = 1_000;

/// Deletes expired keys in bounded batches; returns how many.
pub async fn sweep_expired(pool: &PgPool) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let n = sqlx::query!(
            "DELETE FROM idempotency_keys WHERE (user_id, key) IN (
               SELECT user_id, key FROM idempotency_keys WHERE expires_at <= now() LIMIT $1)",
            SWEEP_BATCH
        )
        .execute(pool)
        .await?
        .rows_affected();
        total += n;
        if n < SWEEP_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Sweeps expired keys every `every` until `stop`.
pub async fn sweeper(pool: PgPool, every: Duration, stop: CancellationToken) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
        match sweep_expired(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired idempotency keys deleted"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "idempotency key sweep failed"),
        }
    }
}
