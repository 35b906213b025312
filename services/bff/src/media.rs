//! Images over HTTP: `POST /v1/media` takes a browser's
//! `multipart/form-data` upload (the part named `file`) and streams it on
//! to the media service as it arrives, never holding the whole file;
//! `GET /media/<image>/<variant>.<webp|jpg>?exp&kid&sig` serves what a
//! signed link names, with `ETag`, `Cache-Control`, `If-None-Match` (304)
//! and one byte range (206, 416). A bad or expired signature is 403.

use std::sync::Arc;

use axum::body::Body as AxumBody;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tokio::sync::mpsc;
use tonic::metadata::MetadataMap;

use cityevents_proto::cityevents::media::v1::{
    self as pb, media_service_client::MediaServiceClient, read_image_response::Part as Out,
    upload_request::Part,
};
use cityevents_runtime::grpc::client::GrpcChannel;

use crate::edge::Edge;
use crate::rest::errors::{error_response, from_status};

/// The HTTP face of the media service.
#[derive(Clone)]
pub struct MediaHttp {
    /// Uploads pass the edge as every call does (a signed-in caller, rate
    /// limits); links need no one signed in — their signature admits them.
    pub edge: Arc<Edge>,
    pub client: MediaServiceClient<GrpcChannel>,
    pub pool: DescriptorPool,
}

/// Largest piece of an upload sent on in one message.
const CHUNK: usize = 64 * 1024;

impl MediaHttp {
    /// The route template if this request is one of ours.
    pub fn takes(req: &Request<AxumBody>) -> Option<&'static str> {
        let path = req.uri().path();
        if path.starts_with("/media/") && matches!(*req.method(), Method::GET | Method::HEAD) {
            Some("/media/{image}/{variant}")
        } else if path == "/v1/media" && req.method() == Method::POST {
            Some("/v1/media")
        } else {
            None
        }
    }

    pub async fn handle(&self, req: Request<AxumBody>) -> Response<AxumBody> {
        if req.method() == Method::POST {
            self.upload(req).await
        } else {
            self.serve(req).await
        }
    }

    async fn upload(&self, req: Request<AxumBody>) -> Response<AxumBody> {
        let (parts, body) = req.into_parts();
        let probe = tonic::Request::from_parts(
            MetadataMap::from_headers(parts.headers.clone()),
            parts.extensions.clone(),
            (),
        );
        if let Err(e) = self.edge.signed_in(&probe).await {
            return from_status(&e.into());
        }
        let req = Request::from_parts(parts, body);
        let bad = |m: &str| error_response(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", m, None);
        let Some(boundary) = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| multer::parse_boundary(ct).ok())
        else {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "INVALID_ARGUMENT",
                "send multipart/form-data with the image in a part named `file`",
                None,
            );
        };
        let authorization = req.headers().get(header::AUTHORIZATION).cloned();
        let mut form = multer::Multipart::new(req.into_body().into_data_stream(), boundary);
        let mut field = loop {
            match form.next_field().await {
                Ok(Some(f)) if f.name() == Some("file") => break f,
                Ok(Some(_)) => {}
                Ok(None) => return bad("the form has no part named `file`"),
                Err(_) => return bad("the multipart body is malformed"),
            }
        };
        let meta = pb::UploadMetadata {
            filename: field
                .file_name()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect(),
            content_type: field
                .content_type()
                .map(|m| m.essence_str().to_owned())
                .filter(|m| m.starts_with("image/"))
                .unwrap_or_default(),
            size_bytes: 0,
        };
        // Dropped after `call`: a broken body cancels the upload rather
        // than ending it early (which would look like a whole file).
        let (tx, rx) = mpsc::channel::<pb::UploadRequest>(4);
        let first = pb::UploadRequest {
            part: Some(Part::Metadata(meta)),
        };
        let parts = futures::stream::once(async { first })
            .chain(futures::stream::unfold(rx, |mut rx| async {
                rx.recv().await.map(|m| (m, rx))
            }));
        let mut call_req = tonic::Request::new(parts);
        if let Some(a) = authorization.and_then(|a| a.to_str().ok().map(str::to_owned))
            && let Ok(v) = a.parse()
        {
            call_req.metadata_mut().insert("authorization", v);
        }
        let mut client = self.client.clone();
        let mut call = Box::pin(client.upload(call_req));
        loop {
            tokio::select! {
                answer = &mut call => return self.answered(answer),
                chunk = field.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        for piece in bytes.chunks(CHUNK) {
                            let msg = pb::UploadRequest { part: Some(Part::Chunk(piece.to_vec())) };
                            tokio::select! {
                                answer = &mut call => return self.answered(answer),
                                sent = tx.send(msg) => if sent.is_err() {
                                    return self.answered(call.await);
                                },
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return bad("the upload broke off; send it again"),
                },
            }
        }
        drop(tx);
        self.answered(call.await)
    }

    fn answered(
        &self,
        answer: Result<tonic::Response<pb::UploadResponse>, tonic::Status>,
    ) -> Response<AxumBody> {
        match answer {
            Ok(r) => {
                let image = r.into_inner().image.unwrap_or_default();
                let json = self
                    .pool
                    .get_message_by_name("cityevents.media.v1.Image")
                    .and_then(|d| DynamicMessage::decode(d, image.encode_to_vec().as_slice()).ok())
                    .map(|m| crate::rest::to_json(&m))
                    .unwrap_or_else(|| "{}".to_owned());
                let mut res = Response::new(AxumBody::from(json));
                *res.status_mut() = StatusCode::CREATED;
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                res
            }
            Err(s) => from_status(&s),
        }
    }

    async fn serve(&self, req: Request<AxumBody>) -> Response<AxumBody> {
        let headers = req.headers();
        let range = match headers
            .get(header::RANGE)
            .map(|v| v.to_str().map(parse_range))
        {
            None => None,
            Some(Ok(Some(r))) => Some(r),
            // Several ranges or a form not understood: the whole image (RFC 9110 allows it).
            Some(_) => None,
        };
        let if_none_match = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let head_only = req.method() == Method::HEAD;
        let msg = pb::ReadImageRequest {
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or_default().to_owned(),
            range,
            if_none_match,
        };
        let mut stream = match self.client.clone().read_image(msg).await {
            Ok(r) => r.into_inner(),
            Err(s) => return from_status(&s),
        };
        let head = match stream.next().await {
            Some(Ok(pb::ReadImageResponse {
                part: Some(Out::Head(h)),
            })) => h,
            Some(Err(s)) => return from_status(&s),
            _ => return from_status(&tonic::Status::unavailable("the media service broke off")),
        };
        let mut res = Response::new(AxumBody::empty());
        set_head(res.headers_mut(), &head);
        if head.not_modified {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return res;
        }
        if head.unsatisfiable {
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", head.total_size)) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return res;
        }
        if head.partial {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            let last = head.first + head.length - 1;
            let v = format!("bytes {}-{last}/{}", head.first, head.total_size);
            if let Ok(v) = HeaderValue::from_str(&v) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(head.length));
        if !head_only {
            let body = stream.filter_map(|m| async move {
                match m {
                    Ok(pb::ReadImageResponse {
                        part: Some(Out::Chunk(c)),
                    }) => Some(Ok(Bytes::from(c))),
                    Ok(_) => None,
                    Err(s) => Some(Err(std::io::Error::other(s.message().to_owned()))),
                }
            });
            *res.body_mut() = AxumBody::from_stream(body);
        }
        res
    }
}

fn set_head(h: &mut HeaderMap, head: &pb::ImageHead) {
    if let Ok(v) = HeaderValue::from_str(&head.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&head.etag) {
        h.insert(header::ETAG, v);
    }
    let cache = format!("public, max-age={}, immutable", head.max_age_secs);
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// One `bytes=` range; `None` for anything else (several ranges included).
fn parse_range(v: &str) -> Option<pb::ByteRange> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix: i64 = last.parse().ok()?;
        return (suffix > 0).then_some(pb::ByteRange {
            first: 0,
            last: 0,
            suffix,
        });
    }
    Some(pb::ByteRange {
        first: first.parse().ok()?,
        last: if last.is_empty() {
            -1
        } else {
            last.parse().ok()?
        },
        suffix: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: i64, last: i64, suffix: i64) -> Option<pb::ByteRange> {
        Some(pb::ByteRange {
            first,
            last,
            suffix,
        })
    }

    #[test]
    fn ranges_are_read_as_http_writes_them() {
        assert_eq!(parse_range("bytes=0-99"), r(0, 99, 0));
        assert_eq!(parse_range("bytes=100-"), r(100, -1, 0));
        assert_eq!(parse_range("bytes=-500"), r(0, 0, 500));
        assert_eq!(parse_range("bytes=0-1,5-9"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=x-1"), None);
    }
}
