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

/// A login sent through a proxy that says the client was `forwarded_for`.
async fn login_via(
    app: &crate::helpers::TestApp,
    email: &str,
    password: &str,
    forwarded_for: &str,
) -> Code {
    let mut req = tonic::Request::new(cityevents_proto::cityevents::auth::v1::LoginRequest {
        email: email.into(),
        password: password.into(),
    });
    req.metadata_mut()
        .insert("x-forwarded-for", forwarded_for.parse().unwrap());
    app.client
        .clone()
        .login(req)
        .await
        .map_or_else(|s| s.code(), |_| Code::Ok)
}

#[tokio::test]
async fn a_stranger_failing_logins_for_a_victims_email_does_not_lock_the_victim_out() {
    let mut cfg = test_config();
    cfg.trusted_proxies = cityevents_runtime::client_addr::TrustedProxies::new(&["127.0.0.1"]);
    cfg.rate_limits.login_per_account = Limit {
        per_minute: 1,
        burst: 2,
    };
    let app = spawn_app_with(cfg).await;
    let victim = unique_email();
    app.register(&victim).await;
    let stranger = "198.51.100.66";
    let tries = [
        login_via(&app, &victim, "wrong-password", stranger).await,
        login_via(&app, &victim, "wrong-password", stranger).await,
        login_via(&app, &victim, "wrong-password", stranger).await,
    ];
    assert_eq!(
        tries,
        [
            Code::Unauthenticated,
            Code::Unauthenticated,
            Code::ResourceExhausted
        ]
    );
    assert_eq!(
        login_via(&app, &victim, PASSWORD, "203.0.113.10").await,
        Code::Ok
    );
}

#[tokio::test]
async fn the_client_is_the_right_most_hop_a_trusted_proxy_saw_not_what_the_client_wrote() {
    let mut cfg = test_config();
    cfg.trusted_proxies = cityevents_runtime::client_addr::TrustedProxies::new(&["127.0.0.1"]);
    cfg.rate_limits.login_per_address = Limit {
        per_minute: 1,
        burst: 2,
    };
    let app = spawn_app_with(cfg).await;
    // One client rotating what it writes on the left: one bucket.
    let spoofed = [
        login_via(&app, &unique_email(), PASSWORD, "1.1.1.1, 198.51.100.5").await,
        login_via(&app, &unique_email(), PASSWORD, "2.2.2.2, 198.51.100.5").await,
        login_via(&app, &unique_email(), PASSWORD, "3.3.3.3, 198.51.100.5").await,
    ];
    assert_eq!(spoofed[2], Code::ResourceExhausted, "{spoofed:?}");
    // Behind the proxy, other clients have buckets of their own: the whole
    // site does not share one.
    assert_eq!(
        login_via(&app, &unique_email(), PASSWORD, "198.51.100.6").await,
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let mut cfg = test_config();
    cfg.rate_limits.login_per_address = Limit {
        per_minute: 1,
        burst: 2,
    };
    let app = spawn_app_with(cfg).await;
    let codes = [
        login_via(&app, &unique_email(), PASSWORD, "198.51.100.1").await,
        login_via(&app, &unique_email(), PASSWORD, "198.51.100.2").await,
        login_via(&app, &unique_email(), PASSWORD, "198.51.100.3").await,
    ];
    assert_eq!(codes[2], Code::ResourceExhausted, "{codes:?}");
}
