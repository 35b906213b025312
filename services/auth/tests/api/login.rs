use tonic::Code;

use crate::helpers::{PASSWORD, spawn_app, unique_email};

#[tokio::test]
async fn login_with_the_right_password_returns_a_working_session() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let r = app.login(&email.to_uppercase(), PASSWORD).await.unwrap();
    let me = app.me(&r.session.unwrap().access_token).await.unwrap();
    assert_eq!(me.email, email);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let wrong_password = app.login(&email, "not the password").await.unwrap_err();
    let unknown_email = app.login(&unique_email(), PASSWORD).await.unwrap_err();
    assert_eq!(wrong_password.code(), Code::Unauthenticated);
    assert_eq!(wrong_password.code(), unknown_email.code());
    assert_eq!(wrong_password.message(), unknown_email.message());
}

#[tokio::test]
async fn calls_without_or_with_a_forged_token_are_unauthenticated() {
    let app = spawn_app().await;
    let err = app
        .client
        .clone()
        .get_me(cityevents_proto::cityevents::auth::v1::GetMeRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("authorization"), "{}", err.message());

    // A token signed by another service's key is refused.
    let other = crate::helpers::spawn_app().await;
    let (_, r) = other.user().await;
    let foreign = r.session.unwrap().access_token;
    assert_eq!(
        app.me(&foreign).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        app.me("garbage").await.unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn the_jwks_holds_the_signing_key_and_other_verifiers_accept_its_tokens() {
    use std::sync::Arc;

    use cityevents_authn::{Revocations, Verifier, VerifierConfig};

    let app = spawn_app().await;
    let jwks = app
        .client
        .clone()
        .get_jwks(cityevents_proto::cityevents::auth::v1::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(
        (jwks.keys[0].kty.as_str(), jwks.keys[0].crv.as_str()),
        ("OKP", "Ed25519")
    );

    // Another service verifies with only the JWKS (no shared secret) and no
    // revocation entries under its own prefix.
    let redis = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let conn = redis::aio::ConnectionManager::new(redis).await.unwrap();
    let cfg = VerifierConfig {
        revocation_prefix: "test:elsewhere:".into(),
        ..VerifierConfig::default()
    };
    let revocations = Revocations::new(
        conn,
        "test:elsewhere:",
        cityevents_runtime::metrics::RedisCalls::unregistered(),
    );
    revocations.mark_synced().await.unwrap();
    let verifier = Verifier::new(&cfg, Arc::new(jwks.keys), revocations);
    let (_, r) = app.user().await;
    let principal = verifier
        .verify(&r.session.unwrap().access_token)
        .await
        .unwrap();
    assert_eq!(principal.user_id.to_string(), r.user.unwrap().id);
    assert!(!principal.email_verified);
}
