use cityevents_proto::cityevents::media::v1 as pb;

use crate::helpers::{chrono_now, media, read};

fn range(first: i64, last: i64, suffix: i64) -> Option<pb::ByteRange> {
    Some(pb::ByteRange {
        first,
        last,
        suffix,
    })
}

#[tokio::test]
async fn a_signed_link_serves_its_bytes_whole_in_ranges_and_not_again_when_unchanged() {
    let m = media().await;
    let id = m.ready_png().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let links = m.links(&[&id, "nonsense", &unknown]).await;
    assert_eq!(links.len(), 1, "unknown ids are left out");
    let card = &links[0].card_url;
    assert!(card.contains("/card.webp?"), "{card}");
    assert!(links[0].expires_at_unix >= chrono_now() + 3_600);

    let stored = m
        .stored()
        .into_iter()
        .find(|f| f.ends_with("card.webp"))
        .unwrap();
    let on_disk = std::fs::read(stored).unwrap();
    let (head, bytes) = read(&m.client, card, None, "").await.unwrap();
    assert_eq!(head.content_type, "image/webp");
    assert_eq!(head.total_size, on_disk.len() as i64);
    assert!(!head.partial);
    assert_eq!(bytes, on_disk);
    assert!(head.max_age_secs > 0 && head.max_age_secs <= 86_400);

    let (head, bytes) = read(&m.client, card, range(0, 99, 0), "").await.unwrap();
    assert!(head.partial);
    assert_eq!((head.first, head.length), (0, 100));
    assert_eq!(bytes, on_disk[..100]);
    let (_, bytes) = read(&m.client, card, range(0, 0, 10), "").await.unwrap();
    assert_eq!(bytes, on_disk[on_disk.len() - 10..]);
    let (head, bytes) = read(&m.client, card, range(head.total_size, -1, 0), "")
        .await
        .unwrap();
    assert!(head.unsatisfiable && bytes.is_empty());

    let (head, bytes) = read(&m.client, card, None, &head.etag).await.unwrap();
    assert!(head.not_modified && bytes.is_empty(), "the ETag matched");

    let jpeg = card.replace(".webp?", ".jpg?");
    let (head, bytes) = read(&m.client, &jpeg, None, "").await.unwrap();
    assert_eq!(head.content_type, "image/jpeg");
    assert_eq!(
        bytes[..2],
        [0xff, 0xd8],
        "the same link ending .jpg is JPEG"
    );
}

#[tokio::test]
async fn an_edited_or_expired_link_is_refused() {
    let m = media().await;
    let id = m.ready_png().await;
    let links = m.links(&[&id]).await;
    let card = &links[0].card_url;
    let denied = |r: Result<_, tonic::Status>| {
        let s = r.unwrap_err();
        assert_eq!(s.code(), tonic::Code::PermissionDenied, "{}", s.message());
        s.message().to_owned()
    };
    denied(read(&m.client, &card.replace("/card.", "/cover."), None, "").await);
    let (path, query) = card.split_once('?').unwrap();
    let later = format!("{path}?{}", query.replace("exp=", "exp=9"));
    denied(read(&m.client, &later, None, "").await);
    let signer = media::sign::UrlSigner::new(&m.cfg.media.url_keys).unwrap();
    let resource = format!("/media/{}/card", id);
    let old = format!(
        "{resource}.webp?{}",
        signer.sign(&resource, chrono_now() - 10)
    );
    assert!(denied(read(&m.client, &old, None, "").await).contains("expired"));
    let elsewhere = format!("/media/{}/card", uuid::Uuid::now_v7());
    let signed = format!(
        "{elsewhere}.webp?{}",
        signer.sign(&elsewhere, chrono_now() + 60)
    );
    let missing = read(&m.client, &signed, None, "").await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}
