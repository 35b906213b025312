use tonic::Code;

use auth::config::Limit;

use crate::helpers::{PASSWORD, spawn_app_with, test_config, unique_email};

#[tokio::test]
async fn logins_past_the_per_account_burst_are_refused_with_a_retry_after() {
    let mut cfg = test_config();
    cfg.rate_limits.login_per_account = Limit {
        per_minute: 1,
        burst: 3,
    };
    let app = spawn_app_with(cfg).await;
    let email = unique_email();
    app.register(&email).await;
    for _ in 0..3 {
        assert!(app.login(&email, PASSWORD).await.is_ok());
    }
    let err = app.login(&email, PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    let after: u64 = err
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&after), "retry-after {after}");
    // Another account is not affected.
    let other = unique_email();
    app.register(&other).await;
    assert!(app.login(&other, PASSWORD).await.is_ok());
}

#[tokio::test]
async fn logins_past_the_per_address_burst_are_refused_whatever_the_account() {
    let mut cfg = test_config();
    cfg.rate_limits.login_per_address = Limit {
        per_minute: 1,
        burst: 2,
    };
    let app = spawn_app_with(cfg).await;
    let codes = [
        app.login(&unique_email(), PASSWORD)
            .await
            .unwrap_err()
            .code(),
        app.login(&unique_email(), PASSWORD)
            .await
            .unwrap_err()
            .code(),
        app.login(&unique_email(), PASSWORD)
            .await
            .unwrap_err()
            .code(),
    ];
    assert_eq!(
        codes,
        [
            Code::Unauthenticated,
            Code::Unauthenticated,
            Code::ResourceExhausted
        ]
    );
}

#[tokio::test]
async fn registrations_past_the_per_address_burst_are_refused() {
    let mut cfg = test_config();
    cfg.rate_limits.register_per_address = Limit {
        per_minute: 1,
        burst: 1,
    };
    let app = spawn_app_with(cfg).await;
    app.register(&unique_email()).await;
    let req = cityevents_proto::cityevents::auth::v1::RegisterRequest {
        email: unique_email(),
        password: PASSWORD.into(),
        display_name: String::new(),
    };
    let err = app.client.clone().register(req).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(err.metadata().get("retry-after").is_some());
}
