//! Image rows (compile-checked SQL) and their bytes (object storage).

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::PgPool;
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
pub async fn variants_of(pool: &PgPool, sha: &str) -> sqlx::Result<Option<Vec<String>>> {
    sqlx::query_scalar!(
        "SELECT variants FROM images WHERE sha256 = $1 AND status = 'ready' LIMIT 1",
        sha
    )
    .fetch_optional(pool)
    .await
}

/// Marks every image of `sha` ready with `variants`, or failed with `error`.
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

/// Deletes `id` if `owner` owns it; returns the sha if no other image
/// shares its bytes (they can go too).
pub async fn delete(pool: &PgPool, id: Uuid, owner: Uuid) -> sqlx::Result<Option<Option<String>>> {
    let Some(sha) = sqlx::query_scalar!(
        "DELETE FROM images WHERE image_id = $1 AND owner_id = $2 RETURNING sha256",
        id,
        owner
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let shared = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM images WHERE sha256 = $1) AS "e!""#,
        sha
    )
    .fetch_one(pool)
    .await?;
    Ok(Some((!shared).then_some(sha)))
}

/// Where the bytes live.
pub fn upload_path(sha: &str) -> Path {
    Path::from(format!("uploads/{sha}"))
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
