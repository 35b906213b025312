use cityevents_proto::cityevents::feed::v1 as pb;
use cityevents_testkit::authed;

use crate::helpers::*;

#[tokio::test]
async fn a_secret_calendar_link_lists_joined_events_until_it_is_replaced() {
    let d = discovery().await;
    let e = d.publish(berlin("Choir evening", 24)).await;
    let (_, me) = d.world.user();
    d.join(&me, &e).await;
    let rotate = || {
        let mut feed = d.feed.clone();
        let req = authed(pb::RotateCalendarSecretRequest {}, &me);
        async move {
            feed.rotate_calendar_secret(req)
                .await
                .unwrap()
                .into_inner()
                .secret
        }
    };
    let secret = rotate().await;
    let calendar = |secret: String| {
        let mut feed = d.feed.clone();
        let req = pb::CalendarRequest {
            source: Some(pb::calendar_request::Source::Secret(secret)),
        };
        async move { feed.calendar(req).await.map(|r| r.into_inner().ics) }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ics = loop {
        let ics = calendar(secret.clone()).await.unwrap();
        if ics.contains("BEGIN:VEVENT") {
            break ics;
        }
        assert!(std::time::Instant::now() < deadline, "{ics}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(ics.contains(&format!("UID:{}@cityevents", e.id)), "{ics}");
    assert!(ics.contains("DTSTART;TZID=Europe/Berlin:"), "{ics}");
    assert!(ics.contains("SUMMARY:Choir evening"), "{ics}");

    let newer = rotate().await;
    assert_ne!(newer, secret);
    assert_eq!(
        calendar(secret).await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert!(
        calendar(newer.clone())
            .await
            .unwrap()
            .contains("Choir evening")
    );

    // An update bumps SEQUENCE; a cancellation stays, marked CANCELLED.
    let updated = d
        .update(&e, |draft| draft.title = "Choir evening, moved".into())
        .await;
    let cancelled = d.cancel(&updated).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ics = loop {
        let ics = calendar(newer.clone()).await.unwrap();
        if ics.contains("STATUS:CANCELLED") {
            break ics;
        }
        assert!(std::time::Instant::now() < deadline, "{ics}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        ics.contains(&format!("SEQUENCE:{}\r\n", cancelled.version)),
        "{ics}"
    );
    assert!(ics.contains("SUMMARY:Choir evening\\, moved"), "{ics}");

    let search = pb::CalendarRequest {
        source: Some(pb::calendar_request::Source::Search(pb::SearchRequest {
            query: "choir".into(),
            ..Default::default()
        })),
    };
    let ics = d
        .feed
        .clone()
        .calendar(search)
        .await
        .unwrap()
        .into_inner()
        .ics;
    assert!(
        !ics.contains("BEGIN:VEVENT"),
        "a search lists no cancelled event: {ics}"
    );
}
