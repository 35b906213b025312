use image::ImageFormat;
use tonic::transport::Channel;

use cityevents_proto::cityevents::media::v1::{
    self as pb, media_service_client::MediaServiceClient,
};
use cityevents_testkit::authed;

use crate::helpers::{chrono_now, media, picture};

#[tokio::test]
async fn jpeg_png_and_webp_become_four_variants_each_in_webp_and_jpeg() {
    let m = media().await;
    let (_, token) = m.world.user();
    for (format, mime) in [
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Png, "image/png"),
        (ImageFormat::WebP, "image/webp"),
    ] {
        let image = m.upload(&token, mime, &picture(format)).await.unwrap();
        assert_eq!(
            (image.width, image.height, image.content_type.as_str()),
            (640, 480, mime)
        );
        let ready = m.settled(&image.id).await;
        assert_eq!(
            ready.status,
            pb::ImageStatus::Ready as i32,
            "{}",
            ready.error
        );
        assert_eq!(ready.variants.len(), 4);
    }
    let files = m.stored();
    assert_eq!(files.len(), 3 * 8, "{files:?}");
    let thumb = files
        .iter()
        .find(|f| f.ends_with("thumbnail.webp"))
        .unwrap();
    let img = image::open(thumb).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (320, 240),
        "fitted, aspect kept"
    );
    let req = pb::GetSignedUrlRequest {
        image_id: m
            .upload(&token, "image/png", &picture(ImageFormat::Png))
            .await
            .unwrap()
            .id,
        variant: pb::Variant::Card as i32,
        format: "jpeg".into(),
    };
    let url = m
        .client
        .clone()
        .get_signed_url(req)
        .await
        .unwrap()
        .into_inner();
    let (path, query) = url.url.split_once('?').unwrap();
    assert!(path.ends_with("/card.jpg"), "{path}");
    let signer = media::sign::UrlSigner::new(&m.cfg.media.url_keys).unwrap();
    let resource = path.trim_end_matches(".jpg");
    assert!(signer.verify(resource, query, chrono_now()).is_ok());
}

#[tokio::test]
async fn what_is_not_a_whole_image_within_limits_is_refused_with_a_reason() {
    let m = media().await;
    let (_, token) = m.world.user();
    let refused = |r: Result<pb::Image, tonic::Status>| {
        let s = r.unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{}", s.message());
        s.message().to_owned()
    };
    let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0 a renamed executable".to_vec();
    assert!(refused(m.upload(&token, "image/png", &elf).await).contains("JPEG, PNG or WebP"));
    let bomb = media::check::fixtures::claiming_png(100_000, 100_000);
    assert!(refused(m.upload(&token, "image/png", &bomb).await).contains("100000 × 100000"));
    assert!(
        refused(
            m.upload(&token, "image/gif", &picture(ImageFormat::Png))
                .await
        )
        .contains("content_type")
    );
    let huge = vec![0u8; 11 * 1024 * 1024];
    assert!(refused(m.upload(&token, "image/png", &huge).await).contains("size_bytes"));
    // A whole header over cut-off data: accepted, then failed, with a reason.
    let png = picture(ImageFormat::Png);
    let cut = m
        .upload(&token, "image/png", &png[..png.len() / 2])
        .await
        .unwrap();
    let failed = m.settled(&cut.id).await;
    assert_eq!(failed.status, pb::ImageStatus::Failed as i32);
    assert!(
        failed.error.contains("could not be decoded"),
        "{}",
        failed.error
    );
    let anonymous = m
        .client
        .clone()
        .upload(futures::stream::iter(Vec::<pb::UploadRequest>::new()))
        .await;
    assert_eq!(anonymous.unwrap_err().code(), tonic::Code::Unauthenticated);
}

/// A JPEG with an EXIF block (camera and GPS position) after its start.
fn with_exif(jpeg: &[u8]) -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0*\0\0\0\x08".to_vec();
    exif.extend(b"CameraMaker GPSLatitude 52.5200 GPSLongitude 13.4050");
    let mut segment = vec![0xff, 0xe1];
    segment.extend(((exif.len() + 2) as u16).to_be_bytes());
    segment.extend(exif);
    let mut out = jpeg[..2].to_vec();
    out.extend(segment);
    out.extend(&jpeg[2..]);
    out
}

#[tokio::test]
async fn nothing_of_exif_or_gps_is_left_in_any_variant() {
    let m = media().await;
    let (_, token) = m.world.user();
    let tagged = with_exif(&picture(ImageFormat::Jpeg));
    assert!(tagged.windows(11).any(|w| w == b"GPSLatitude"));
    let image = m.upload(&token, "image/jpeg", &tagged).await.unwrap();
    assert_eq!(
        m.settled(&image.id).await.status,
        pb::ImageStatus::Ready as i32
    );
    for f in m.stored() {
        let bytes = std::fs::read(&f).unwrap();
        for marker in [&b"Exif"[..], b"GPS", b"CameraMaker"] {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker),
                "{f:?} keeps {marker:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_same_bytes_are_stored_once_whoever_sends_them() {
    let m = media().await;
    let (_, ada) = m.world.user();
    let (_, ben) = m.world.user();
    let bytes = picture(ImageFormat::Png);
    let first = m.upload(&ada, "image/png", &bytes).await.unwrap();
    m.settled(&first.id).await;
    let again = m.upload(&ada, "image/png", &bytes).await.unwrap();
    assert_eq!(again.id, first.id, "the same person, the same image");
    let other = m.upload(&ben, "image/png", &bytes).await.unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(
        other.status,
        pb::ImageStatus::Ready as i32,
        "ready at once: nothing to make"
    );
    assert_eq!(m.stored().len(), 8, "one set of variants");
    // Deleting one keeps the bytes the other still uses.
    let req = authed(
        pb::DeleteImageRequest {
            image_id: first.id.clone(),
        },
        &ada,
    );
    m.client.clone().delete_image(req).await.unwrap();
    assert_eq!(m.stored().len(), 8);
    let req = authed(
        pb::DeleteImageRequest {
            image_id: other.id.clone(),
        },
        &ada,
    );
    assert_eq!(
        m.client.clone().delete_image(req).await.unwrap_err().code(),
        tonic::Code::NotFound,
        "not Ada's"
    );
    let req = authed(pb::DeleteImageRequest { image_id: other.id }, &ben);
    m.client.clone().delete_image(req).await.unwrap();
    assert_eq!(m.stored().len(), 0);
}

#[tokio::test]
async fn uploads_a_restart_cut_short_are_finished_at_the_next_start() {
    let m = media().await;
    let (owner, _) = m.world.user();
    // An accepted upload whose worker never ran: its row and its bytes.
    let bytes = picture(ImageFormat::Png);
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    std::fs::create_dir_all(m.dir.path().join("uploads")).unwrap();
    std::fs::write(m.dir.path().join("uploads").join(&sha), &bytes).unwrap();
    let pool = sqlx::PgPool::connect(m.cfg.database.url.expose())
        .await
        .unwrap();
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO images (image_id, owner_id, sha256, content_type, width, height, size_bytes, status)
         VALUES ($1, $2, $3, 'image/png', 640, 480, $4, 'processing')",
    )
    .bind(id)
    .bind(owner)
    .bind(&sha)
    .bind(bytes.len() as i64)
    .execute(&pool)
    .await
    .unwrap();
    // A second start on the same database and storage picks it up.
    let host = media::build(m.cfg.clone()).await.unwrap();
    let addr = host.grpc_addr();
    tokio::spawn(host.run(m.stop.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut m = m;
    m.client = MediaServiceClient::new(channel);
    let ready = m.settled(&id.to_string()).await;
    assert_eq!(
        ready.status,
        pb::ImageStatus::Ready as i32,
        "{}",
        ready.error
    );
    let staged = m.dir.path().join("uploads").join(&sha);
    cityevents_testkit::eventually("the upload's bytes are let go", async || !staged.exists())
        .await;
}

#[tokio::test]
async fn an_upload_of_unknown_size_is_taken_up_to_the_limit() {
    let m = media().await;
    let (_, token) = m.world.user();
    let png = picture(ImageFormat::Png);
    let image = m.upload_declaring(&token, "", &png, 0).await.unwrap();
    assert_eq!(image.size_bytes, png.len() as i64);
    assert_eq!(image.content_type, "image/png", "from the bytes");
    let mut huge = png.clone();
    huge.resize(11 * 1024 * 1024, 0);
    let err = m.upload_declaring(&token, "", &huge, 0).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("larger than"), "{}", err.message());
    let incoming = m.dir.path().join("incoming");
    let left = std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "a refused upload leaves nothing behind");
}
