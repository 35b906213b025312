use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{spawn_app, spawn_app_with, test_config};

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_auth_service() {
    let app = spawn_app().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "cityevents.auth.v1.AuthService"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code_with_the_standard_names() {
    let app = spawn_app().await;
    let email = crate::helpers::unique_email();
    app.register(&email).await;
    let _ = app.login(&email, "wrong password!").await;
    let text = app.metrics_text().await;
    let has = |needle: &str| text.lines().any(|l| l.starts_with(needle));
    assert!(
        has(
            r#"grpc_server_handled_total{grpc_code="OK",grpc_method="Register",grpc_service="cityevents.auth.v1.AuthService",grpc_type="unary"} 1"#
        ),
        "{text}"
    );
    assert!(has(
        r#"grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="Login",grpc_service="cityevents.auth.v1.AuthService",grpc_type="unary"} 1"#
    ));
    assert!(has(r#"grpc_server_started_total{grpc_method="Login""#));
    assert!(has(
        r#"grpc_server_handling_seconds_bucket{grpc_method="Register""#
    ));
    assert!(has(r#"auth_logins_total{result="bad_credentials"} 1"#));
    assert!(!text.contains(&email), "no user data in metrics");
}

#[tokio::test]
async fn shutdown_turns_health_not_serving_then_drains_and_closes_the_listener() {
    let mut cfg = test_config();
    cfg.server.drain_delay_ms = 1_000;
    let app = spawn_app_with(cfg).await;
    let addr = app.grpc_addr;
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );

    app.shutdown.cancel();
    // Balancers watching health see NOT_SERVING before the listener goes.
    assert_eq!(
        watch.message().await.unwrap().unwrap().status(),
        ServingStatus::NotServing
    );
    drop(watch);
    tokio::time::timeout(std::time::Duration::from_secs(10), app.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let gone = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    assert!(gone.is_err(), "listener is closed after shutdown");
}

#[tokio::test]
async fn runtime_clients_forward_the_callers_token_and_count_their_calls() {
    use cityevents_proto::cityevents::auth::v1::{
        GetMeRequest, auth_service_client::AuthServiceClient,
    };
    use cityevents_runtime::grpc::client::{ClientConfig, channel};
    use cityevents_runtime::grpc::context::CallContext;
    use cityevents_runtime::metrics::Metrics;

    let app = spawn_app().await;
    let (_, r) = app.user().await;
    let token = r.session.unwrap().access_token;
    let metrics = Metrics::new().unwrap();
    let cfg = ClientConfig {
        endpoint: format!("http://{}", app.grpc_addr),
        ..ClientConfig::default()
    };
    let mut client = AuthServiceClient::new(channel(&cfg, &metrics).unwrap());

    // Outside a call there is no token to forward.
    assert_eq!(
        client.get_me(GetMeRequest {}).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    // Inside one (as in a handler of another service) the caller's token goes along.
    let call = CallContext {
        authorization: Some(format!("Bearer {token}").parse().unwrap()),
        deadline: None,
    };
    let me = call
        .scope(client.get_me(GetMeRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(me.user.is_some());

    let text = metrics.render();
    assert!(
        text.contains(r#"grpc_client_handled_total{grpc_code="OK",grpc_method="GetMe""#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"grpc_client_handled_total{grpc_code="Unauthenticated",grpc_method="GetMe""#
        )
    );
}
