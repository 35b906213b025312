//! REST/JSON and server-sent events, transcoded from the protos: a request
//! is matched against the `google.api.http` rules ([`routes`]), becomes the
//! gRPC request message ([`request`]), and is dispatched in-process into the
//! same gRPC services native and gRPC-web callers reach. Answers are proto3
//! JSON; errors are `{code, reason, message, field_violations, retry_after}`
//! with the status of the shared error table ([`errors`]).

pub mod errors;
pub mod openapi;
pub mod request;
pub mod routes;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body as AxumBody;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::service::Routes;
use tower::ServiceExt;

use crate::http_metrics::HttpRoute;
use crate::media::MediaHttp;
use errors::{error_response, status_of};
use routes::{Found, Route, Table};

/// Inbound headers passed on to the gRPC handlers.
const PASSED_ON: &[header::HeaderName] = &[header::AUTHORIZATION, header::USER_AGENT];
const PASSED_ON_CUSTOM: &[&str] = &[
    "idempotency-key",
    "x-forwarded-for",
    "traceparent",
    "tracestate",
];

/// The REST side of the BFF.
#[derive(Clone)]
pub struct Rest {
    inner: Arc<Inner>,
}

struct Inner {
    table: Table,
    grpc: Routes,
    max_body: usize,
    heartbeat: Duration,
    openapi: Bytes,
    media: MediaHttp,
}

impl Rest {
    /// REST over `grpc` (the gRPC services) along `table`'s routes.
    pub fn new(
        table: Table,
        grpc: Routes,
        max_body: usize,
        heartbeat: Duration,
        media: MediaHttp,
    ) -> Self {
        let openapi = Bytes::from(openapi::document(&table).to_string());
        Self {
            inner: Arc::new(Inner {
                table,
                grpc,
                max_body,
                heartbeat,
                openapi,
                media,
            }),
        }
    }

    /// Answers one HTTP request that no gRPC route took.
    pub async fn handle(self, req: Request<AxumBody>) -> Response<AxumBody> {
        let inner = &self.inner;
        let grpc_like = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        if grpc_like {
            // A gRPC call to a service this BFF does not serve.
            return tonic::Status::unimplemented("no such service or method here")
                .into_http::<AxumBody>();
        }
        if let Some(template) = MediaHttp::takes(&req) {
            let res = inner.media.handle(req).await;
            return routed(res, template);
        }
        if req.method() == Method::GET && req.uri().path() == "/openapi.json" {
            let res = json(StatusCode::OK, inner.openapi.clone());
            return routed(res, "/openapi.json");
        }
        let path = req.uri().path().to_owned();
        match inner.table.find(req.method(), &path) {
            Found::Route(route, vars) => {
                let route = route.clone();
                let template = route.template.clone();
                let res = inner.call(route, vars, req).await;
                routed(res, &template)
            }
            Found::WrongMethod(allowed) => {
                let mut res = error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "METHOD_NOT_ALLOWED",
                    &format!("{path} answers {}", join(&allowed)),
                    None,
                );
                if let Ok(v) = HeaderValue::from_str(&join(&allowed)) {
                    res.headers_mut().insert(header::ALLOW, v);
                }
                res
            }
            Found::Nothing => error_response(
                StatusCode::NOT_FOUND,
                "NO_SUCH_ROUTE",
                "no such API path; see /openapi.json",
                None,
            ),
        }
    }
}

/// Names what answered by its route template, for the HTTP metrics (never
/// the path, which carries ids).
fn routed(mut res: Response<AxumBody>, template: &str) -> Response<AxumBody> {
    res.extensions_mut().insert(HttpRoute(template.to_owned()));
    res
}

impl Inner {
    async fn call(
        &self,
        route: Route,
        vars: Vec<(String, String)>,
        req: Request<AxumBody>,
    ) -> Response<AxumBody> {
        let (parts, body) = req.into_parts();
        let bad = |message: &str| {
            error_response(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, None)
        };
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "MESSAGE_TOO_LARGE",
                    &format!("the body is over the limit of {} bytes", self.max_body),
                    None,
                );
            }
            Err(_) => return bad("the body could not be read"),
        };
        // A form body on a route that takes none is dropped: one-click
        // unsubscribe (RFC 8058) posts `List-Unsubscribe=One-Click`.
        let body = if matches!(route.body, routes::BodyRule::None) && is_form(&parts.headers) {
            Bytes::new()
        } else {
            body
        };
        if !body.is_empty() && !is_json(&parts.headers) {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "send the body as `content-type: application/json`",
                None,
            );
        }
        let msg = match request::message(&route, &body, &vars, parts.uri.query()) {
            Ok(m) => m,
            Err(request::BadRequest(why)) => return bad(&why),
        };
        let grpc_req = grpc_request(&route, &parts, &msg);
        let Ok(res) = self.grpc.clone().oneshot(grpc_req).await;
        let output = route.method.output();
        if route.method.is_server_streaming() {
            self.events(res, output)
        } else {
            unary(res, output).await
        }
    }

    /// A server stream as server-sent events: one `data:` line of JSON per
    /// message, heartbeat comments while idle, and an `error` event if the
    /// stream ends with one.
    fn events(
        &self,
        res: Response<tonic::body::Body>,
        output: MessageDescriptor,
    ) -> Response<AxumBody> {
        if let Some(status) = status_of(res.headers()).filter(|s| s.code() != tonic::Code::Ok) {
            return errors::from_status(&status);
        }
        let heartbeat = self.heartbeat;
        let state = (res.into_body(), BytesMut::new(), false);
        let stream = futures::stream::unfold(state, move |(mut body, mut buf, done)| {
            let output = output.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    if let Some(frame) = next_message(&mut buf) {
                        let event = match DynamicMessage::decode(output.clone(), frame) {
                            Ok(m) => format!("event: update\ndata: {}\n\n", to_json(&m)),
                            Err(_) => "event: error\ndata: {\"code\":\"INTERNAL\"}\n\n".to_owned(),
                        };
                        return Some((
                            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(event))),
                            (body, buf, false),
                        ));
                    }
                    let next = tokio::time::timeout(heartbeat, body.frame()).await;
                    match next {
                        Err(_) => {
                            let beat =
                                http_body::Frame::data(Bytes::from_static(b": heartbeat\n\n"));
                            return Some((Ok(beat), (body, buf, false)));
                        }
                        Ok(Some(Ok(frame))) => match frame.into_data() {
                            Ok(data) => buf.extend_from_slice(&data),
                            Err(frame) => {
                                let trailers = frame.into_trailers().unwrap_or_default();
                                let end = match status_of(&trailers) {
                                    Some(s) if s.code() != tonic::Code::Ok => {
                                        format!("event: error\ndata: {}\n\n", errors::body_of(&s))
                                    }
                                    _ => "event: end\ndata: {}\n\n".to_owned(),
                                };
                                return Some((
                                    Ok(http_body::Frame::data(Bytes::from(end))),
                                    (body, buf, true),
                                ));
                            }
                        },
                        Ok(_) => return None,
                    }
                }
            }
        });
        let mut out = Response::new(AxumBody::new(StreamBody::new(stream)));
        let h = out.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Tells nginx-style proxies not to buffer the stream.
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        out
    }
}

/// A unary answer as JSON, or its error.
async fn unary(res: Response<tonic::body::Body>, output: MessageDescriptor) -> Response<AxumBody> {
    let (parts, body) = res.into_parts();
    if let Some(status) = status_of(&parts.headers).filter(|s| s.code() != tonic::Code::Ok) {
        return errors::from_status(&status);
    }
    let Ok(collected) = body.collect().await else {
        return errors::from_status(&tonic::Status::unavailable("the answer was cut off"));
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    if let Some(status) = status_of(&trailers).filter(|s| s.code() != tonic::Code::Ok) {
        return errors::from_status(&status);
    }
    let mut buf = BytesMut::from(collected.to_bytes().as_ref());
    let Some(frame) = next_message(&mut buf) else {
        return errors::from_status(&tonic::Status::internal("no answer"));
    };
    if output.full_name() == "google.api.HttpBody" {
        return raw(frame);
    }
    match DynamicMessage::decode(output, frame) {
        Ok(m) => json(StatusCode::OK, Bytes::from(to_json(&m))),
        Err(_) => errors::from_status(&tonic::Status::internal("undecodable answer")),
    }
}

/// The next whole gRPC message in `buf`, if one has arrived.
fn next_message(buf: &mut BytesMut) -> Option<Bytes> {
    if buf.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if buf.len() < 5 + len {
        return None;
    }
    buf.advance(5);
    Some(buf.split_to(len).freeze())
}

fn grpc_request(
    route: &Route,
    parts: &http::request::Parts,
    msg: &DynamicMessage,
) -> Request<tonic::body::Body> {
    let len = msg.encoded_len();
    let mut framed = Vec::with_capacity(5 + len);
    framed.push(0);
    framed.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    msg.encode(&mut framed).ok();
    let mut req = Request::new(tonic::body::Body::new(Full::new(Bytes::from(framed))));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = route.grpc_path.parse().unwrap_or_default();
    // The peer address and anything else the transport recorded.
    *req.extensions_mut() = parts.extensions.clone();
    let h = req.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(header::TE, HeaderValue::from_static("trailers"));
    for name in PASSED_ON {
        if let Some(v) = parts.headers.get(name) {
            h.insert(name.clone(), v.clone());
        }
    }
    for name in PASSED_ON_CUSTOM {
        if let Some(v) = parts.headers.get(*name) {
            h.insert(*name, v.clone());
        }
    }
    req
}

/// Proto3 JSON with every field present (zeros and empty lists included),
/// so clients see one shape; 64-bit integers as strings, as the mapping says.
pub(crate) fn to_json(msg: &DynamicMessage) -> String {
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    match msg.serialize_with_options(&mut ser, &options) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => "{}".to_owned(),
    }
}

/// A `google.api.HttpBody` answer as itself: its bytes with its content type.
fn raw(frame: Bytes) -> Response<AxumBody> {
    let Ok(body) = cityevents_proto::google::api::HttpBody::decode(frame) else {
        return errors::from_status(&tonic::Status::internal("undecodable answer"));
    };
    let mut res = Response::new(AxumBody::from(body.data));
    let content_type = HeaderValue::from_str(&body.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    res.headers_mut().insert(header::CONTENT_TYPE, content_type);
    res
}

fn json(status: StatusCode, body: Bytes) -> Response<AxumBody> {
    let mut res = Response::new(AxumBody::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
        })
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn join(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
