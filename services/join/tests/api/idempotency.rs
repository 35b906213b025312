use tonic::Code;
use tonic::metadata::MetadataValue;

use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_testkit::authed;

use crate::helpers::{draft, new_user, reason, spawn_app};

fn keyed(event: &str, tier: &str, token: &str, key: &str) -> tonic::Request<pb::JoinRequest> {
    let mut req = authed(
        pb::JoinRequest {
            event_id: event.into(),
            tier_id: tier.into(),
            ..Default::default()
        },
        token,
    );
    req.metadata_mut()
        .insert("idempotency-key", MetadataValue::try_from(key).unwrap());
    req
}

#[tokio::test]
async fn an_idempotent_retry_after_leaving_returns_the_first_result_and_does_not_rejoin() {
    let app = spawn_app().await;
    let event = app.event(draft(10, 0)).await;
    let (_, token) = new_user(&app);
    let first = app
        .join
        .clone()
        .join(keyed(&event.id, "", &token, "k-1"))
        .await
        .unwrap()
        .into_inner();
    app.leave_as(&token, &event.id).await.unwrap();

    let retry = app
        .join
        .clone()
        .join(keyed(&event.id, "", &token, "k-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        retry.registration.as_ref().unwrap().id,
        first.registration.as_ref().unwrap().id
    );
    assert_eq!(
        app.statuses(&event.id).await,
        [("cancelled".into(), 1)],
        "the retry did not join again"
    );
}

#[tokio::test]
async fn concurrent_requests_with_one_key_join_once() {
    let app = spawn_app().await;
    let event = app.event(draft(10, 0)).await;
    let (_, token) = new_user(&app);
    let calls = (0..20).map(|_| {
        let mut c = app.join.clone();
        let req = keyed(&event.id, "", &token, "same");
        async move {
            c.join(req)
                .await
                .map(|r| r.into_inner().registration.unwrap().id)
        }
    });
    let ids: Vec<_> = futures::future::join_all(calls).await;
    let ok: std::collections::HashSet<_> = ids.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 1, "{ids:?}");
    assert_eq!(app.statuses(&event.id).await, [("confirmed".into(), 1)]);
}

#[tokio::test]
async fn a_key_reused_for_a_different_request_is_refused() {
    let app = spawn_app().await;
    let a = app.event(draft(10, 0)).await;
    let b = app.event(draft(10, 0)).await;
    let (_, token) = new_user(&app);
    app.join
        .clone()
        .join(keyed(&a.id, "", &token, "k"))
        .await
        .unwrap();
    let err = app
        .join
        .clone()
        .join(keyed(&b.id, "", &token, "k"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "IDEMPOTENCY_KEY_REUSED");
    let bad = app
        .join
        .clone()
        .join(keyed(&a.id, "", &token, "has space"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}
