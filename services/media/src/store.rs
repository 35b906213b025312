//! Image rows (compile-checked SQL) and their bytes (object storage).

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use cityevents_proto::cityevents::media::v1 as pb;

use crate::process::variant_name;

#[derive(Debug, Clone)]
pub struct ImageRow {
    pub image_id: Uuid,
    pub owner_id: Uuid,
    pub sha256: String,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub size_bytes: i64,
    pub status: String,
    pub error: String,
    pub variants: Vec<String>,
}

impl From<ImageRow> for pb::Image {
    fn from(r: ImageRow) -> Self {
        let variants = r
            .variants
            .iter()
            .filter_map(|v| match v.as_str() {
                "thumbnail" => Some(pb::Variant::Thumbnail),
                "card" => Some(pb::Variant::Card),
                "cover" => Some(pb::Variant::Cover),
                "original" => Some(pb::Variant::Original),
                _ => None,
            })
            .map(|v| v as i32)
            .collect();
        Self {
            id: r.image_id.to_string(),
            owner_id: r.owner_id.to_string(),
            content_type: r.content_type,
            width: r.width,
            height: r.height,
            size_bytes: r.size_bytes,
            variants,
            status: match r.status.as_str() {
                "ready" => pb::ImageStatus::Ready,
                "failed" => pb::ImageStatus::Failed,
                _ => pb::ImageStatus::Processing,
            } as i32,
            error: r.error,
        }
    }
}

/// Inserts a new image, or finds this owner's image of the same bytes.
#[tracing::instrument(name = "db.insert", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn insert(pool: &PgPool, row: &ImageRow) -> sqlx::Result<(ImageRow, bool)> {
    let inserted = sqlx::query!(
        "INSERT INTO images (image_id, owner_id, sha256, content_type, width, height, size_bytes, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'processing')
         ON CONFLICT (owner_id, sha256) DO NOTHING",
        row.image_id,
        row.owner_id,
        row.sha256,
        row.content_type,
        row.width,
        row.height,
        row.size_bytes
    )
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    let found = sqlx::query_as!(
        ImageRow,
        "SELECT image_id, owner_id, sha256, content_type, width, height, size_bytes, status, error, variants
         FROM images WHERE owner_id = $1 AND sha256 = $2",
        row.owner_id,
        row.sha256
    )
    .fetch_one(pool)
    .await?;
    Ok((found, inserted))
}

#[tracing::instrument(name = "db.get", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<ImageRow>> {
    sqlx::query_as!(
        ImageRow,
        "SELECT image_id, owner_id, sha256, content_type, width, height, size_bytes, status, error, variants
         FROM images WHERE image_id = $1",
        id
    )
    .fetch_optional(pool)
    .await
}

/// The variants already made of these bytes (for anyone), if any.
#[tracing::instrument(name = "db.variants_of", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn variants_of(pool: &PgPool, sha: &str) -> sqlx::Result<Option<Vec<String>>> {
    sqlx::query_scalar!(
        "SELECT variants FROM images WHERE sha256 = $1 AND status = 'ready' LIMIT 1",
        sha
    )
    .fetch_optional(pool)
    .await
}

/// Marks every image of `sha` ready with `variants`, or failed with `error`.
#[tracing::instrument(name = "db.finish", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn finish(
    pool: &PgPool,
    sha: &str,
    variants: &[String],
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE images SET status = CASE WHEN $3::text IS NULL THEN 'ready' ELSE 'failed' END,
           variants = $2, error = coalesce($3, '')
         WHERE sha256 = $1 AND status = 'processing'",
        sha,
        variants,
        error
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Images whose processing was cut short (a restart): their shas.
#[tracing::instrument(name = "db.unfinished", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn unfinished(pool: &PgPool) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query!(
        "SELECT DISTINCT sha256, content_type FROM images WHERE status = 'processing'"
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.sha256, r.content_type))
        .collect())
}

/// Ready images among `ids`, in the order asked (unknown ones left out).
#[tracing::instrument(name = "db.ready", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn ready(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<ImageRow>> {
    let mut rows = sqlx::query_as!(
        ImageRow,
        "SELECT image_id, owner_id, sha256, content_type, width, height, size_bytes, status, error, variants
         FROM images WHERE image_id = ANY($1) AND status = 'ready'",
        ids
    )
    .fetch_all(pool)
    .await?;
    rows.sort_by_key(|r| ids.iter().position(|id| *id == r.image_id));
    Ok(rows)
}

/// Deletes `id` if `owner` owns it; returns its sha, or `None` if there
/// was no such image of theirs.
#[tracing::instrument(name = "db.delete", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn delete(pool: &PgPool, id: Uuid, owner: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "DELETE FROM images WHERE image_id = $1 AND owner_id = $2 RETURNING sha256",
        id,
        owner
    )
    .fetch_optional(pool)
    .await
}

/// Whether any image still has bytes `sha` (after a delete: may they go?).
#[tracing::instrument(name = "db.shared", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn shared(pool: &PgPool, sha: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM images WHERE sha256 = $1) AS "e!""#,
        sha
    )
    .fetch_one(pool)
    .await
}

/// Why an image may not be attached.
#[derive(Debug, PartialEq, Eq)]
pub enum NotAttachable {
    Missing(Uuid),
    NotYours(Uuid),
    NotReady(Uuid, String),
}

/// Attaches `ids` to `subject` for `user`: each must exist, be ready, and
/// be theirs or attached to `subject` already. All or none.
#[tracing::instrument(name = "db.attach", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn attach(
    pool: &PgPool,
    subject: &str,
    ids: &[Uuid],
    user: Uuid,
) -> sqlx::Result<Result<Vec<ImageRow>, NotAttachable>> {
    let mut tx = pool.begin().await?;
    // Locked, so the collector cannot take one between check and attach.
    let rows = sqlx::query!(
        r#"SELECT i.image_id, i.owner_id, i.status,
                  EXISTS (SELECT 1 FROM attachments a
                          WHERE a.image_id = i.image_id AND a.subject = $2) AS "here!"
           FROM images i WHERE i.image_id = ANY($1) FOR UPDATE"#,
        ids,
        subject
    )
    .fetch_all(&mut *tx)
    .await?;
    for id in ids {
        let Some(r) = rows.iter().find(|r| r.image_id == *id) else {
            return Ok(Err(NotAttachable::Missing(*id)));
        };
        if r.owner_id != user && !r.here {
            return Ok(Err(NotAttachable::NotYours(*id)));
        }
        if r.status != "ready" {
            return Ok(Err(NotAttachable::NotReady(*id, r.status.clone())));
        }
    }
    sqlx::query!(
        "INSERT INTO attachments (image_id, subject) SELECT unnest($1::uuid[]), $2
         ON CONFLICT DO NOTHING",
        ids,
        subject
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE images SET unattached_since = NULL WHERE image_id = ANY($1)",
        ids
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // All were checked ready above: one read gives them back, in order.
    Ok(Ok(ready(pool, ids).await?))
}

/// Makes `subject`'s attachments exactly `ids` (those that exist), unless
/// a newer `version` of it was applied already. Images left with no
/// attachment start their grace period.
#[tracing::instrument(name = "db.sync", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn sync(
    conn: &mut PgConnection,
    subject: &str,
    version: i64,
    ids: &[Uuid],
) -> sqlx::Result<()> {
    let newer = sqlx::query!(
        "INSERT INTO attachment_subjects (subject, version) VALUES ($1, $2)
         ON CONFLICT (subject) DO UPDATE SET version = EXCLUDED.version
           WHERE attachment_subjects.version < EXCLUDED.version",
        subject,
        version
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !newer {
        return Ok(());
    }
    let dropped = sqlx::query_scalar!(
        "DELETE FROM attachments WHERE subject = $1 AND image_id <> ALL($2) RETURNING image_id",
        subject,
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO attachments (image_id, subject)
         SELECT image_id, $2 FROM images WHERE image_id = ANY($1)
         ON CONFLICT DO NOTHING",
        ids,
        subject
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE images SET unattached_since = NULL WHERE image_id = ANY($1)",
        ids
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE images i SET unattached_since = now()
         WHERE i.image_id = ANY($1) AND i.unattached_since IS NULL
           AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.image_id = i.image_id)",
        &dropped
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes up to `limit` images unattached for longer than `grace_secs`;
/// returns their shas.
#[tracing::instrument(name = "db.collect", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn collect(pool: &PgPool, grace_secs: f64, limit: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "DELETE FROM images WHERE image_id IN (
           SELECT image_id FROM images
           WHERE unattached_since < now() - make_interval(secs => $1)
           ORDER BY unattached_since LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING sha256",
        grace_secs,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Where the bytes live.
pub fn upload_path(sha: &str) -> Path {
    Path::from(format!("uploads/{sha}"))
}

/// Where an upload's bytes land while they arrive (before their sha is
/// known).
pub fn incoming_path(id: Uuid) -> Path {
    Path::from(format!("incoming/{id}"))
}

pub fn variant_path(sha: &str, variant: pb::Variant, ext: &str) -> Path {
    Path::from(format!("images/{sha}/{}.{ext}", variant_name(variant)))
}

pub async fn put(store: &dyn ObjectStore, path: &Path, bytes: Vec<u8>) -> object_store::Result<()> {
    store.put(path, PutPayload::from(bytes)).await.map(|_| ())
}

pub async fn read(store: &dyn ObjectStore, path: &Path) -> object_store::Result<Bytes> {
    store.get(path).await?.bytes().await
}

/// Removes the variants of `sha` (every image of those bytes is gone).
pub async fn remove_variants(store: &dyn ObjectStore, sha: &str) {
    for (v, _) in crate::process::SIZES {
        for ext in ["webp", "jpg"] {
            if let Err(e) = store.delete(&variant_path(sha, v, ext)).await
                && !matches!(e, object_store::Error::NotFound { .. })
            {
                tracing::warn!(%sha, error = %e, "deleting a variant failed");
            }
        }
    }
}
