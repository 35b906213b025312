use std::io::Cursor;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, RgbImage};
use tonic::Code;

use cityevents_proto::cityevents::api::v1 as api;
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_testkit::authed;

use crate::helpers::{HttpResponse, Mesh, Person, draft, http, mesh};

/// A 640 × 480 PNG; `shade` makes it differ.
fn picture(shade: u8) -> Vec<u8> {
    let img = RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, shade])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A browser's form: one part `file`.
fn form(file: &[u8], content_type: &str) -> Vec<u8> {
    let mut body =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nignored\r\n".to_vec();
    body.extend(
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cover.png\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(file);
    body.extend(b"\r\n--XyZ--\r\n");
    body
}

impl Mesh {
    async fn upload(&self, token: &str, file: &[u8]) -> HttpResponse {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("content-type", "multipart/form-data; boundary=XyZ")];
        if !token.is_empty() {
            headers.push(("authorization", auth.as_str()));
        }
        http(
            self.bff,
            "POST",
            "/v1/media",
            &headers,
            &form(file, "image/png"),
        )
        .await
    }

    /// Creates a draft with `cover`, retrying while the image is processed.
    async fn with_cover(&self, who: &Person, cover: &str) -> Result<ev::Event, tonic::Status> {
        for _ in 0..200 {
            let mut d = draft(10, 0);
            d.cover_image_ids = vec![cover.to_owned()];
            let req = authed(api::CreateEventRequest { draft: Some(d) }, &who.token);
            match self.events().create_event(req).await {
                Err(s)
                    if s.code() == Code::FailedPrecondition
                        && s.message().contains("processed") =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other.map(|r| r.into_inner().event.unwrap()),
            }
        }
        panic!("the image was never processed");
    }
}

#[tokio::test]
async fn a_cover_uploaded_from_a_browser_form_is_served_through_signed_links() {
    let mesh = mesh().await;
    let ada = mesh.verified().await;
    let res = mesh.upload(&ada.token, &picture(1)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let image = res.json();
    let id = image["id"].as_str().unwrap().to_owned();
    assert_eq!(image["contentType"], "image/png");
    assert_eq!(image["width"], 640);

    let event = mesh.with_cover(&ada, &id).await.unwrap();
    assert_eq!(event.cover_images.len(), 1);
    let card = event.cover_images[0].card_url.clone();
    assert!(
        card.starts_with(&format!("/media/{id}/card.webp?")),
        "{card}"
    );

    let res = http(mesh.bff, "GET", &card, &[], b"").await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("content-type"), Some("image/webp"));
    assert!(res.header("cache-control").unwrap().contains("max-age="));
    let decoded = image::load_from_memory(&res.bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (640, 480));
    let etag = res.header("etag").unwrap().to_owned();
    let total = res.bytes.len();

    let part = http(mesh.bff, "GET", &card, &[("range", "bytes=0-9")], b"").await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, res.bytes[..10]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-9/{total}").as_str())
    );
    let beyond = format!("bytes={total}-");
    let none = http(mesh.bff, "GET", &card, &[("range", beyond.as_str())], b"").await;
    assert_eq!(none.status, 416);
    let same = http(
        mesh.bff,
        "GET",
        &card,
        &[("if-none-match", etag.as_str())],
        b"",
    )
    .await;
    assert_eq!(same.status, 304);
    assert!(same.bytes.is_empty());
    let jpeg = http(mesh.bff, "GET", &card.replace(".webp?", ".jpg?"), &[], b"").await;
    assert_eq!(jpeg.header("content-type"), Some("image/jpeg"));

    let forged = http(
        mesh.bff,
        "GET",
        &card.replace("/card.", "/cover."),
        &[],
        b"",
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(forged.json()["code"], "PERMISSION_DENIED");

    // The page's event carries links too.
    let req = authed(
        api::GetEventRequest {
            event_id: event.id.clone(),
        },
        &ada.token,
    );
    let page = mesh.events().get_event(req).await.unwrap().into_inner();
    assert_eq!(page.event.unwrap().cover_images[0].image_id, id);
}

#[tokio::test]
async fn uploads_and_covers_are_refused_with_reasons() {
    let mesh = mesh().await;
    let ada = mesh.verified().await;
    let ben = mesh.verified().await;
    assert_eq!(mesh.upload("", &picture(2)).await.status, 401);
    let not_an_image = mesh
        .upload(&ada.token, b"MZ\x90\0 an executable, renamed")
        .await;
    assert_eq!(not_an_image.status, 400);
    assert!(
        not_an_image.body.contains("JPEG, PNG or WebP"),
        "{}",
        not_an_image.body
    );
    let plain = http(
        mesh.bff,
        "POST",
        "/v1/media",
        &[
            ("authorization", &format!("Bearer {}", ada.token)),
            ("content-type", "image/png"),
        ],
        &picture(2),
    )
    .await;
    assert_eq!(plain.status, 415, "{}", plain.body);

    let res = mesh.upload(&ada.token, &picture(3)).await;
    let id = res.json()["id"].as_str().unwrap().to_owned();
    mesh.with_cover(&ada, &id).await.unwrap();
    let theirs = mesh.with_cover(&ben, &id).await.unwrap_err();
    assert_eq!(
        theirs.code(),
        Code::PermissionDenied,
        "{}",
        theirs.message()
    );
    assert!(theirs.message().starts_with("draft.cover_image_ids"));
    let unknown = mesh
        .with_cover(&ada, &uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn uploads_count_against_the_callers_rate_limit() {
    let mesh = crate::helpers::mesh_with(|c| {
        c.edge.per_user = cityevents_runtime::ratelimit::Limit {
            per_minute: 1,
            burst: 3,
        };
    })
    .await;
    let ada = mesh.sign_up().await;
    let statuses: Vec<u16> = futures::future::join_all((0..4u8).map(|i| {
        let (mesh, token) = (&mesh, &ada.token);
        async move { mesh.upload(token, &picture(10 + i)).await.status }
    }))
    .await;
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&201), "{statuses:?}");
}
