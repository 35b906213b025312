//! Transport-level refusals in the error table's terms.
//!
//! - tonic answers a message over the size limit with OUT_OF_RANGE and its
//!   own text, a code no CityEvents handler returns (see `error.rs`):
//!   rewritten here to RESOURCE_EXHAUSTED, reason `MESSAGE_TOO_LARGE`, with a
//!   message a person can act on. The rewrite applies to trailers-only
//!   answers, which is how tonic refuses a request it could not decode.
//! - Request headers over `server.max_header_bytes` are refused for that
//!   request alone ([`HeaderLimitLayer`]): RESOURCE_EXHAUSTED
//!   `HEADERS_TOO_LARGE` on gRPC and gRPC-web, 431 with the error body on
//!   anything else. HTTP/2 itself only drops a connection whose header
//!   block passes the far larger `server.http2_max_header_list_size`.

use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode};
use tonic::body::Body;

use crate::error::REASON_METADATA;

/// `grpc-status` of OUT_OF_RANGE and of RESOURCE_EXHAUSTED.
const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

/// Rewrites a transport's OUT_OF_RANGE refusal (see the module docs).
pub fn rewrite<B>(mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    if headers
        .get("grpc-status")
        .is_some_and(|s| s == OUT_OF_RANGE)
    {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
        headers.insert(
            "grpc-message",
            HeaderValue::from_static(
                "the%20request%20message%20is%20larger%20than%20this%20service%20accepts",
            ),
        );
        headers.insert(
            REASON_METADATA,
            HeaderValue::from_static("MESSAGE_TOO_LARGE"),
        );
    }
    response
}

/// Refuses requests whose headers total more than `max` bytes (names,
/// values and HPACK's 32 bytes of overhead each, as HTTP/2 counts them).
#[derive(Clone, Copy, Debug)]
pub struct HeaderLimitLayer {
    pub max: usize,
}

impl<S> tower::Layer<S> for HeaderLimitLayer {
    type Service = HeaderLimit<S>;
    fn layer(&self, inner: S) -> HeaderLimit<S> {
        HeaderLimit {
            inner,
            max: self.max,
        }
    }
}

/// See [`HeaderLimitLayer`].
#[derive(Clone, Debug)]
pub struct HeaderLimit<S> {
    inner: S,
    max: usize,
}

impl<S, B> tower::Service<Request<B>> for HeaderLimit<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = futures::future::Either<
        futures::future::Ready<Result<Response<Body>, S::Error>>,
        S::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if header_bytes(&req) <= self.max {
            return futures::future::Either::Right(self.inner.call(req));
        }
        futures::future::Either::Left(futures::future::ready(Ok(headers_too_large(&req))))
    }
}

fn header_bytes<B>(req: &Request<B>) -> usize {
    req.headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 32)
        .sum()
}

/// A refusal made before any handler runs, in the error table's terms.
#[derive(Clone, Copy, Debug)]
pub struct Refusal {
    /// The stable reason (`x-cityevents-error`, `reason` on REST).
    pub reason: &'static str,
    /// A fixed message a person can act on (ASCII).
    pub message: &'static str,
    /// The HTTP status on REST; gRPC callers get RESOURCE_EXHAUSTED.
    pub http: StatusCode,
    /// Seconds after which a retry may succeed.
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// The refusal in the protocol of a request with `headers`: a
    /// trailers-only gRPC answer (gRPC-web reads it alike), or the REST
    /// error body; `body` makes the response body from text.
    pub fn respond<B>(&self, headers: &http::HeaderMap, body: impl Fn(String) -> B) -> Response<B> {
        let grpc = headers
            .get(http::header::CONTENT_TYPE)
            .filter(|v| v.as_bytes().starts_with(b"application/grpc"));
        let mut res = match grpc {
            Some(ct) => Response::builder()
                .header(http::header::CONTENT_TYPE, ct.clone())
                .header("grpc-status", RESOURCE_EXHAUSTED)
                .header("grpc-message", self.message.replace(' ', "%20"))
                .header(REASON_METADATA, self.reason)
                .body(body(String::new())),
            None => Response::builder()
                .status(self.http)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body(format!(
                    r#"{{"code":"RESOURCE_EXHAUSTED","reason":"{}","message":"{}","field_violations":[],"retry_after":{}}}"#,
                    self.reason,
                    self.message,
                    self.retry_after.map_or("null".to_owned(), |s| s.to_string()),
                ))),
        }
        .unwrap_or_else(|_| Response::new(body(String::new())));
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

const HEADERS_TOO_LARGE: Refusal = Refusal {
    reason: "HEADERS_TOO_LARGE",
    message: "the request headers are larger than this service accepts",
    http: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    retry_after: None,
};

/// The refusal in the caller's protocol.
fn headers_too_large<B>(req: &Request<B>) -> Response<Body> {
    HEADERS_TOO_LARGE.respond(req.headers(), |text| {
        Body::new(http_body_util::Full::new(bytes::Bytes::from(text)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_out_of_range_refusal_becomes_resource_exhausted_with_a_reason() {
        let response = Response::builder()
            .header("grpc-status", "11")
            .header(
                "grpc-message",
                "Error, decoded message length too large: found 5000000 bytes",
            )
            .body(())
            .unwrap();
        let r = rewrite(response);
        assert_eq!(r.headers()["grpc-status"], "8");
        assert_eq!(r.headers()[REASON_METADATA], "MESSAGE_TOO_LARGE");
        assert!(
            !r.headers()["grpc-message"]
                .to_str()
                .unwrap()
                .contains("decoded")
        );
        let ok = rewrite(
            Response::builder()
                .header("grpc-status", "0")
                .body(())
                .unwrap(),
        );
        assert_eq!(ok.headers()["grpc-status"], "0");
    }

    fn with_header(content_type: &str, bytes: usize) -> Request<()> {
        Request::builder()
            .header("content-type", content_type)
            .header("x-big", "a".repeat(bytes))
            .body(())
            .unwrap()
    }

    #[test]
    fn oversized_headers_are_refused_in_the_callers_protocol() {
        let grpc = headers_too_large(&with_header("application/grpc-web+proto", 100_000));
        assert_eq!(
            (
                grpc.status(),
                &grpc.headers()["grpc-status"],
                &grpc.headers()[REASON_METADATA]
            ),
            (
                StatusCode::OK,
                &HeaderValue::from_static("8"),
                &HeaderValue::from_static("HEADERS_TOO_LARGE")
            )
        );
        let rest = headers_too_large(&with_header("application/json", 100_000));
        assert_eq!(rest.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(header_bytes(&with_header("application/json", 100_000)) > 100_000);
    }
}
