//! `ReadImage`: what a signed URL names, for the BFF to serve over HTTP —
//! the signature checked, a strong ETag (stored bytes never change under
//! one name), one byte range, and the bytes in chunks as the store reads
//! them.

use std::ops::Range;
use std::pin::Pin;

use futures::{Stream, StreamExt, stream};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tonic::Status;
use uuid::Uuid;

use cityevents_proto::cityevents::media::v1::{self as pb, read_image_response::Part};
use cityevents_runtime::{Error, ErrorCode, Result};

use crate::api::State;
use crate::process::{SIZES, variant_name};
use crate::sign::Refused;
use crate::store;

/// The answer's stream: a head, then chunks.
pub type Body =
    Pin<Box<dyn Stream<Item = std::result::Result<pb::ReadImageResponse, Status>> + Send>>;

/// The longest a cache may keep an image, in seconds.
const MAX_AGE: i64 = 86_400;

/// `/media/<uuid>/<variant>.<webp|jpg>` → its parts.
fn parse(path: &str) -> Option<(Uuid, pb::Variant, &'static str)> {
    let rest = path.strip_prefix("/media/")?;
    let (id, file) = rest.split_once('/')?;
    let (name, ext) = file.rsplit_once('.')?;
    let ext = match ext {
        "webp" => "webp",
        "jpg" => "jpg",
        _ => return None,
    };
    let variant = SIZES
        .iter()
        .map(|(v, _)| *v)
        .find(|v| variant_name(*v) == name)?;
    Some((id.parse().ok()?, variant, ext))
}

/// The bytes a range names in an object of `size`; `None` if none are.
fn resolve(r: &pb::ByteRange, size: u64) -> Option<Range<u64>> {
    if r.suffix > 0 {
        let n = u64::try_from(r.suffix).ok()?.min(size);
        return (n > 0).then(|| size - n..size);
    }
    let first = u64::try_from(r.first).ok()?;
    if first >= size {
        return None;
    }
    let end = match u64::try_from(r.last) {
        Ok(last) if last < first => return None,
        Ok(last) => last.saturating_add(1).min(size),
        Err(_) => size,
    };
    Some(first..end)
}

/// Whether an If-None-Match header names `etag`.
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn head_only(head: pb::ImageHead) -> Body {
    Box::pin(stream::once(async move {
        Ok(pb::ReadImageResponse {
            part: Some(Part::Head(head)),
        })
    }))
}

pub async fn read(state: &State, req: pb::ReadImageRequest) -> Result<Body> {
    let no_such = || Error::new(ErrorCode::NotFound, "no such image");
    let (image, variant, ext) = parse(&req.path).ok_or_else(no_such)?;
    let name = variant_name(variant);
    let now = chrono::Utc::now().timestamp();
    let exp = state
        .signer
        .verify(&format!("/media/{image}/{name}"), &req.query, now)
        .map_err(|r| {
            Error::new(
                ErrorCode::PermissionDenied,
                match r {
                    Refused::Expired => {
                        "this image link has expired; read the event again for a fresh one"
                    }
                    _ => "this image link is not signed by us (edited or cut short?)",
                },
            )
        })?;
    let row = store::get(&state.pool, image)
        .await?
        .filter(|r| r.status == "ready" && r.variants.iter().any(|v| v == name))
        .ok_or_else(no_such)?;
    let mut head = pb::ImageHead {
        content_type: if ext == "webp" {
            "image/webp"
        } else {
            "image/jpeg"
        }
        .into(),
        etag: format!(
            "\"{}-{name}-{ext}\"",
            &row.sha256[..16.min(row.sha256.len())]
        ),
        max_age_secs: (exp - now).clamp(0, MAX_AGE),
        ..Default::default()
    };
    if matches(&req.if_none_match, &head.etag) {
        head.not_modified = true;
        return Ok(head_only(head));
    }
    let path = store::variant_path(&row.sha256, variant, ext);
    let unavailable =
        |e: object_store::Error| Error::unavailable(anyhow::anyhow!("reading {path}: {e}"));
    let size = state.store.head(&path).await.map_err(unavailable)?.size;
    head.total_size = i64::try_from(size).unwrap_or(i64::MAX);
    let range = match &req.range {
        None => 0..size,
        Some(r) => match resolve(r, size) {
            Some(range) => {
                head.partial = true;
                range
            }
            None => {
                head.unsatisfiable = true;
                return Ok(head_only(head));
            }
        },
    };
    head.first = i64::try_from(range.start).unwrap_or(0);
    head.length = i64::try_from(range.end - range.start).unwrap_or(0);
    if range.is_empty() {
        return Ok(head_only(head));
    }
    let opts = GetOptions {
        range: Some(GetRange::Bounded(range)),
        ..Default::default()
    };
    let got = state
        .store
        .get_opts(&path, opts)
        .await
        .map_err(unavailable)?;
    let chunks = got.into_stream().map(|c| match c {
        Ok(b) => Ok(pb::ReadImageResponse {
            part: Some(Part::Chunk(b.to_vec())),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "reading an image broke off");
            Err(Status::unavailable("reading the image broke off; retry"))
        }
    });
    Ok(Box::pin(head_only(head).chain(chunks)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: i64, last: i64, suffix: i64) -> pb::ByteRange {
        pb::ByteRange {
            first,
            last,
            suffix,
        }
    }

    #[test]
    fn ranges_resolve_as_http_says() {
        assert_eq!(resolve(&range(0, 99, 0), 1000), Some(0..100));
        assert_eq!(resolve(&range(900, -1, 0), 1000), Some(900..1000));
        assert_eq!(resolve(&range(900, 5000, 0), 1000), Some(900..1000));
        assert_eq!(resolve(&range(0, 0, 100), 1000), Some(900..1000));
        assert_eq!(resolve(&range(0, 0, 5000), 1000), Some(0..1000));
        assert_eq!(resolve(&range(1000, -1, 0), 1000), None);
        assert_eq!(resolve(&range(10, 5, 0), 1000), None);
    }

    #[test]
    fn only_signed_shapes_of_path_are_read() {
        let id = Uuid::now_v7();
        assert!(parse(&format!("/media/{id}/card.webp")).is_some());
        assert!(parse(&format!("/media/{id}/cover.jpg")).is_some());
        assert!(parse(&format!("/media/{id}/card.png")).is_none());
        assert!(parse(&format!("/media/{id}/../../etc/passwd.jpg")).is_none());
        assert!(parse("/media/x/card.webp").is_none());
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_stars() {
        assert!(matches("\"a\", W/\"b\"", "\"b\""));
        assert!(matches("*", "\"b\""));
        assert!(!matches("\"a\"", "\"b\""));
    }
}
