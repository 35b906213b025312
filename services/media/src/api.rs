//! `cityevents.media.v1.MediaService`: uploads are checked while they
//! arrive (declared size, then real type and dimensions from the header),
//! kept once by their SHA-256, and queued for the workers; the answer comes
//! at once with the image `processing`.

use std::sync::Arc;
use std::time::Duration;

use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tonic::{Request, Streaming};
use uuid::Uuid;

use cityevents_authn::Verifier;
use cityevents_proto::cityevents::media::v1::{
    self as pb, media_service_server::MediaService, upload_request::Part,
};
use cityevents_runtime::error::{Reply, reply};
use cityevents_runtime::{Error, ErrorCode, Result, parse};

use crate::check::{self, ALLOWED, Limits};
use crate::sign::UrlSigner;
use crate::store::{self, ImageRow};
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl State {
    async fn upload(
        &self,
        req: Request<Streaming<pb::UploadRequest>>,
    ) -> Result<pb::UploadResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let mut stream = req.into_inner();
        let broke = |_| Error::invalid("chunk", "the upload stream broke off; send it again");
        let meta = match stream.message().await.map_err(broke)?.and_then(|m| m.part) {
            Some(Part::Metadata(m)) => m,
            _ => {
                return Err(Error::invalid(
                    "metadata",
                    "the first message must carry the metadata",
                ));
            }
        };
        let declared = u64::try_from(meta.size_bytes).unwrap_or(0);
        if declared == 0 || declared > self.max_bytes {
            return Err(Error::invalid(
                "metadata.size_bytes",
                format!("must be 1 to {} bytes", self.max_bytes),
            ));
        }
        let allowed = ["image/jpeg", "image/png", "image/webp"];
        if !allowed.contains(&meta.content_type.as_str()) {
            return Err(Error::invalid(
                "metadata.content_type",
                format!("must be one of {ALLOWED}: {}", allowed.join(", ")),
            ));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        while let Some(msg) = stream.message().await.map_err(broke)? {
            let Some(Part::Chunk(chunk)) = msg.part else {
                return Err(Error::invalid("metadata", "comes once, first"));
            };
            if (bytes.len() + chunk.len()) as u64 > declared {
                return Err(Error::invalid(
                    "chunk",
                    "more bytes than metadata.size_bytes declared",
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.len() as u64 != declared {
            return Err(Error::invalid(
                "chunk",
                "fewer bytes than metadata.size_bytes declared (cut off?)",
            ));
        }
        let checked = check::check(&bytes, self.limits)?;
        let sha = hex(&Sha256::digest(&bytes));
        let row = ImageRow {
            image_id: Uuid::now_v7(),
            owner_id: me.user_id,
            sha256: sha.clone(),
            content_type: checked.content_type().to_owned(),
            width: i32::try_from(checked.width).unwrap_or(i32::MAX),
            height: i32::try_from(checked.height).unwrap_or(i32::MAX),
            size_bytes: bytes.len() as i64,
            status: String::new(),
            error: String::new(),
            variants: Vec::new(),
        };
        let (row, new) = store::insert(&self.pool, &row).await?;
        if !new {
            return Ok(pb::UploadResponse {
                image: Some(row.into()),
            });
        }
        // Someone sent these bytes before: their variants serve this image too.
        if let Some(variants) = store::variants_of(&self.pool, &sha).await? {
            store::finish(&self.pool, &sha, &variants, None).await?;
            let row = store::get(&self.pool, row.image_id).await?.unwrap_or(row);
            return Ok(pb::UploadResponse {
                image: Some(row.into()),
            });
        }
        store::put(
            self.store.as_ref(),
            &store::upload_path(&sha),
            bytes.clone(),
        )
        .await
        .map_err(|e| Error::unavailable(anyhow::anyhow!("storing the upload: {e}")))?;
        let job = Job {
            sha,
            format: checked.format,
            bytes: bytes.into(),
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
        Ok(pb::UploadResponse {
            image: Some(row.into()),
        })
    }

    async fn image(&self, id: &str) -> Result<ImageRow> {
        let id = parse::id("image_id", id)?;
        store::get(&self.pool, id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such image"))
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
        let exp = chrono::Utc::now().timestamp() + self.url_ttl.as_secs() as i64;
        let url = self
            .signer
            .sign(&format!("/media/{}/{name}.{ext}", image.image_id), exp);
        Ok(pb::GetSignedUrlResponse {
            url,
            expires_at_unix: exp,
        })
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteImageRequest>,
    ) -> Result<pb::DeleteImageResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let id = parse::id("image_id", &req.get_ref().image_id)?;
        match store::delete(&self.pool, id, me.user_id).await? {
            None => Err(Error::new(ErrorCode::NotFound, "no such image of yours")),
            Some(unshared) => {
                if let Some(sha) = unshared {
                    for v in crate::process::SIZES {
                        for ext in ["webp", "jpg"] {
                            let _ = self
                                .store
                                .delete(&store::variant_path(&sha, v.0, ext))
                                .await;
                        }
                    }
                }
                Ok(pb::DeleteImageResponse {})
            }
        }
    }
}

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
    async fn delete_image(
        &self,
        req: Request<pb::DeleteImageRequest>,
    ) -> Reply<pb::DeleteImageResponse> {
        reply(self.state.delete(req).await)
    }
}
