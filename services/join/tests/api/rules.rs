use tonic::Code;

use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1::{self as pb, answer::Value};
use cityevents_testkit::authed;

use crate::helpers::{draft, new_user, reason, spawn_app};

#[tokio::test]
async fn joins_are_refused_for_unknown_draft_hidden_cancelled_and_past_events_with_distinct_reasons()
 {
    let app = spawn_app().await;
    let (_, token) = new_user(&app);

    let unknown = app
        .join_as(&token, &uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code(), reason(&unknown).as_str()),
        (Code::NotFound, "EVENT_NOT_FOUND")
    );

    let created = ev::CreateEventRequest {
        draft: Some(draft(10, 0)),
    };
    let d = app
        .events
        .clone()
        .create_event(authed(created, &app.organizer))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    // A draft is invisible to the public, so to join it is unknown.
    assert_eq!(
        app.join_as(&token, &d.id).await.unwrap_err().code(),
        Code::NotFound
    );

    let hidden = app.event(draft(10, 0)).await;
    let hide = ev::HideEventRequest {
        event_id: hidden.id.clone(),
        reason: "spam".into(),
    };
    let moderator = app.world.token(
        uuid::Uuid::now_v7(),
        cityevents_authn::Role::Moderator,
        true,
    );
    app.events
        .clone()
        .hide_event(authed(hide, &moderator))
        .await
        .unwrap();
    app.eventually("hidden reaches join", async || {
        app.join_as(&token, &hidden.id)
            .await
            .err()
            .is_some_and(|e| reason(&e) == "EVENT_HIDDEN")
    })
    .await;

    let cancelled = app.event(draft(10, 0)).await;
    let cancel = ev::CancelEventRequest {
        event_id: cancelled.id.clone(),
        expected_version: cancelled.version,
        reason: "rain".into(),
    };
    app.events
        .clone()
        .cancel_event(authed(cancel, &app.organizer))
        .await
        .unwrap();
    app.eventually("cancellation reaches join", async || {
        app.join_as(&token, &cancelled.id)
            .await
            .err()
            .is_some_and(|e| reason(&e) == "EVENT_CANCELLED")
    })
    .await;

    let past = app.event(draft(10, 0)).await;
    app.join_as(&new_user(&app).1, &past.id).await.unwrap();
    sqlx::query(
        "UPDATE event_snapshots SET ends_at = now() - interval '1 hour' WHERE event_id = $1::uuid",
    )
    .bind(&past.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let err = app.join_as(&token, &past.id).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "EVENT_PAST")
    );
}

#[tokio::test]
async fn answers_are_checked_against_the_events_questions_and_tiers_are_honoured() {
    let app = spawn_app().await;
    let mut d = draft(0, 0);
    d.tiers = vec![
        ev::TicketTier {
            id: "vip".into(),
            name: "VIP".into(),
            capacity: 1,
            ..Default::default()
        },
        ev::TicketTier {
            id: "std".into(),
            name: "Standard".into(),
            capacity: 5,
            ..Default::default()
        },
    ];
    d.questions = vec![ev::Question {
        id: "size".into(),
        label: "T-shirt size".into(),
        kind: ev::QuestionKind::Choice.into(),
        required: true,
        choices: vec!["S".into(), "M".into()],
    }];
    let event = app.event(d).await;
    let join = |tier: &str, answer: Option<&str>| pb::JoinRequest {
        event_id: event.id.clone(),
        tier_id: tier.into(),
        answers: answer
            .map(|a| pb::Answer {
                question_id: "size".into(),
                value: Some(Value::Choice(a.into())),
            })
            .into_iter()
            .collect(),
    };
    let (_, a) = new_user(&app);
    let missing = app
        .join
        .clone()
        .join(authed(join("vip", None), &a))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert!(
        missing.message().contains("T-shirt size"),
        "{}",
        missing.message()
    );
    let wrong = app
        .join
        .clone()
        .join(authed(join("vip", Some("XXL")), &a))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    let no_tier = app
        .join
        .clone()
        .join(authed(join("gold", Some("S")), &a))
        .await
        .unwrap_err();
    assert!(
        no_tier.message().starts_with("tier_id"),
        "{}",
        no_tier.message()
    );

    let vip = app
        .join
        .clone()
        .join(authed(join("vip", Some("S")), &a))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        vip.registration.unwrap().status(),
        pb::RegistrationStatus::Confirmed
    );
    let (_, b) = new_user(&app);
    let second_vip = app
        .join
        .clone()
        .join(authed(join("vip", Some("M")), &b))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        second_vip.registration.unwrap().status(),
        pb::RegistrationStatus::Waitlisted,
        "the VIP tier is full"
    );
    let (_, c) = new_user(&app);
    let std = app
        .join
        .clone()
        .join(authed(join("std", Some("M")), &c))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        std.registration.unwrap().status(),
        pb::RegistrationStatus::Confirmed
    );
}

#[tokio::test]
async fn raising_capacity_promotes_the_waitlist_through_the_event_stream() {
    let app = spawn_app().await;
    let event = app.event(draft(1, 0)).await;
    let users: Vec<_> = (0..3).map(|_| new_user(&app)).collect();
    for (_, t) in &users {
        app.join_as(t, &event.id).await.unwrap();
    }
    app.update_event(&event, draft(2, 0)).await;
    app.eventually("the first waitlisted is promoted", async || {
        app.status_of(&users[1].1, &event.id).await == pb::RegistrationStatus::Confirmed
    })
    .await;
    assert_eq!(
        app.status_of(&users[2].1, &event.id).await,
        pb::RegistrationStatus::Waitlisted
    );
}

#[tokio::test]
async fn capacity_cannot_drop_below_the_confirmed_count() {
    let app = spawn_app().await;
    let event = app.event(draft(3, 0)).await;
    for _ in 0..2 {
        app.join_as(&new_user(&app).1, &event.id).await.unwrap();
    }
    let events = app.event_replica_with_join().await;
    let update = |capacity| ev::UpdateEventRequest {
        event_id: event.id.clone(),
        expected_version: event.version,
        draft: Some(draft(capacity, 0)),
    };
    let err = events
        .clone()
        .update_event(authed(update(1), &app.organizer))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().starts_with("draft.capacity"),
        "{}",
        err.message()
    );
    assert!(
        events
            .clone()
            .update_event(authed(update(2), &app.organizer))
            .await
            .is_ok(),
        "down to the confirmed count is fine"
    );
}

#[tokio::test]
async fn joining_again_returns_the_held_place_and_rejoining_after_leaving_takes_a_new_one() {
    let app = spawn_app().await;
    let event = app.event(draft(5, 0)).await;
    let (_, token) = new_user(&app);
    let first = app.join_as(&token, &event.id).await.unwrap();
    let again = app.join_as(&token, &event.id).await.unwrap();
    assert_eq!(
        (&again.id, &again.ticket_code),
        (&first.id, &first.ticket_code)
    );
    assert_eq!(app.counts(&event.id).await.confirmed, 1);

    app.leave_as(&token, &event.id).await.unwrap();
    let back = app.join_as(&token, &event.id).await.unwrap();
    assert_ne!(back.id, first.id);
    assert_eq!(back.status(), pb::RegistrationStatus::Confirmed);
    assert_eq!(app.counts(&event.id).await.confirmed, 1);
    assert_eq!(
        app.registration_events().await.len(),
        3,
        "joined, left, joined"
    );
}
