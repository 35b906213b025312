use cityevents_proto::cityevents::auth::v1 as pb;

use crate::helpers::spawn_app;

#[tokio::test]
async fn registering_writes_the_user_and_its_outbox_rows_in_one_transaction() {
    let app = spawn_app().await;
    let (email, r) = app.user().await;
    let id = r.user.unwrap().id;
    let registered = app
        .published::<pb::UserRegistered>("auth.user_registered", &id)
        .await;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].email, email);
    let verify = app
        .published::<pb::EmailVerificationRequested>("auth.email_verification_requested", &id)
        .await;
    assert_eq!(verify.len(), 1);
    #[allow(deprecated)]
    let clear = &verify[0].token;
    assert!(clear.is_empty(), "no usable token on the bus");
    // The token, opened as the mail service opens it, is stored only as a hash.
    let token = &app.verification_tokens(&id).await[0];
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM one_time_tokens WHERE token_hash = sha256($1::bytea)")
            .bind(token.as_bytes())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn no_message_on_the_bus_holds_a_usable_verification_or_reset_token() {
    let app = spawn_app().await;
    let (email, r) = app.user().await;
    let id = r.user.unwrap().id;
    app.client
        .clone()
        .request_password_reset(pb::RequestPasswordResetRequest { email })
        .await
        .unwrap();
    let mut secrets = app.verification_tokens(&id).await;
    secrets.extend(app.reset_tokens(&id).await);
    assert_eq!(secrets.len(), 2);
    for message in app.envelopes().await {
        for secret in &secrets {
            let raw = String::from_utf8_lossy(&message.payload);
            assert!(
                !raw.contains(secret.as_str()),
                "{} carries a token in clear",
                message.r#type
            );
        }
    }
    // The sealed form is no token: using it fails.
    let sealed = app
        .published::<pb::EmailVerificationRequested>("auth.email_verification_requested", &id)
        .await[0]
        .sealed_token
        .clone();
    let refused = app
        .client
        .clone()
        .verify_email(pb::VerifyEmailRequest { token: sealed })
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn a_failed_registration_publishes_nothing() {
    let app = spawn_app().await;
    let (email, _) = app.user().await;
    let before = app.envelopes().await.len();
    let dup = pb::RegisterRequest {
        email,
        password: crate::helpers::PASSWORD.into(),
        display_name: String::new(),
    };
    assert!(app.client.clone().register(dup).await.is_err());
    assert_eq!(app.envelopes().await.len(), before);
}

#[tokio::test]
async fn a_transaction_rolled_back_after_the_user_insert_leaves_neither_user_nor_event() {
    // Simulate a crash between the two writes: make the outbox insert fail.
    let app = spawn_app().await;
    sqlx::query("ALTER TABLE outbox RENAME TO no_events")
        .execute(&app.pool)
        .await
        .unwrap();
    let req = pb::RegisterRequest {
        email: crate::helpers::unique_email(),
        password: crate::helpers::PASSWORD.into(),
        display_name: String::new(),
    };
    let err = app.client.clone().register(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Internal);
    assert!(
        !err.message().contains("no_events"),
        "internal text leaked: {}",
        err.message()
    );
    let (users,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn the_relay_publishes_the_outbox_to_the_auth_stream_and_then_deletes_the_rows() {
    let app = spawn_app().await;
    let (_, r) = app.user().await;
    // `envelopes` returns once the relay has emptied the outbox.
    let published: Vec<_> = app
        .envelopes()
        .await
        .into_iter()
        .map(|e| e.r#type)
        .collect();
    assert_eq!(
        published,
        ["auth.user_registered", "auth.email_verification_requested"]
    );
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert!(r.user.is_some());
}
