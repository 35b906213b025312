//! The REST error body, from the same table as the gRPC answers:
//! `{code, reason, message, field_violations, retry_after}` with the mapped
//! HTTP status and a `retry-after` header when the service sent one.

use axum::body::Body as AxumBody;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::json;

use cityevents_runtime::ErrorCode;
use cityevents_runtime::error::{REASON_METADATA, RETRY_AFTER_METADATA};

/// The status in a response's headers or trailers, if any.
pub fn status_of(map: &HeaderMap) -> Option<tonic::Status> {
    tonic::Status::from_header_map(map)
}

/// The REST answer for a gRPC error.
pub fn from_status(status: &tonic::Status) -> Response<AxumBody> {
    let http = ErrorCode::http_of(status.code());
    let retry = retry_after(status);
    let mut res = Response::new(AxumBody::from(body_of(status)));
    *res.status_mut() = http;
    set_headers(res.headers_mut(), retry);
    res
}

/// The JSON error body of a gRPC error.
pub fn body_of(status: &tonic::Status) -> String {
    let code = code_name(status.code());
    let reason = status
        .metadata()
        .get(REASON_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(code);
    body(code, reason, status.message(), retry_after(status))
}

/// An error the edge answers itself.
pub fn error_response(
    http: StatusCode,
    reason: &str,
    message: &str,
    retry: Option<u64>,
) -> Response<AxumBody> {
    let code = match http {
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::PAYLOAD_TOO_LARGE => "RESOURCE_EXHAUSTED",
        StatusCode::TOO_MANY_REQUESTS => "RESOURCE_EXHAUSTED",
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::UNSUPPORTED_MEDIA_TYPE => "INVALID_ARGUMENT",
        _ if http.is_server_error() => "INTERNAL",
        _ => "INVALID_ARGUMENT",
    };
    let mut res = Response::new(AxumBody::from(body(code, reason, message, retry)));
    *res.status_mut() = http;
    set_headers(res.headers_mut(), retry);
    res
}

fn body(code: &str, reason: &str, message: &str, retry: Option<u64>) -> String {
    json!({
        "code": code,
        "reason": reason,
        "message": message,
        "field_violations": field_violations(code, message),
        "retry_after": retry,
    })
    .to_string()
}

fn set_headers(h: &mut HeaderMap, retry: Option<u64>) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = retry {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

fn retry_after(status: &tonic::Status) -> Option<u64> {
    status
        .metadata()
        .get(RETRY_AFTER_METADATA)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// `"event_id: no such event"` names its field: `[{field, description}]`.
fn field_violations(code: &str, message: &str) -> serde_json::Value {
    let named = message.split_once(": ").filter(|(field, _)| {
        !field.is_empty()
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.[]".contains(&b))
    });
    match (code, named) {
        ("INVALID_ARGUMENT", Some((field, description))) => {
            json!([{ "field": field, "description": description }])
        }
        _ => json!([]),
    }
}

/// The canonical name of a gRPC code (`NOT_FOUND`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_naming_its_field_lists_it_as_a_violation() {
        let v = field_violations("INVALID_ARGUMENT", "draft.title: must not be empty");
        assert_eq!(v[0]["field"], "draft.title");
        assert_eq!(
            field_violations("NOT_FOUND", "event_id: no such event"),
            json!([])
        );
        assert_eq!(
            field_violations("INVALID_ARGUMENT", "the body: is bad"),
            json!([])
        );
    }

    #[test]
    fn a_service_error_keeps_its_reason_and_retry_after_on_rest() {
        let status: tonic::Status =
            cityevents_runtime::Error::new(ErrorCode::ResourceExhausted, "slow down")
                .with_reason("OVERLOADED")
                .with_retry_after(std::time::Duration::from_secs(2))
                .into();
        let res = from_status(&status);
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
        let body: serde_json::Value = serde_json::from_str(&body_of(&status)).unwrap();
        assert_eq!(body["reason"], "OVERLOADED");
        assert_eq!(body["code"], "RESOURCE_EXHAUSTED");
        assert_eq!(body["retry_after"], 2);
    }
}
