//! What the edge refuses before any service is asked.

use tonic::Code;

use cityevents_proto::cityevents::api::v1 as api;
use cityevents_testkit::authed;

use crate::helpers::*;

#[tokio::test]
async fn a_token_that_does_not_verify_is_unauthenticated_never_anonymous() {
    let mesh = mesh().await;
    let organizer = mesh.verified().await;
    let event = mesh.published(&organizer, 5, 0).await;
    // Anonymous: the public page is readable.
    let page = mesh
        .events()
        .get_event(api::GetEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.my_registration.is_none());
    // A broken token on the same call is refused, not read as anonymous.
    for bad in ["not-a-jwt", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"] {
        let err = mesh
            .events()
            .get_event(authed(
                api::GetEventRequest {
                    event_id: event.id.clone(),
                },
                bad,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{bad}");
    }
    let err = mesh
        .registrations()
        .join_event(api::JoinEventRequest {
            event_id: event.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_caller_over_the_rate_limit_is_told_when_to_come_back() {
    let mesh = mesh_with(|c| {
        c.edge.per_address = cityevents_runtime::ratelimit::Limit {
            per_minute: 60,
            burst: 3,
        };
    })
    .await;
    let mut codes = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        match mesh
            .registrations()
            .get_ticket_key(api::GetTicketKeyRequest {})
            .await
        {
            Ok(_) => codes.push(Code::Ok),
            Err(s) => {
                codes.push(s.code());
                last = Some(s);
            }
        }
    }
    assert_eq!(
        codes.iter().filter(|c| **c == Code::Ok).count(),
        3,
        "{codes:?}"
    );
    let refused = last.unwrap();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.metadata().get("retry-after").is_some());
}

#[tokio::test]
async fn browsers_from_a_configured_origin_pass_cors_and_others_do_not() {
    let mesh = mesh().await;
    let preflight = async |origin: &'static str| {
        http(
            mesh.bff,
            "OPTIONS",
            "/cityevents.api.v1.RegistrationsService/GetTicketKey",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type,x-grpc-web,authorization",
                ),
            ],
            b"",
        )
        .await
    };
    let ok = preflight("https://app.example.org").await;
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.org")
    );
    let other = preflight("https://evil.example.com").await;
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn grpc_web_binary_and_text_reach_the_same_api_over_http1() {
    use base64::Engine;
    let mesh = mesh().await;
    // An empty GetTicketKeyRequest, framed: flag 0, length 0.
    let frame = [0u8, 0, 0, 0, 0];
    let path = "/cityevents.api.v1.RegistrationsService/GetTicketKey";
    let binary = http(
        mesh.bff,
        "POST",
        path,
        &[
            ("content-type", "application/grpc-web+proto"),
            ("x-grpc-web", "1"),
            ("origin", "https://app.example.org"),
        ],
        &frame,
    )
    .await;
    assert_eq!(binary.status, 200);
    assert_eq!(
        binary.header("content-type"),
        Some("application/grpc-web+proto")
    );
    assert!(
        binary
            .header("access-control-expose-headers")
            .unwrap()
            .contains("x-cityevents-error")
    );
    assert!(
        binary.body.contains("grpc-status:0"),
        "trailers in the body: {:?}",
        binary.body
    );

    let b64 = base64::engine::general_purpose::STANDARD.encode(frame);
    let text = http(
        mesh.bff,
        "POST",
        path,
        &[
            ("content-type", "application/grpc-web-text"),
            ("accept", "application/grpc-web-text"),
            ("x-grpc-web", "1"),
        ],
        b64.as_bytes(),
    )
    .await;
    assert_eq!(text.status, 200);
    // Each message is encoded on its own: a padded group ends a piece.
    let (mut decoded, mut start) = (Vec::new(), 0);
    let body = text.body.trim().as_bytes();
    for end in (4..=body.len()).step_by(4) {
        if body[end - 1] == b'=' || end == body.len() {
            decoded.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(&body[start..end])
                    .unwrap(),
            );
            start = end;
        }
    }
    assert!(
        String::from_utf8_lossy(&decoded).contains("Ed25519"),
        "{:?} {:?}",
        text.headers,
        text.body
    );
}
