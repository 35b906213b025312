use std::time::Duration;

use image::ImageFormat;
use prost::Message;

use cityevents_messaging::consumer::Handler;
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::media::v1 as pb;
use cityevents_proto::cityevents::messaging::v1::Envelope;
use cityevents_testkit::authed;

use crate::helpers::{Media, media, picture};

impl Media {
    async fn attach(&self, token: &str, subject: &str, ids: &[&str]) -> Result<(), tonic::Status> {
        let req = pb::AttachImagesRequest {
            subject: subject.into(),
            image_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        };
        self.client
            .clone()
            .attach_images(authed(req, token))
            .await?;
        Ok(())
    }

    async fn ready(&self, token: &str, seed: u8) -> String {
        let mut bytes = picture(ImageFormat::Png);
        bytes.push(seed); // after IEND: other bytes, the same picture
        let image = self.upload(token, "image/png", &bytes).await.unwrap();
        self.settled(&image.id).await;
        image.id
    }

    async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(self.cfg.database.url.expose())
            .await
            .unwrap()
    }

    async fn exists(&self, id: &str) -> bool {
        let req = pb::GetImageRequest {
            image_id: id.into(),
        };
        self.client.clone().get_image(req).await.is_ok()
    }
}

fn code(r: Result<(), tonic::Status>) -> tonic::Code {
    r.unwrap_err().code()
}

#[tokio::test]
async fn only_the_uploader_attaches_a_ready_image() {
    let m = media().await;
    let (_, ada) = m.world.user();
    let (_, ben) = m.world.user();
    let a = m.ready(&ada, 1).await;
    assert_eq!(
        code(m.attach(&ben, "event/x", &[&a]).await),
        tonic::Code::PermissionDenied
    );
    m.attach(&ada, "event/x", &[&a]).await.unwrap();
    m.attach(&ben, "event/x", &[&a]).await.unwrap();
    assert_eq!(
        code(m.attach(&ben, "event/y", &[&a]).await),
        tonic::Code::PermissionDenied,
        "attached to x, not to y"
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        code(m.attach(&ada, "event/x", &[&unknown]).await),
        tonic::Code::NotFound
    );
    let pool = m.pool().await;
    let busy = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO images (image_id, owner_id, sha256, content_type, width, height, size_bytes, status)
         SELECT $1, owner_id, 'busy', content_type, 1, 1, 1, 'processing' FROM images WHERE image_id = $2",
    )
    .bind(busy)
    .bind(uuid::Uuid::parse_str(&a).unwrap())
    .execute(&pool)
    .await
    .unwrap();
    let still = m
        .attach(&ada, "event/x", &[&busy.to_string()])
        .await
        .unwrap_err();
    assert_eq!(still.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        (
            still
                .metadata()
                .get("x-cityevents-error")
                .unwrap()
                .to_str()
                .unwrap(),
            still
                .metadata()
                .get("retry-after")
                .unwrap()
                .to_str()
                .unwrap()
        ),
        ("IMAGE_PROCESSING", "1"),
        "still processing: retry in a moment"
    );
}

fn snapshot(event_id: &str, version: i64, covers: &[&str]) -> Envelope {
    let event = ev::Event {
        id: event_id.into(),
        version,
        draft: Some(ev::EventDraft {
            cover_image_ids: covers.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: "event.updated".into(),
        producer: "event".into(),
        aggregate_id: event_id.into(),
        payload: ev::EventChanged { event: Some(event) }.encode_to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn images_no_event_uses_are_collected_after_the_grace_period() {
    let m = media().await;
    let (_, ada) = m.world.user();
    let (kept, replaced, never) = (
        m.ready(&ada, 1).await,
        m.ready(&ada, 2).await,
        m.ready(&ada, 3).await,
    );
    let event = uuid::Uuid::now_v7().to_string();
    m.attach(&ada, &format!("event/{event}"), &[&replaced])
        .await
        .unwrap();
    let pool = m.pool().await;
    let mut conn = pool.acquire().await.unwrap();
    let handler = media::attach::Attachments;
    // Version 3 swaps the cover; a late version 2 must not swap it back.
    handler
        .handle(&mut conn, &snapshot(&event, 3, &[&kept]))
        .await
        .unwrap();
    handler
        .handle(&mut conn, &snapshot(&event, 2, &[&replaced]))
        .await
        .unwrap();
    drop(conn);
    // Two days pass for everything unattached.
    sqlx::query("UPDATE images SET unattached_since = now() - interval '2 days' WHERE unattached_since IS NOT NULL")
        .execute(&pool)
        .await
        .unwrap();
    let before = m.stored().len();
    let collector = media::attach::Collector {
        pool: pool.clone(),
        store: media::app::object_store(&m.cfg.media).unwrap(),
        grace: Duration::from_secs(86_400),
        every: Duration::from_secs(3_600),
    };
    assert_eq!(collector.collect().await.unwrap(), 2);
    assert!(m.exists(&kept).await, "the event's cover stays");
    assert!(!m.exists(&replaced).await && !m.exists(&never).await);
    assert_eq!(m.stored().len(), before - 2 * 8, "their variants went too");
}
