//! h2's reset-flood protection against ordinary deadline expiry: a client
//! that cancels many calls at once (each a HEADERS frame then RST_STREAM,
//! before the server accepted the stream) must not cost the other calls on
//! its connection a GOAWAY, while the protection itself stays on. And a call
//! with oversized headers is refused alone, its connection kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use bytes::Bytes;
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::ServerConfig;
use cityevents_runtime::grpc::server::ServiceSet;
use cityevents_runtime::host::Host;
use cityevents_runtime::metrics::Metrics;

/// A server (health only) whose pending-accept reset limit is `limit`.
async fn server(limit: usize) -> (SocketAddr, CancellationToken) {
    let config = ServerConfig {
        http2_max_pending_accept_resets: limit,
        ..ServerConfig::ephemeral()
    };
    let host = Host::bind(config, Metrics::new().unwrap(), ServiceSet::new())
        .await
        .unwrap();
    let (addr, stop) = (host.grpc_addr(), CancellationToken::new());
    tokio::spawn(host.run(stop.clone()));
    (addr, stop)
}

fn health_check(addr: SocketAddr) -> http::Request<()> {
    http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// On one connection: `cancelled` calls sent and reset at once, then one
/// health check; the check's `grpc-status`, or the error that ended it.
async fn cancel_burst_then_check(addr: SocketAddr, cancelled: usize) -> Result<String, h2::Error> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await?;
    tokio::spawn(conn);
    let mut client = client.ready().await?;
    for _ in 0..cancelled {
        let (_, mut body) = client.send_request(health_check(addr), false)?;
        body.send_reset(h2::Reason::CANCEL);
        client = client.ready().await?;
    }
    let (response, mut body) = client.send_request(health_check(addr), false)?;
    // An empty HealthCheckRequest, framed: uncompressed, length 0.
    body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)?;
    let mut response = response.await?.into_body();
    while let Some(chunk) = response.data().await {
        chunk?;
    }
    let trailers = response.trailers().await?.unwrap_or_default();
    Ok(trailers
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default())
}

#[tokio::test]
async fn a_burst_of_cancelled_calls_leaves_the_connection_serving_the_next_call() {
    let (addr, stop) = server(ServerConfig::default().http2_max_pending_accept_resets).await;
    let status = cancel_burst_then_check(addr, 1_000).await;
    stop.cancel();
    assert_eq!(
        status.unwrap(),
        "0",
        "the call after the burst is answered OK"
    );
}

#[tokio::test]
async fn with_h2s_default_limit_the_same_burst_closes_the_connection() {
    // What the setting above is for: h2's default allows 20.
    let (addr, stop) = server(20).await;
    let status = cancel_burst_then_check(addr, 1_000).await;
    stop.cancel();
    // GOAWAY (ENHANCE_YOUR_CALM), then the socket closes: the client sees
    // one or the other, and the innocent call fails either way.
    let err = status.expect_err("the call after the burst fails");
    assert!(err.is_go_away() || err.is_io(), "{err}");
}

#[tokio::test]
async fn a_100_kb_header_is_refused_for_that_call_and_the_connection_serves_the_next() {
    let (addr, stop) = server(ServerConfig::default().http2_max_pending_accept_resets).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut big = health_check(addr);
    big.headers_mut()
        .insert("x-big", "a".repeat(100_000).parse().unwrap());

    let refused = call(client.clone(), big).await.unwrap();
    let next = call(client, health_check(addr)).await.unwrap();
    stop.cancel();

    assert_eq!(
        refused,
        ("8".to_owned(), "HEADERS_TOO_LARGE".to_owned()),
        "RESOURCE_EXHAUSTED with its reason"
    );
    assert_eq!(next.0, "0", "the same connection answers the next call");
}

/// One health check: its `grpc-status` and `x-cityevents-error`, read from
/// the headers (trailers-only answer) or the trailers.
async fn call(
    client: h2::client::SendRequest<Bytes>,
    req: http::Request<()>,
) -> Result<(String, String), h2::Error> {
    let mut client = client.ready().await?;
    let (response, mut body) = client.send_request(req, false)?;
    body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)?;
    let response = response.await?;
    let mut headers = response.headers().clone();
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        chunk?;
    }
    headers.extend(body.trailers().await?.unwrap_or_default());
    let get = |k: &str| {
        headers
            .get(k)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    Ok((get("grpc-status"), get("x-cityevents-error")))
}
