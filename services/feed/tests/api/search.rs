use chrono::{TimeZone, Utc};
use chrono_tz::Europe::Berlin;

use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::feed::v1 as pb;

use crate::helpers::*;

#[tokio::test]
async fn typos_accents_phrases_and_prefixes_are_forgiven() {
    let d = discovery().await;
    d.publish(berlin("Jazz concert in the park", 24)).await;
    d.publish(berlin("Café Müller reading", 30)).await;
    let last = d.publish(berlin("Open air cinema", 36)).await;
    d.titles(pb::SearchRequest {
        read_after: after(&last),
        ..query("cinema")
    })
    .await;

    assert_eq!(
        d.titles(query("concrt")).await,
        ["Jazz concert in the park"]
    );
    assert_eq!(
        d.titles(query("cafe muller")).await,
        ["Café Müller reading"]
    );
    assert_eq!(d.titles(query("MÜLLER")).await, ["Café Müller reading"]);
    assert_eq!(d.titles(query("\"open air\"")).await, ["Open air cinema"]);
    assert!(d.titles(query("\"air open\"")).await.is_empty());
    assert_eq!(d.titles(query("cine")).await, ["Open air cinema"]);
    assert_eq!(d.titles(query("park -jazz")).await, Vec::<String>::new());
}

#[tokio::test]
async fn near_me_holds_an_event_just_inside_and_not_one_just_outside() {
    let d = discovery().await;
    // One degree of latitude is about 111.2 km.
    let km = 1.0 / 111.195;
    d.publish(at("Inside", "Berlin", 52.52 + 0.95 * km, 13.405, 24))
        .await;
    d.publish(at("Outside", "Berlin", 52.52 + 1.05 * km, 13.405, 24))
        .await;
    let nearest = d
        .publish(at("Nearest", "Berlin", 52.52 + 0.2 * km, 13.405, 48))
        .await;
    let near = |radius_km| pb::GeoFilter {
        latitude: 52.52,
        longitude: 13.405,
        radius_km,
    };
    let r = pb::SearchRequest {
        near: Some(near(1.0)),
        sort: pb::Sort::Distance as i32,
        read_after: after(&nearest),
        ..Default::default()
    };
    let cards = d.search(r).await.unwrap().events;
    let titles: Vec<_> = cards.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["Nearest", "Inside"]);
    assert!(
        (cards[1].distance_km - 0.95).abs() < 0.01,
        "{}",
        cards[1].distance_km
    );
    let wide = pb::SearchRequest {
        near: Some(near(1.1)),
        ..Default::default()
    };
    assert_eq!(d.titles(wide).await.len(), 3);
}

#[tokio::test]
async fn local_dates_are_read_in_the_event_zone_or_the_callers() {
    let d = discovery().await;
    // Late on a winter evening in Berlin, and just after its midnight.
    let day = (Utc::now() + chrono::Duration::days(20))
        .with_timezone(&Berlin)
        .date_naive();
    let local = |h, m| {
        Berlin
            .from_local_datetime(&day.and_hms_opt(h, m, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let late = local(23, 30);
    let after_midnight = late + chrono::Duration::hours(1);
    let mk = |title: &str, start: chrono::DateTime<Utc>| ev::EventDraft {
        starts_at: Some(ts(start.timestamp())),
        ends_at: Some(ts(start.timestamp() + 3600)),
        ..berlin(title, 0)
    };
    d.publish(mk("Late show", late)).await;
    let e = d.publish(mk("After midnight", after_midnight)).await;
    let date = day.format("%Y-%m-%d").to_string();
    let on = |zone: &str| pb::SearchRequest {
        from_date: date.clone(),
        to_date: date.clone(),
        date_time_zone: zone.into(),
        read_after: after(&e),
        ..Default::default()
    };
    assert_eq!(d.titles(on("")).await, ["Late show"]);
    assert_eq!(d.titles(on("Europe/Berlin")).await, ["Late show"]);
    // In New York both start on the same afternoon of that day.
    assert_eq!(
        d.titles(on("America/New_York")).await,
        ["Late show", "After midnight"]
    );
}

#[tokio::test]
async fn filters_narrow_and_bad_input_is_refused_by_name() {
    let d = discovery().await;
    d.publish(ev::EventDraft {
        category: "sport".into(),
        tags: vec!["Outdoor".into()],
        ..berlin("Park run", 24)
    })
    .await;
    d.publish(at("Hamburg run", "Hamburg", 53.55, 9.99, 24))
        .await;
    let online = d
        .publish(ev::EventDraft {
            location: Some(ev::event_draft::Location::OnlineUrl(
                "https://example.org/x".into(),
            )),
            ..berlin("Online run", 24)
        })
        .await;
    d.titles(pb::SearchRequest {
        read_after: after(&online),
        ..query("run")
    })
    .await;
    let only = |r: pb::SearchRequest| pb::SearchRequest {
        sort: pb::Sort::Soonest as i32,
        ..r
    };
    assert_eq!(
        d.titles(only(pb::SearchRequest {
            categories: vec!["Sport".into()],
            ..query("run")
        }))
        .await,
        ["Park run"]
    );
    assert_eq!(
        d.titles(only(pb::SearchRequest {
            tags: vec!["outdoor".into()],
            ..query("run")
        }))
        .await,
        ["Park run"]
    );
    assert_eq!(
        d.titles(only(pb::SearchRequest {
            city: "hamburg".into(),
            ..query("run")
        }))
        .await,
        ["Hamburg run"]
    );
    let online_only = pb::SearchRequest {
        attendance: pb::Attendance::Online as i32,
        ..query("run")
    };
    assert_eq!(d.titles(online_only).await, ["Online run"]);

    let bad = pb::SearchRequest {
        page_token: "forged.token".into(),
        ..query("run")
    };
    let err = d.search(bad).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("page_token"), "{}", err.message());
    let err = d
        .search(pb::SearchRequest {
            to_date: "2026-13-01".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("to_date"), "{}", err.message());
}
