use tonic::Code;

use cityevents_authn::Role;
use cityevents_proto::cityevents::event::v1 as pb;
use cityevents_testkit::{authed, code};

use crate::helpers::{draft, spawn_app};

#[tokio::test]
async fn an_unverified_user_may_not_create_events() {
    let app = spawn_app().await;
    let token = app.world.token(uuid::Uuid::now_v7(), Role::User, false);
    let err = app.create(&token, draft(10)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("verify your email"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_draft_is_visible_only_to_its_organizers_until_published() {
    let app = spawn_app().await;
    let (organizer, token) = app.world.user();
    let (_, other) = app.world.user();
    let created = app.create(&token, draft(10)).await.unwrap();
    assert_eq!(created.status(), pb::EventStatus::Draft);
    assert_eq!(created.organizer_id, organizer.to_string());

    assert_eq!(
        code(app.get(Some(&other), &created.id).await),
        Code::NotFound
    );
    assert_eq!(code(app.get(None, &created.id).await), Code::NotFound);
    assert!(app.get(Some(&token), &created.id).await.is_ok());

    let published = app.publish(&token, &created).await.unwrap();
    assert_eq!(published.status(), pb::EventStatus::Published);
    assert_eq!(
        app.get(None, &created.id).await.unwrap().version,
        published.version
    );
    assert_eq!(app.published(&created.id).await, ["event.published"]);
}

#[tokio::test]
async fn an_edit_with_a_stale_version_is_refused_with_aborted() {
    let app = spawn_app().await;
    let (_, token) = app.world.user();
    let e = app
        .publish(&token, &app.create(&token, draft(10)).await.unwrap())
        .await
        .unwrap();
    let mut changed = draft(20);
    changed.title = "Rust meetup #2".into();
    let update = |version| pb::UpdateEventRequest {
        event_id: e.id.clone(),
        expected_version: version,
        draft: Some(changed.clone()),
    };

    let updated = app
        .client
        .clone()
        .update_event(authed(update(e.version), &token))
        .await
        .unwrap()
        .into_inner();
    let updated = updated.event.unwrap();
    assert_eq!(updated.version, e.version + 1);
    assert_eq!(updated.draft.unwrap().title, "Rust meetup #2");

    let stale = app
        .client
        .clone()
        .update_event(authed(update(e.version), &token))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert!(
        stale.message().starts_with("expected_version"),
        "{}",
        stale.message()
    );
    assert_eq!(
        app.published(&e.id).await,
        ["event.published", "event.updated"]
    );
}

#[tokio::test]
async fn only_organizers_and_co_organizers_may_edit() {
    let app = spawn_app().await;
    let (_, owner) = app.world.user();
    let (co_id, co) = app.world.user();
    let (_, stranger) = app.world.user();
    let e = app.create(&owner, draft(10)).await.unwrap();

    assert_eq!(
        code(app.publish(&stranger, &e).await),
        Code::PermissionDenied
    );
    let add = pb::AddCoOrganizerRequest {
        event_id: e.id.clone(),
        user_id: co_id.to_string(),
    };
    assert_eq!(
        code(
            app.client
                .clone()
                .add_co_organizer(authed(add.clone(), &stranger))
                .await
        ),
        Code::PermissionDenied
    );
    let with_co = app
        .client
        .clone()
        .add_co_organizer(authed(add, &owner))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert_eq!(with_co.co_organizer_ids, [co_id.to_string()]);
    assert!(app.publish(&co, &with_co).await.is_ok());
}

#[tokio::test]
async fn cancelling_notifies_through_the_outbox_and_freezes_the_event() {
    let app = spawn_app().await;
    let (_, token) = app.world.user();
    let e = app
        .publish(&token, &app.create(&token, draft(10)).await.unwrap())
        .await
        .unwrap();
    let cancel = pb::CancelEventRequest {
        event_id: e.id.clone(),
        expected_version: e.version,
        reason: "venue flooded".into(),
    };
    let cancelled = app
        .client
        .clone()
        .cancel_event(authed(cancel, &token))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert_eq!(cancelled.status(), pb::EventStatus::Cancelled);
    assert_eq!(
        app.published(&e.id).await,
        ["event.published", "event.cancelled"]
    );

    let update = pb::UpdateEventRequest {
        event_id: e.id.clone(),
        expected_version: cancelled.version,
        draft: Some(draft(5)),
    };
    assert_eq!(
        code(
            app.client
                .clone()
                .update_event(authed(update, &token))
                .await
        ),
        Code::FailedPrecondition
    );
}

#[tokio::test]
async fn organizers_list_their_events_page_by_page() {
    let app = spawn_app().await;
    let (_, token) = app.world.user();
    for _ in 0..3 {
        app.create(&token, draft(10)).await.unwrap();
    }
    let page = |t: &str| pb::ListOrganizedEventsRequest {
        page_size: 2,
        page_token: t.into(),
    };
    let first = app
        .client
        .clone()
        .list_organized_events(authed(page(""), &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.events.len(), 2);
    let second = app
        .client
        .clone()
        .list_organized_events(authed(page(&first.next_page_token), &token))
        .await
        .unwrap();
    assert_eq!(second.into_inner().events.len(), 1);
}
