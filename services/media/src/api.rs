//! `cityevents.media.v1.MediaService`: uploads are checked while they
//! arrive (declared size, then real type and dimensions from the header),
//! kept once by their SHA-256, and queued for the workers; the answer comes
//! at once with the image `processing`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tonic::{Request, Streaming};
use uuid::Uuid;

use cityevents_authn::Verifier;
use cityevents_proto::cityevents::media::v1::{
    self as pb, media_service_server::MediaService, upload_request::Part,
};
use cityevents_runtime::error::IMAGE_PROCESSING;
use cityevents_runtime::error::{Reply, reply};
use cityevents_runtime::{Error, ErrorCode, Result, parse};

use crate::check::{ALLOWED, Limits};
use crate::receive::{self, Received, Rules};
use crate::sign::UrlSigner;
use crate::store::{self, ImageRow, NotAttachable};
use crate::work::Job;

pub struct State {
    pub pool: PgPool,
    pub verifier: Arc<Verifier>,
    pub store: Arc<dyn ObjectStore>,
    pub jobs: mpsc::Sender<Job>,
    pub signer: UrlSigner,
    pub limits: Limits,
    pub max_bytes: u64,
    pub url_ttl: Duration,
    /// See [`Rules::part_size`].
    pub part_size: usize,
}

#[derive(Clone)]
pub struct MediaApi {
    state: Arc<State>,
}

impl MediaApi {
    pub fn new(state: State) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

fn broke(_: tonic::Status) -> Error {
    Error::invalid("chunk", "the upload stream broke off; send it again")
}

impl State {
    async fn upload(
        &self,
        req: Request<Streaming<pb::UploadRequest>>,
    ) -> Result<pb::UploadResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let mut stream = req.into_inner();
        let meta = match stream.message().await.map_err(broke)?.and_then(|m| m.part) {
            Some(Part::Metadata(m)) => m,
            _ => {
                return Err(Error::invalid(
                    "metadata",
                    "the first message must carry the metadata",
                ));
            }
        };
        let declared = u64::try_from(meta.size_bytes).map_err(|_| {
            Error::invalid("metadata.size_bytes", "must not be negative (0: unknown)")
        })?;
        if declared > self.max_bytes {
            return Err(Error::invalid(
                "metadata.size_bytes",
                format!("must be at most {} bytes", self.max_bytes),
            ));
        }
        let allowed = ["image/jpeg", "image/png", "image/webp"];
        if !meta.content_type.is_empty() && !allowed.contains(&meta.content_type.as_str()) {
            return Err(Error::invalid(
                "metadata.content_type",
                format!("must be one of {ALLOWED}: {}", allowed.join(", ")),
            ));
        }
        let mut chunks = stream.map(|m| match m.map_err(broke)?.part {
            Some(Part::Chunk(c)) => Ok(Bytes::from(c)),
            _ => Err(Error::invalid("metadata", "comes once, first")),
        });
        let rules = Rules {
            declared,
            max_bytes: self.max_bytes,
            limits: self.limits,
            part_size: self.part_size,
        };
        let got = receive::receive(&mut chunks, rules, self.store.clone()).await?;
        let kept = self.keep(me.user_id, &got).await;
        // Whatever happened, the incoming copy is not needed any more.
        let _ = self.store.delete(&got.path).await;
        kept.map(|row| pb::UploadResponse {
            image: Some(row.into()),
        })
    }

    /// Records a received upload and queues its processing, unless these
    /// bytes are known already.
    async fn keep(&self, owner: Uuid, got: &Received) -> Result<ImageRow> {
        let row = ImageRow {
            image_id: Uuid::now_v7(),
            owner_id: owner,
            sha256: got.sha.clone(),
            content_type: got.checked.content_type().to_owned(),
            width: i32::try_from(got.checked.width).unwrap_or(i32::MAX),
            height: i32::try_from(got.checked.height).unwrap_or(i32::MAX),
            size_bytes: i64::try_from(got.size).unwrap_or(i64::MAX),
            status: String::new(),
            error: String::new(),
            variants: Vec::new(),
        };
        let (row, new) = store::insert(&self.pool, &row).await?;
        if !new {
            return Ok(row);
        }
        // Someone sent these bytes before: their variants serve this image too.
        if let Some(variants) = store::variants_of(&self.pool, &got.sha).await? {
            store::finish(&self.pool, &got.sha, &variants, None).await?;
            return Ok(store::get(&self.pool, row.image_id).await?.unwrap_or(row));
        }
        self.store
            .copy(&got.path, &store::upload_path(&got.sha))
            .await
            .map_err(|e| Error::unavailable(anyhow::anyhow!("keeping an upload: {e}")))?;
        let job = Job {
            sha: got.sha.clone(),
            format: got.checked.format,
        };
        if self.jobs.try_send(job).is_err() {
            // Kept: the next start's recovery pass makes its variants.
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                "images are queueing up; retry shortly",
            )
            .with_reason("OVERLOADED")
            .with_retry_after(Duration::from_secs(5)));
        }
        Ok(row)
    }

    async fn image(&self, id: &str) -> Result<ImageRow> {
        let id = parse::id("image_id", id)?;
        store::get(&self.pool, id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such image"))
    }

    /// When URLs signed now expire: at least `url_ttl` from now, rounded up
    /// to a quarter of it, so a URL stays the same for a while and
    /// browsers can cache what it names.
    fn expiry(&self) -> i64 {
        let ttl = i64::try_from(self.url_ttl.as_secs())
            .unwrap_or(i64::MAX / 4)
            .max(4);
        let step = ttl / 4;
        let at = chrono::Utc::now().timestamp() + ttl;
        (at + step - 1) / step * step
    }

    /// A signed URL of `image`'s `variant` (WebP; `.jpg` serves JPEG).
    fn url(&self, image: Uuid, variant: &str, ext: &str, exp: i64) -> String {
        let resource = format!("/media/{image}/{variant}");
        let query = self.signer.sign(&resource, exp);
        format!("{resource}.{ext}?{query}")
    }

    async fn signed_url(
        &self,
        req: Request<pb::GetSignedUrlRequest>,
    ) -> Result<pb::GetSignedUrlResponse> {
        let r = req.into_inner();
        let image = self.image(&r.image_id).await?;
        let variant = pb::Variant::try_from(r.variant).unwrap_or_default();
        let name = crate::process::variant_name(variant);
        if variant == pb::Variant::Unspecified || !image.variants.iter().any(|v| v == name) {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!("the image has no {name} variant (yet)"),
            ));
        }
        let ext = match r.format.as_str() {
            "" | "webp" => "webp",
            "jpeg" | "jpg" => "jpg",
            _ => return Err(Error::invalid("format", "must be webp or jpeg")),
        };
        let exp = self.expiry();
        Ok(pb::GetSignedUrlResponse {
            url: self.url(image.image_id, name, ext, exp),
            expires_at_unix: exp,
        })
    }

    async fn links(&self, req: pb::GetImageLinksRequest) -> Result<pb::GetImageLinksResponse> {
        if req.image_ids.len() > MAX_IDS {
            return Err(Error::invalid(
                "image_ids",
                format!("at most {MAX_IDS} at a time"),
            ));
        }
        let ids: Vec<Uuid> = req
            .image_ids
            .iter()
            .filter_map(|i| i.parse().ok())
            .collect();
        let exp = self.expiry();
        let links = store::ready(&self.pool, &ids)
            .await?
            .into_iter()
            .map(|r| {
                let has = |v: &str| r.variants.iter().any(|x| x == v);
                let url = |v: &str| {
                    if has(v) {
                        self.url(r.image_id, v, "webp", exp)
                    } else {
                        String::new()
                    }
                };
                pb::ImageLinks {
                    image_id: r.image_id.to_string(),
                    width: r.width,
                    height: r.height,
                    thumbnail_url: url("thumbnail"),
                    card_url: url("card"),
                    cover_url: url("cover"),
                    expires_at_unix: exp,
                }
            })
            .collect();
        Ok(pb::GetImageLinksResponse { links })
    }

    async fn attach(
        &self,
        req: Request<pb::AttachImagesRequest>,
    ) -> Result<pb::AttachImagesResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let r = req.into_inner();
        if r.subject.is_empty() || r.subject.len() > 200 {
            return Err(Error::invalid(
                "subject",
                "e.g. event/<id>, at most 200 characters",
            ));
        }
        if r.image_ids.len() > MAX_IDS {
            return Err(Error::invalid("image_ids", format!("at most {MAX_IDS}")));
        }
        let ids = r
            .image_ids
            .iter()
            .map(|i| parse::id("image_ids", i))
            .collect::<Result<Vec<_>>>()?;
        match store::attach(&self.pool, &r.subject, &ids, me.user_id).await? {
            Ok(rows) => Ok(pb::AttachImagesResponse {
                images: rows.into_iter().map(Into::into).collect(),
            }),
            Err(NotAttachable::Missing(id)) => Err(Error::new(
                ErrorCode::NotFound,
                format!("image_ids: there is no image {id} (upload it first)"),
            )),
            Err(NotAttachable::NotYours(id)) => Err(Error::new(
                ErrorCode::PermissionDenied,
                format!("image_ids: image {id} was uploaded by someone else"),
            )),
            Err(NotAttachable::NotReady(id, status)) if status == "failed" => Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!("image_ids: image {id} could not be processed; upload another"),
            )),
            Err(NotAttachable::NotReady(id, _)) => Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!("image_ids: image {id} is still being processed; retry shortly"),
            )
            .with_reason(IMAGE_PROCESSING)
            .with_retry_after(Duration::from_secs(1))),
        }
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteImageRequest>,
    ) -> Result<pb::DeleteImageResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let id = parse::id("image_id", &req.get_ref().image_id)?;
        let sha = store::delete(&self.pool, id, me.user_id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such image of yours"))?;
        if !store::shared(&self.pool, &sha).await? {
            store::remove_variants(self.store.as_ref(), &sha).await;
        }
        Ok(pb::DeleteImageResponse {})
    }
}

/// Ids one call may name at most.
const MAX_IDS: usize = 100;

#[tonic::async_trait]
impl MediaService for MediaApi {
    #[tracing::instrument(skip_all)]
    async fn upload(
        &self,
        req: Request<Streaming<pb::UploadRequest>>,
    ) -> Reply<pb::UploadResponse> {
        reply(self.state.upload(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn get_image(&self, req: Request<pb::GetImageRequest>) -> Reply<pb::GetImageResponse> {
        reply(
            self.state
                .image(&req.get_ref().image_id)
                .await
                .map(|r| pb::GetImageResponse {
                    image: Some(r.into()),
                }),
        )
    }
    #[tracing::instrument(skip_all)]
    async fn get_signed_url(
        &self,
        req: Request<pb::GetSignedUrlRequest>,
    ) -> Reply<pb::GetSignedUrlResponse> {
        reply(self.state.signed_url(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn attach_images(
        &self,
        req: Request<pb::AttachImagesRequest>,
    ) -> Reply<pb::AttachImagesResponse> {
        reply(self.state.attach(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn get_image_links(
        &self,
        req: Request<pb::GetImageLinksRequest>,
    ) -> Reply<pb::GetImageLinksResponse> {
        reply(self.state.links(req.into_inner()).await)
    }
    type ReadImageStream = crate::serve::Body;
    #[tracing::instrument(skip_all)]
    async fn read_image(&self, req: Request<pb::ReadImageRequest>) -> Reply<Self::ReadImageStream> {
        reply(crate::serve::read(&self.state, req.into_inner()).await)
    }
    #[tracing::instrument(skip_all)]
    async fn delete_image(
        &self,
        req: Request<pb::DeleteImageRequest>,
    ) -> Reply<pb::DeleteImageResponse> {
        reply(self.state.delete(req).await)
    }
}
