use tonic::Code;

use cityevents_proto::cityevents::auth::v1 as pb;

use crate::helpers::{PASSWORD, code, spawn_app, unique_email};

fn register_req(email: &str, password: &str) -> pb::RegisterRequest {
    pb::RegisterRequest {
        email: email.into(),
        password: password.into(),
        display_name: String::new(),
    }
}

#[tokio::test]
async fn register_normalises_the_email_and_returns_an_unverified_user_with_a_session() {
    let app = spawn_app().await;
    let email = unique_email();
    let r = app.register(&format!("  {}  ", email.to_uppercase())).await;
    let user = r.user.unwrap();
    assert_eq!(user.email, email);
    assert!(!user.email_verified);
    assert_eq!(user.role(), pb::Role::User);
    let session = r.session.unwrap();
    assert!(!session.access_token.is_empty() && !session.refresh_token.is_empty());
    assert_eq!(app.me(&session.access_token).await.unwrap().id, user.id);
}

#[tokio::test]
async fn register_rejects_a_taken_email_whatever_its_case_with_already_exists() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let err = app
        .client
        .clone()
        .register(register_req(&email.to_uppercase(), PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().starts_with("email:"), "{}", err.message());
}

#[tokio::test]
async fn register_names_the_bad_field_with_invalid_argument() {
    let app = spawn_app().await;
    let cases = [
        (register_req("not-an-email", PASSWORD), "email:"),
        (register_req("", PASSWORD), "email:"),
        (register_req(&unique_email(), "short"), "password:"),
        (register_req(&unique_email(), &"p".repeat(200)), "password:"),
    ];
    for (req, field) in cases {
        let err = app.client.clone().register(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with(field), "{}", err.message());
        assert_eq!(
            err.metadata().get("x-cityevents-error").unwrap(),
            "INVALID_ARGUMENT"
        );
    }
}

#[tokio::test]
async fn racing_registrations_of_one_email_create_exactly_one_account() {
    let app = spawn_app().await;
    let email = unique_email();
    let attempts = (0..16).map(|_| {
        let mut c = app.client.clone();
        let req = register_req(&email, PASSWORD);
        tokio::spawn(async move { code(c.register(req).await) })
    });
    let codes: Vec<_> = futures::future::join_all(attempts)
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
            .all(|c| matches!(c, Code::Ok | Code::AlreadyExists)),
        "{codes:?}"
    );
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn odd_input_never_panics_or_leaks_internals() {
    let app = spawn_app().await;
    let weird = [
        "\u{0}",
        "a@b.c\u{0}",
        "'; DROP TABLE users; --@x.org",
        &"é".repeat(300),
        "@",
        "a@b..c",
    ];
    for input in weird {
        let r = app
            .client
            .clone()
            .register(register_req(input, input))
            .await;
        let err = r.unwrap_err();
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{input:?}: {}",
            err.message()
        );
        let r = app.login(input, input).await.unwrap_err();
        assert!(
            matches!(r.code(), Code::InvalidArgument | Code::Unauthenticated),
            "{input:?}"
        );
        assert!(!r.message().to_lowercase().contains("sql"));
    }
}
