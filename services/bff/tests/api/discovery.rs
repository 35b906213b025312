//! Discovery through the BFF: what the feed serves, on gRPC and REST.

use cityevents_proto::cityevents::api::v1 as api;
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::feed::v1 as fd;
use cityevents_testkit::authed;

use crate::helpers::*;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn a_published_event_is_found_by_a_typo_near_me_for_you_and_in_a_calendar() {
    let mesh = mesh().await;
    let organizer = mesh.verified().await;
    let draft = ev::EventDraft {
        title: "Harbour concert".into(),
        category: "music".into(),
        location: Some(ev::event_draft::Location::Venue(ev::Venue {
            name: "Pier 3".into(),
            address: "Kai 1".into(),
            city: "Hamburg".into(),
            latitude: 53.5413,
            longitude: 9.9841,
        })),
        time_zone: "Europe/Berlin".into(),
        ..draft(50, 0)
    };
    let created = mesh
        .events()
        .create_event(authed(
            api::CreateEventRequest { draft: Some(draft) },
            &organizer.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let published = mesh
        .events()
        .publish_event(authed(
            api::PublishEventRequest {
                event_id: created.id.clone(),
                expected_version: created.version,
            },
            &organizer.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();

    // gRPC: a typo'd search that reads after the publish finds it at once.
    let search = fd::SearchRequest {
        query: "harbour concrt".into(),
        read_after: Some(fd::ReadAfter {
            event_id: published.id.clone(),
            version: published.version,
        }),
        ..Default::default()
    };
    let found = mesh
        .discovery()
        .search_events(api::SearchEventsRequest {
            search: Some(search),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.events.len(), 1);
    assert_eq!(found.events[0].event_id, published.id);

    // REST: near me, 2 km around the Elbphilharmonie.
    let near = "/v1/search?search.near.latitude=53.5413&search.near.longitude=9.9841&search.near.radiusKm=2&search.sort=SORT_DISTANCE";
    let r = http(mesh.bff, "GET", near, &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["events"][0]["eventId"], published.id.as_str());
    let far = "/v1/search?search.near.latitude=48.137&search.near.longitude=11.575&search.near.radiusKm=2";
    assert_eq!(
        http(mesh.bff, "GET", far, &[], b"").await.json()["events"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let bad = http(
        mesh.bff,
        "GET",
        "/v1/search?search.near.latitude=95&search.near.radiusKm=1",
        &[],
        b"",
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("latitude"), "{}", bad.body);

    // A fan joins; their calendar link serves the event in its zone.
    let fan = mesh.verified().await;
    mesh.registrations()
        .join_event(authed(
            api::JoinEventRequest {
                event_id: published.id.clone(),
                ..Default::default()
            },
            &fan.token,
        ))
        .await
        .unwrap();
    let auth = bearer(&fan.token);
    let link = http(
        mesh.bff,
        "POST",
        "/v1/me/calendar-link",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(link.status, 200, "{}", link.body);
    let path = link.json()["path"].as_str().unwrap().to_owned();
    assert!(path.ends_with(".ics"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ics = loop {
        let r = http(mesh.bff, "GET", &path, &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("text/calendar; charset=utf-8")
        );
        if r.body.contains("BEGIN:VEVENT") {
            break r.body;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(ics.contains("SUMMARY:Harbour concert"), "{ics}");
    assert!(ics.contains("DTSTART;TZID=Europe/Berlin:"), "{ics}");
    // The fan's confirmation came by mail; its one-click unsubscribe works
    // through the BFF as a mail client sends it (a form body).
    let confirmation = mesh.mail_to(&fan.email, "You're in").await;
    let header = confirmation
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim()
        .trim_matches(['<', '>'])
        .to_owned();
    let path = &header[header.find("/v1/mail/unsubscribe/").unwrap()..];
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let one_click = http(mesh.bff, "POST", path, &form, b"List-Unsubscribe=One-Click").await;
    assert_eq!(one_click.status, 200, "{}", one_click.body);
    let forged = http(
        mesh.bff,
        "POST",
        "/v1/mail/unsubscribe/Zm9yZ2Vk",
        &form,
        b"List-Unsubscribe=One-Click",
    )
    .await;
    assert_eq!(forged.status, 400, "{}", forged.body);

    let search_ics = http(
        mesh.bff,
        "GET",
        "/v1/search.ics?search.query=harbour",
        &[],
        b"",
    )
    .await;
    assert!(
        search_ics.body.contains("SUMMARY:Harbour concert"),
        "{}",
        search_ics.body
    );

    // For you needs a caller; trending holds the joined event.
    let anonymous = http(mesh.bff, "GET", "/v1/for-you", &[], b"").await;
    assert_eq!(anonymous.status, 401);
    let other = mesh.verified().await;
    let auth = bearer(&other.token);
    let for_you = http(
        mesh.bff,
        "GET",
        "/v1/for-you",
        &[("authorization", auth.as_str())],
        b"",
    )
    .await;
    assert_eq!(for_you.status, 200, "{}", for_you.body);
    let trending = http(mesh.bff, "GET", "/v1/trending", &[], b"").await;
    assert_eq!(trending.status, 200, "{}", trending.body);
}
