use tonic::Code;

use cityevents_proto::cityevents::auth::v1 as pb;

use crate::helpers::{PASSWORD, authed, code, spawn_app};

fn refresh_req(token: &str) -> pb::RefreshRequest {
    pb::RefreshRequest {
        refresh_token: token.into(),
    }
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_returns_a_working_access_token() {
    let app = spawn_app().await;
    let (_, r) = app.user().await;
    let first = r.session.unwrap();
    let second = app
        .client
        .clone()
        .refresh(refresh_req(&first.refresh_token))
        .await
        .unwrap()
        .into_inner();
    let second = second.session.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert!(app.me(&second.access_token).await.is_ok());
    let third = app
        .client
        .clone()
        .refresh(refresh_req(&second.refresh_token))
        .await;
    assert!(third.is_ok());
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let (_, r) = app.user().await;
    let stolen = r.session.unwrap();
    let rotated = app
        .client
        .clone()
        .refresh(refresh_req(&stolen.refresh_token))
        .await
        .unwrap()
        .into_inner();
    let rotated = rotated.session.unwrap();

    let reuse = app
        .client
        .clone()
        .refresh(refresh_req(&stolen.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(reuse.code(), Code::Unauthenticated);
    assert!(
        reuse.message().contains("already used"),
        "{}",
        reuse.message()
    );

    // The legitimate holder's newer tokens are dead too.
    let newer = app
        .client
        .clone()
        .refresh(refresh_req(&rotated.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(newer.code(), Code::Unauthenticated);
    assert_eq!(
        app.me(&rotated.access_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn of_many_racing_refreshes_with_one_token_exactly_one_succeeds() {
    let app = spawn_app().await;
    let (_, r) = app.user().await;
    let token = r.session.unwrap().refresh_token;
    let racers = (0..20).map(|_| {
        let mut c = app.client.clone();
        let req = refresh_req(&token);
        tokio::spawn(async move { code(c.refresh(req).await) })
    });
    let codes: Vec<_> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Code::Ok).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, Code::Ok | Code::Unauthenticated)),
        "{codes:?}"
    );
}

#[tokio::test]
async fn unknown_or_empty_refresh_tokens_are_refused_clearly() {
    let app = spawn_app().await;
    let empty = app
        .client
        .clone()
        .refresh(refresh_req(""))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert!(empty.message().starts_with("refresh_token:"));
    let unknown = app
        .client
        .clone()
        .refresh(refresh_req("made-up"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let app = spawn_app().await;
    let (_, r) = app.user().await;
    sqlx::query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let err = app
        .client
        .clone()
        .refresh(refresh_req(&r.session.unwrap().refresh_token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("expired"), "{}", err.message());
}

#[tokio::test]
async fn logout_kills_this_sessions_access_token_at_once_but_not_other_sessions() {
    let app = spawn_app().await;
    let (email, r) = app.user().await;
    let this = r.session.unwrap();
    let other = app.login(&email, PASSWORD).await.unwrap().session.unwrap();

    app.client
        .clone()
        .logout(authed(pb::LogoutRequest {}, &this.access_token))
        .await
        .unwrap();

    assert_eq!(
        app.me(&this.access_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let refresh = app
        .client
        .clone()
        .refresh(refresh_req(&this.refresh_token))
        .await
        .unwrap_err();
    assert_eq!(refresh.code(), Code::Unauthenticated);
    assert!(app.me(&other.access_token).await.is_ok());
}

#[tokio::test]
async fn logout_everywhere_kills_every_outstanding_access_token_at_once() {
    let app = spawn_app().await;
    let (email, r) = app.user().await;
    let a = r.session.unwrap();
    let b = app.login(&email, PASSWORD).await.unwrap().session.unwrap();
    assert!(app.me(&b.access_token).await.is_ok());

    app.client
        .clone()
        .logout_everywhere(authed(pb::LogoutEverywhereRequest {}, &a.access_token))
        .await
        .unwrap();

    for s in [&a, &b] {
        let err = app.me(&s.access_token).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert!(err.message().contains("revoked"), "{}", err.message());
        let refresh = app
            .client
            .clone()
            .refresh(refresh_req(&s.refresh_token))
            .await;
        assert_eq!(code(refresh), Code::Unauthenticated);
    }
    // Signing in again works, with the new token version.
    let fresh = app.login(&email, PASSWORD).await.unwrap().session.unwrap();
    assert!(app.me(&fresh.access_token).await.is_ok());
}

/// Deletes revocation keys as a Redis that lost its data would: every key
/// under the app's prefix matching `pattern` (e.g. `*` or `tv:*`).
async fn lose_redis_keys(app: &crate::helpers::TestApp, pattern: &str) {
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}{pattern}", app.revocation_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

/// Polls (bounded) until `access_token` is refused as revoked.
async fn eventually_revoked(app: &crate::helpers::TestApp, access_token: &str) -> Vec<Code> {
    let mut seen = Vec::new();
    for _ in 0..100 {
        match app.me(access_token).await {
            Err(e) if e.code() == Code::Unauthenticated => return seen,
            Err(e) => seen.push(e.code()),
            Ok(_) => seen.push(Code::Ok),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never refused as revoked; answers: {seen:?}");
}

#[tokio::test]
async fn when_redis_loses_the_revocations_tokens_fail_closed_until_they_are_rebuilt() {
    let app = spawn_app().await;
    let (email, r) = app.user().await;
    let old = r.session.unwrap();
    app.client
        .clone()
        .logout_everywhere(authed(pb::LogoutEverywhereRequest {}, &old.access_token))
        .await
        .unwrap();
    let fresh = app.login(&email, PASSWORD).await.unwrap().session.unwrap();

    lose_redis_keys(&app, "*").await;
    // Never accepted while the copy is missing: refused (closed), then
    // refused as revoked once the copier has rebuilt it.
    let answers = eventually_revoked(&app, &old.access_token).await;
    assert!(
        !answers.contains(&Code::Ok),
        "a revoked token was accepted: {answers:?}"
    );
    assert!(
        app.me(&fresh.access_token).await.is_ok(),
        "valid tokens work again"
    );
}

#[tokio::test]
async fn a_revocation_whose_redis_write_was_lost_is_written_by_the_copier() {
    let app = spawn_app().await;
    let (_, r) = app.user().await;
    let session = r.session.unwrap();
    app.client
        .clone()
        .logout_everywhere(authed(
            pb::LogoutEverywhereRequest {},
            &session.access_token,
        ))
        .await
        .unwrap();
    // As if the write after the commit had failed: the marker stays, the
    // version and session keys are gone.
    lose_redis_keys(&app, "tv:*").await;
    lose_redis_keys(&app, "sid:*").await;
    eventually_revoked(&app, &session.access_token).await;
}
