//! Transport-level refusals in the error table's terms. tonic answers a
//! message over the size limit with OUT_OF_RANGE and its own text, a code
//! no CityEvents handler returns (see `error.rs`): rewritten here to
//! RESOURCE_EXHAUSTED, reason `MESSAGE_TOO_LARGE`, with a message a person
//! can act on. The rewrite applies to trailers-only answers, which is how
//! tonic refuses a request it could not decode.

use http::{HeaderValue, Response};

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
}
