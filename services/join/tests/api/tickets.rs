//! "My tickets": the caller's registrations across events.

use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_testkit::authed;

use crate::helpers::{TestApp, draft, new_user, spawn_app, ts};

async fn my_tickets(
    app: &TestApp,
    token: &str,
    size: i32,
    page: &str,
) -> pb::ListMyRegistrationsResponse {
    let req = pb::ListMyRegistrationsRequest {
        page_size: size,
        page_token: page.into(),
    };
    app.join
        .clone()
        .list_my_registrations(authed(req, token))
        .await
        .unwrap()
        .into_inner()
}

fn starting_in(hours: i64, capacity: i32, waitlist_cap: i32) -> ev::EventDraft {
    ev::EventDraft {
        starts_at: Some(ts(hours)),
        ends_at: Some(ts(hours + 2)),
        ..draft(capacity, waitlist_cap)
    }
}

#[tokio::test]
async fn my_tickets_lists_places_and_waitlist_entries_soonest_first_in_pages_without_cancelled_ones()
 {
    let app = spawn_app().await;
    let (_, me) = new_user(&app);
    let (_, other) = new_user(&app);
    let later = app.event(starting_in(72, 10, 0)).await;
    let full = app.event(starting_in(48, 1, 5)).await;
    let soon = app.event(starting_in(24, 10, 0)).await;
    let left = app.event(starting_in(30, 10, 0)).await;
    app.join_as(&other, &full.id).await.unwrap();
    for e in [&later, &full, &soon, &left] {
        app.join_as(&me, &e.id).await.unwrap();
    }
    app.leave_as(&me, &left.id).await.unwrap();

    let first = my_tickets(&app, &me, 2, "").await;
    let second = my_tickets(&app, &me, 2, &first.next_page_token).await;
    let all: Vec<_> = first
        .registrations
        .iter()
        .chain(&second.registrations)
        .collect();

    let events: Vec<_> = all
        .iter()
        .map(|t| t.registration.as_ref().unwrap().event_id.clone())
        .collect();
    assert_eq!(
        events,
        [soon.id.clone(), full.id.clone(), later.id.clone()],
        "soonest first, the cancelled one left out"
    );
    let waiting = all[1].registration.as_ref().unwrap();
    assert_eq!(
        (
            waiting.status(),
            waiting.waitlist_position,
            waiting.ticket_code.as_str()
        ),
        (pb::RegistrationStatus::Waitlisted, 1, ""),
        "a waitlist entry has its position and no ticket"
    );
    let place = all[0].registration.as_ref().unwrap();
    assert!(
        !place.ticket_code.is_empty(),
        "a place carries its ticket code"
    );
    assert_eq!(all[0].event_title, "Concert");
    let starts = all[0].event_starts_at.as_ref().unwrap().seconds;
    assert!((starts - ts(24).seconds).abs() <= 5, "the event's start");
    assert_eq!(
        (first.registrations.len(), second.next_page_token.as_str()),
        (2, "")
    );
    assert_eq!(
        my_tickets(&app, &other, 10, "").await.registrations.len(),
        1,
        "each caller sees only their own"
    );
}

#[tokio::test]
async fn my_tickets_needs_a_login_and_refuses_a_page_token_it_did_not_issue() {
    let app = spawn_app().await;
    let (_, me) = new_user(&app);
    let anonymous = app
        .join
        .clone()
        .list_my_registrations(pb::ListMyRegistrationsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let req = pb::ListMyRegistrationsRequest {
        page_size: 10,
        page_token: "forged".into(),
    };
    let bad = app
        .join
        .clone()
        .list_my_registrations(authed(req, &me))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("page_token"), "{}", bad.message());
}
