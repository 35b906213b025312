use tonic::Code;

use cityevents_proto::cityevents::auth::v1 as pb;

use crate::helpers::{PASSWORD, authed, code, spawn_app, unique_email};

const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn a_verification_token_verifies_once_and_the_flag_reaches_new_tokens() {
    let app = spawn_app().await;
    let (email, r) = app.user().await;
    let user = r.user.unwrap();
    let token = app.verification_tokens(&user.id).await[0].clone();

    let verified = app
        .client
        .clone()
        .verify_email(pb::VerifyEmailRequest {
            token: token.clone(),
        })
        .await
        .unwrap();
    assert!(verified.into_inner().user.unwrap().email_verified);
    let again = app
        .client
        .clone()
        .verify_email(pb::VerifyEmailRequest { token })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(
        again.message().contains("already been used"),
        "{}",
        again.message()
    );

    let session = app.login(&email, PASSWORD).await.unwrap().session.unwrap();
    let jwks = app
        .client
        .clone()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let claims = decode_claims(&session.access_token, &jwks);
    assert!(claims.ev, "email_verified is in the token");
}

fn decode_claims(token: &str, jwks: &pb::GetJwksResponse) -> cityevents_authn::Claims {
    let key = jsonwebtoken::DecodingKey::from_ed_components(&jwks.keys[0].x).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&[&jwks.audience]);
    v.set_issuer(&[&jwks.issuer]);
    jsonwebtoken::decode(token, &key, &v).unwrap().claims
}

#[tokio::test]
async fn an_expired_verification_token_is_refused_and_a_new_one_can_be_asked_for() {
    let app = spawn_app().await;
    let (_, r) = app.user().await;
    let user = r.user.unwrap();
    let access = r.session.unwrap().access_token;
    let token = app.verification_tokens(&user.id).await[0].clone();
    sqlx::query("UPDATE one_time_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();

    let err = app
        .client
        .clone()
        .verify_email(pb::VerifyEmailRequest { token })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("expired"), "{}", err.message());

    app.client
        .clone()
        .request_email_verification(authed(pb::RequestEmailVerificationRequest {}, &access))
        .await
        .unwrap();
    let mails = app.verification_tokens(&user.id).await;
    assert_eq!(mails.len(), 2);
    let ok = app
        .client
        .clone()
        .verify_email(pb::VerifyEmailRequest {
            token: mails[1].clone(),
        })
        .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn a_password_reset_is_single_use_sets_the_password_and_ends_every_session() {
    let app = spawn_app().await;
    let (email, r) = app.user().await;
    let user = r.user.unwrap();
    let old_session = r.session.unwrap();
    app.client
        .clone()
        .request_password_reset(pb::RequestPasswordResetRequest {
            email: email.clone(),
        })
        .await
        .unwrap();
    let token = app.reset_tokens(&user.id).await[0].clone();

    // A password the policy refuses leaves the token usable.
    let weak = pb::ResetPasswordRequest {
        token: token.clone(),
        new_password: "short".into(),
    };
    assert_eq!(
        code(app.client.clone().reset_password(weak).await),
        Code::InvalidArgument
    );

    let reset = pb::ResetPasswordRequest {
        token: token.clone(),
        new_password: NEW_PASSWORD.into(),
    };
    app.client
        .clone()
        .reset_password(reset.clone())
        .await
        .unwrap();
    assert_eq!(
        code(app.client.clone().reset_password(reset).await),
        Code::FailedPrecondition
    );

    assert_eq!(
        app.me(&old_session.access_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_eq!(
        app.login(&email, PASSWORD).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert!(app.login(&email, NEW_PASSWORD).await.is_ok());
}

#[tokio::test]
async fn a_reset_request_for_an_unknown_email_looks_the_same_and_writes_nothing() {
    let app = spawn_app().await;
    let r = app
        .client
        .clone()
        .request_password_reset(pb::RequestPasswordResetRequest {
            email: unique_email(),
        })
        .await;
    assert!(r.is_ok());
    assert!(app.envelopes().await.is_empty());
    let forged = pb::ResetPasswordRequest {
        token: "forged".into(),
        new_password: NEW_PASSWORD.into(),
    };
    assert_eq!(
        code(app.client.clone().reset_password(forged).await),
        Code::InvalidArgument
    );
}
