//! A media service for each test, and ways to talk to it.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, RgbImage};
use tonic::transport::Channel;

use cityevents_proto::cityevents::media::v1::{
    self as pb, media_service_client::MediaServiceClient, upload_request::Part,
};
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{Secret, ServerConfig};
use cityevents_testkit::{World, authed, fresh_database};

pub struct Media {
    pub world: World,
    pub client: MediaServiceClient<Channel>,
    pub dir: tempfile::TempDir,
    pub cfg: media::Config,
    pub stop: CancellationToken,
}

impl Drop for Media {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A media service on the local file system.
pub async fn media() -> Media {
    media_with(|_| {}).await
}

/// A media service with its config changed by `tweak`.
pub async fn media_with(tweak: impl FnOnce(&mut media::Config)) -> Media {
    let world = World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = media::Config {
        server: ServerConfig::ephemeral(),
        ..Default::default()
    };
    cfg.database.url = Secret::new(fresh_database("media_test").await);
    (cfg.redis, cfg.nats, cfg.verifier, cfg.auth) = (
        world.redis.clone(),
        world.nats.clone(),
        world.verifier.clone(),
        world.auth.clone(),
    );
    cfg.media.storage_path = dir.path().to_owned();
    cfg.media.url_keys = vec![Secret::new("k1:a test key of sixteen+")];
    tweak(&mut cfg);
    let host = media::build(cfg.clone()).await.unwrap();
    let addr = host.grpc_addr();
    let stop = CancellationToken::new();
    tokio::spawn(host.run(stop.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Media {
        world,
        client: MediaServiceClient::new(channel),
        dir,
        cfg,
        stop,
    }
}

/// A 640 × 480 gradient in `format`.
pub fn picture(format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

impl Media {
    pub async fn upload(
        &self,
        token: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<pb::Image, tonic::Status> {
        self.upload_declaring(token, content_type, bytes, bytes.len() as i64)
            .await
    }

    /// An upload whose metadata declares `size` (0: unknown).
    pub async fn upload_declaring(
        &self,
        token: &str,
        content_type: &str,
        bytes: &[u8],
        size: i64,
    ) -> Result<pb::Image, tonic::Status> {
        let mut parts = vec![pb::UploadRequest {
            part: Some(Part::Metadata(pb::UploadMetadata {
                filename: "photo".into(),
                content_type: content_type.into(),
                size_bytes: size,
            })),
        }];
        parts.extend(bytes.chunks(64 * 1024).map(|c| pb::UploadRequest {
            part: Some(Part::Chunk(c.to_vec())),
        }));
        let req = authed(futures::stream::iter(parts), token);
        Ok(self
            .client
            .clone()
            .upload(req)
            .await?
            .into_inner()
            .image
            .unwrap())
    }

    /// Signed links of the ready images among `ids`.
    pub async fn links(&self, ids: &[&str]) -> Vec<pb::ImageLinks> {
        let req = pb::GetImageLinksRequest {
            image_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        };
        let links = self.client.clone().get_image_links(req).await.unwrap();
        links.into_inner().links
    }

    /// A PNG uploaded by a new user and processed: its id.
    pub async fn ready_png(&self) -> String {
        let (_, token) = self.world.user();
        let image = self
            .upload(&token, "image/png", &picture(ImageFormat::Png))
            .await
            .unwrap();
        self.settled(&image.id).await;
        image.id
    }

    /// Waits until the image is no longer processing.
    pub async fn settled(&self, id: &str) -> pb::Image {
        for _ in 0..400 {
            let req = pb::GetImageRequest {
                image_id: id.into(),
            };
            let image = self
                .client
                .clone()
                .get_image(req)
                .await
                .unwrap()
                .into_inner()
                .image
                .unwrap();
            if image.status != pb::ImageStatus::Processing as i32 {
                return image;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("image {id} still processing");
    }

    /// Every stored file under `images/`.
    pub fn stored(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let root = self.dir.path().join("images");
        for sha in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(sha.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.push(f.path());
            }
        }
        out.sort();
        out
    }
}

pub fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A PNG header claiming `w` × `h` followed by `len` bytes of noise from
/// `seed`: passes the checks, is stored, and fails to decode.
pub fn noise_png(w: u32, h: u32, len: usize, seed: u64) -> Vec<u8> {
    let mut png = media::check::fixtures::claiming_png(w, h);
    png.truncate(45); // signature, IHDR and an empty IDAT
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    png.extend((0..len).map(|_| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as u8
    }));
    png
}

/// Reads what a signed URL names through `ReadImage`: its head and bytes.
pub async fn read(
    client: &MediaServiceClient<Channel>,
    url: &str,
    range: Option<pb::ByteRange>,
    if_none_match: &str,
) -> Result<(pb::ImageHead, Vec<u8>), tonic::Status> {
    use futures::StreamExt;
    use pb::read_image_response::Part as Out;
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let req = pb::ReadImageRequest {
        path: path.into(),
        query: query.into(),
        range,
        if_none_match: if_none_match.into(),
    };
    let mut stream = client.clone().read_image(req).await?.into_inner();
    let Some(Out::Head(head)) = stream.next().await.unwrap()?.part else {
        panic!("the head comes first");
    };
    let mut bytes = Vec::new();
    while let Some(msg) = stream.next().await {
        match msg?.part {
            Some(Out::Chunk(c)) => bytes.extend(c),
            other => panic!("only chunks follow the head: {other:?}"),
        }
    }
    Ok((head, bytes))
}
