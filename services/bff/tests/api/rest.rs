//! REST/JSON and server-sent events, transcoded from the protos.

use serde_json::json;

use crate::helpers::*;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn rest_signs_up_creates_publishes_and_joins_with_proto3_json() {
    let mesh = mesh().await;
    let email = unique_email();
    let body =
        json!({"email": email, "password": "correct horse battery staple", "displayName": "Ada"});
    let up = http(
        mesh.bff,
        "POST",
        "/v1/account:signUp",
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(up.status, 200, "{}", up.body);
    let up = up.json();
    assert_eq!(up["user"]["email"], email);
    assert_eq!(up["user"]["emailVerified"], false);
    let organizer = mesh.verified().await;

    let draft = json!({
        "title": "Jazz on the river",
        "startsAt": "2030-06-01T19:00:00Z",
        "endsAt": "2030-06-01T22:00:00Z",
        "timeZone": "Europe/Paris",
        "onlineUrl": "https://example.org/live",
        "capacity": 10,
        "visibility": "VISIBILITY_PUBLIC"
    });
    let auth = bearer(&organizer.token);
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    let created = http(
        mesh.bff,
        "POST",
        "/v1/events",
        &headers,
        draft.to_string().as_bytes(),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let event = created.json()["event"].clone();
    let id = event["id"].as_str().unwrap().to_owned();
    assert_eq!(event["version"], "1", "int64 is a string in proto3 JSON");
    let publish = json!({"expectedVersion": event["version"]});
    let published = http(
        mesh.bff,
        "POST",
        &format!("/v1/events/{id}:publish"),
        &headers,
        publish.to_string().as_bytes(),
    )
    .await;
    assert_eq!(published.status, 200, "{}", published.body);
    assert_eq!(
        published.json()["event"]["status"],
        "EVENT_STATUS_PUBLISHED"
    );

    let page = http(mesh.bff, "GET", &format!("/v1/events/{id}"), &[], b"").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.json()["counts"]["confirmed"],
        0,
        "zeros are written out"
    );

    let guest = mesh.sign_up().await;
    let g = bearer(&guest.token);
    let join_headers = [
        ("content-type", "application/json"),
        ("authorization", g.as_str()),
        ("idempotency-key", "rest-1"),
    ];
    let joined = http(
        mesh.bff,
        "POST",
        &format!("/v1/events/{id}/registration"),
        &join_headers,
        b"{}",
    )
    .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let again = http(
        mesh.bff,
        "POST",
        &format!("/v1/events/{id}/registration"),
        &join_headers,
        b"{}",
    )
    .await;
    assert_eq!(
        joined.json()["registration"]["id"],
        again.json()["registration"]["id"]
    );
    assert_eq!(
        joined.json()["registration"]["status"],
        "REGISTRATION_STATUS_CONFIRMED"
    );

    let attendees = http(
        mesh.bff,
        "GET",
        &format!("/v1/events/{id}/attendees?pageSize=10"),
        &[("authorization", auth.as_str())],
        b"",
    )
    .await;
    assert_eq!(attendees.status, 200, "{}", attendees.body);
    assert_eq!(
        attendees.json()["registrations"].as_array().unwrap().len(),
        1
    );

    let left = http(
        mesh.bff,
        "DELETE",
        &format!("/v1/events/{id}/registration"),
        &[("authorization", g.as_str())],
        b"",
    )
    .await;
    assert_eq!(
        left.json()["registration"]["status"],
        "REGISTRATION_STATUS_CANCELLED"
    );
}

#[tokio::test]
async fn bad_rest_requests_get_the_documented_error_body_and_status() {
    let mesh = mesh().await;
    let json_ct = [("content-type", "application/json")];
    // (method, path, headers, body, status, reason)
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/v1/account:signIn",
            json_ct.to_vec(),
            b"{not json".to_vec(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "POST",
            "/v1/account:signIn",
            json_ct.to_vec(),
            br#"{"email":"a@b.c","admin":true}"#.to_vec(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "POST",
            "/v1/account:signIn",
            vec![("content-type", "text/plain")],
            b"hello".to_vec(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "POST",
            "/v1/account:signIn",
            json_ct.to_vec(),
            vec![b' '; 300 * 1024],
            413,
            "MESSAGE_TOO_LARGE",
        ),
        ("GET", "/v1/nowhere", vec![], vec![], 404, "NO_SUCH_ROUTE"),
        (
            "PATCH",
            "/v1/account",
            vec![],
            vec![],
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            "GET",
            "/v1/account",
            vec![("authorization", "Bearer junk")],
            vec![],
            401,
            "UNAUTHENTICATED",
        ),
        ("GET", "/v1/account", vec![], vec![], 401, "UNAUTHENTICATED"),
        (
            "GET",
            "/v1/events/not-a-uuid",
            vec![],
            vec![],
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "GET",
            "/v1/events/0190a3c2-0000-7000-8000-000000000000",
            vec![],
            vec![],
            404,
            "EVENT_NOT_FOUND",
        ),
        (
            "GET",
            "/v1/events/x/attendees?pageSize=lots",
            vec![("authorization", "Bearer junk")],
            vec![],
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "GET",
            "/v1/events/x/attendees?nosuch=1",
            vec![],
            vec![],
            400,
            "INVALID_ARGUMENT",
        ),
    ];
    for (method, path, headers, body, status, reason) in cases {
        let res = http(mesh.bff, method, path, &headers, &body).await;
        assert_eq!(res.status, status, "{method} {path}: {}", res.body);
        assert_eq!(
            res.header("content-type"),
            Some("application/json"),
            "{method} {path}"
        );
        let body = res.json();
        assert_eq!(body["reason"], reason, "{method} {path}: {body}");
        for key in ["code", "message", "field_violations"] {
            assert!(
                body.get(key).is_some(),
                "{method} {path}: no {key} in {body}"
            );
        }
        assert!(
            body["message"].as_str().unwrap().len() < 400,
            "no echo of the input: {body}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_served() {
    let mesh = mesh().await;
    let doc = http(mesh.bff, "GET", "/openapi.json", &[], b"")
        .await
        .json();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    for (template, ops) in paths {
        for (method, _) in ops.as_object().unwrap() {
            let path = template
                .replace("{event_id}", "e")
                .replace("{user_id}", "u");
            let res = http(
                mesh.bff,
                &method.to_ascii_uppercase(),
                &path,
                &[("content-type", "application/json")],
                b"",
            )
            .await;
            if res.header("content-type") != Some("application/json") {
                continue; // served: an answer of its own kind (a calendar)
            }
            let reason = res.json()["reason"].clone();
            assert!(
                reason != "NO_SUCH_ROUTE" && reason != "METHOD_NOT_ALLOWED",
                "{method} {template} is documented but not served: {}",
                res.body
            );
        }
    }
}

#[tokio::test]
async fn server_sent_events_start_with_the_current_state_and_follow_joins() {
    let mesh = mesh().await;
    let organizer = mesh.verified().await;
    let event = mesh.published(&organizer, 3, 0).await;
    let guest = mesh.sign_up().await;
    let path = format!("/v1/events/{}/live", event.id);
    let id = event.id.clone();
    let events = sse_until(
        mesh.bff,
        &path,
        None,
        |seen| seen.iter().any(|e| e["counts"]["confirmed"] == 1),
        async || {
            let g = format!("Bearer {}", guest.token);
            let join = format!("/v1/events/{id}/registration");
            let r = http(
                mesh.bff,
                "POST",
                &join,
                &[("content-type", "application/json"), ("authorization", &g)],
                b"{}",
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.body);
        },
    )
    .await;
    assert_eq!(events[0]["event"]["id"], event.id.as_str(), "{events:?}");
    assert_eq!(events[1]["counts"]["confirmed"], 0, "{events:?}");
    assert!(
        events.iter().any(|e| e["counts"]["confirmed"] == 1),
        "{events:?}"
    );

    let missing = http(
        mesh.bff,
        "GET",
        "/v1/events/0190a3c2-0000-7000-8000-000000000000/live",
        &[],
        b"",
    )
    .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
}

#[tokio::test]
async fn http_requests_are_measured_by_route_template_never_by_path() {
    let mesh = mesh().await;
    let id = uuid::Uuid::now_v7().to_string();
    let res = http(mesh.bff, "GET", &format!("/v1/events/{id}"), &[], b"").await;
    assert_eq!(res.status, 404);
    let made_up = format!("/v1/nothing/{id}");
    assert_eq!(http(mesh.bff, "GET", &made_up, &[], b"").await.status, 404);
    let metrics = http(mesh.bff_admin, "GET", "/metrics", &[], b"").await.body;
    let measured = |route: &str, status: &str| {
        metrics.lines().any(|l| {
            l.starts_with("http_server_request_duration_seconds_count")
                && l.contains(&format!("http_route=\"{route}\""))
                && l.contains(&format!("http_response_status_code=\"{status}\""))
                && l.contains("http_request_method=\"GET\"")
        })
    };
    assert!(measured("/v1/events/{event_id}", "404"), "{metrics}");
    assert!(measured("unmatched", "404"), "{metrics}");
    assert!(!metrics.contains(&id), "no path or id in any label");
}
