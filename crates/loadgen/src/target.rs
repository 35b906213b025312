//! What one request is: a REST call (method, URL, JSON body, headers) or a
//! unary gRPC call (method path and a JSON body turned into the request
//! message through the descriptor set), each answering a status label.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::template::Template;

/// A request to repeat.
pub enum Target {
    Rest {
        client: Box<Client<HttpConnector, Full<Bytes>>>,
        method: http::Method,
        url: Template,
        body: Option<Template>,
        headers: Vec<(http::HeaderName, Template)>,
    },
    Grpc {
        channels: Vec<Channel>,
        path: http::uri::PathAndQuery,
        input: MessageDescriptor,
        body: Template,
        headers: Vec<(http::HeaderName, Template)>,
    },
}

/// `name: value` header templates.
pub fn headers(
    raw: &[String],
    vars: &HashMap<String, crate::template::Var>,
) -> anyhow::Result<Vec<(http::HeaderName, Template)>> {
    raw.iter()
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("header {h:?}: expected `name: value`"))?;
            Ok((
                http::HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes())?,
                Template::parse(value.trim(), vars)?,
            ))
        })
        .collect()
}

impl Target {
    pub fn rest(
        method: &str,
        url: Template,
        body: Option<Template>,
        headers: Vec<(http::HeaderName, Template)>,
    ) -> anyhow::Result<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(4096)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self::Rest {
            client: Box::new(client),
            method: method.parse()?,
            url,
            body,
            headers,
        })
    }

    /// `method` is `package.Service/Method`; its input type is looked up in
    /// the CityEvents descriptor set.
    pub fn grpc(
        endpoint: &str,
        connections: usize,
        method: &str,
        body: Template,
        headers: Vec<(http::HeaderName, Template)>,
    ) -> anyhow::Result<Self> {
        let pool = DescriptorPool::decode(cityevents_proto::FILE_DESCRIPTOR_SET)?;
        let (service, name) = method
            .trim_start_matches('/')
            .split_once('/')
            .ok_or_else(|| {
                anyhow::anyhow!("--method {method:?}: expected package.Service/Method")
            })?;
        let input = pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == name))
            .ok_or_else(|| anyhow::anyhow!("no method {method} in the descriptor set"))?
            .input();
        let channels = (0..connections.max(1))
            .map(|_| {
                Ok(
                    tonic::transport::Endpoint::from_shared(endpoint.to_owned())?
                        .tcp_nodelay(true)
                        .connect_lazy(),
                )
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self::Grpc {
            channels,
            path: format!("/{service}/{name}").parse()?,
            input,
            body,
            headers,
        })
    }

    /// Sends request `i` with `token`; the answer's status label (`200`,
    /// `429`, `OK`, `ResourceExhausted`, `transport`, …).
    pub async fn fire(&self, i: u64, token: &str) -> String {
        match self {
            Self::Rest {
                client,
                method,
                url,
                body,
                headers,
            } => {
                let mut req = http::Request::builder()
                    .method(method.clone())
                    .uri(url.render(i, token));
                for (name, value) in headers {
                    req = req.header(name, value.render(i, token));
                }
                let body = body
                    .as_ref()
                    .map(|b| b.render(i, token))
                    .unwrap_or_default();
                if !body.is_empty() {
                    req = req.header(http::header::CONTENT_TYPE, "application/json");
                }
                let Ok(req) = req.body(Full::new(Bytes::from(body))) else {
                    return "bad-request".into();
                };
                match client.request(req).await {
                    Ok(res) => {
                        let status = res.status().as_u16().to_string();
                        // Read the body so the connection can be reused.
                        let _ = res.into_body().collect().await;
                        status
                    }
                    Err(_) => "transport".into(),
                }
            }
            Self::Grpc {
                channels,
                path,
                input,
                body,
                headers,
            } => {
                let json = body.render(i, token);
                let mut de = serde_json::Deserializer::from_str(&json);
                let Ok(msg) = DynamicMessage::deserialize(input.clone(), &mut de) else {
                    return "bad-request".into();
                };
                let mut req = tonic::Request::new(Bytes::from(prost::Message::encode_to_vec(&msg)));
                for (name, value) in headers {
                    if let (Ok(k), Ok(v)) = (
                        tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
                        value.render(i, token).parse(),
                    ) {
                        req.metadata_mut().insert(k, v);
                    }
                }
                let channel = channels[(i as usize) % channels.len()].clone();
                let mut grpc = tonic::client::Grpc::new(channel);
                if grpc.ready().await.is_err() {
                    return "transport".into();
                }
                match grpc.unary(req, path.clone(), Raw).await {
                    Ok(_) => "OK".into(),
                    Err(s) => format!("{:?}", s.code()),
                }
            }
        }
    }
}

/// Passes encoded messages through untouched.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
