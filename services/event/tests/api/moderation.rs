use tonic::Code;

use cityevents_proto::cityevents::event::v1 as pb;
use cityevents_testkit::{authed, code};

use crate::helpers::{draft, spawn_app};

#[tokio::test]
async fn a_report_is_kept_once_per_reporter_and_moderators_can_list_it() {
    let app = spawn_app().await;
    let (_, owner) = app.world.user();
    let (_, reporter) = app.world.user();
    let e = app
        .publish(&owner, &app.create(&owner, draft(10)).await.unwrap())
        .await
        .unwrap();
    let report = pb::ReportEventRequest {
        event_id: e.id.clone(),
        reason: "spam".into(),
    };
    app.client
        .clone()
        .report_event(authed(report.clone(), &reporter))
        .await
        .unwrap();
    assert_eq!(
        code(
            app.client
                .clone()
                .report_event(authed(report, &reporter))
                .await
        ),
        Code::AlreadyExists
    );

    let list = pb::ListReportsRequest::default();
    assert_eq!(
        code(
            app.client
                .clone()
                .list_reports(authed(list.clone(), &reporter))
                .await
        ),
        Code::PermissionDenied
    );
    let reports = app
        .client
        .clone()
        .list_reports(authed(list, &app.moderator()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reports.reports.len(), 1);
    assert_eq!(reports.reports[0].reason, "spam");
}

#[tokio::test]
async fn a_moderator_hides_an_event_with_a_reason_that_is_audited_and_emitted() {
    let app = spawn_app().await;
    let (_, owner) = app.world.user();
    let (_, someone) = app.world.user();
    let e = app
        .publish(&owner, &app.create(&owner, draft(10)).await.unwrap())
        .await
        .unwrap();
    let hide = pb::HideEventRequest {
        event_id: e.id.clone(),
        reason: "scam".into(),
    };
    assert_eq!(
        code(
            app.client
                .clone()
                .hide_event(authed(hide.clone(), &someone))
                .await
        ),
        Code::PermissionDenied
    );

    let moderator = app.moderator();
    let hidden = app
        .client
        .clone()
        .hide_event(authed(hide, &moderator))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert!(hidden.hidden);
    assert_eq!(code(app.get(Some(&someone), &e.id).await), Code::NotFound);
    assert!(
        app.get(Some(&owner), &e.id).await.is_ok(),
        "organizers still see it"
    );

    let unhide = pb::UnhideEventRequest {
        event_id: e.id.clone(),
        reason: "appeal accepted".into(),
    };
    app.client
        .clone()
        .unhide_event(authed(unhide, &moderator))
        .await
        .unwrap();
    assert!(app.get(Some(&someone), &e.id).await.is_ok());

    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT action, reason FROM moderation_audit ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        actions,
        [
            ("hide".into(), "scam".into()),
            ("unhide".into(), "appeal accepted".into())
        ]
    );
    assert_eq!(
        app.published(&e.id).await,
        ["event.published", "event.hidden", "event.unhidden"]
    );
}
