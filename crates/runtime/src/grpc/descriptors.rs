//! What the contracts say about each method, looked up by its HTTP/2 path:
//! its kind (unary or streaming, for the `grpc_type` label) and whether it is
//! safe to retry (`option idempotency_level`).

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message;
use prost_types::FileDescriptorSet;
use prost_types::method_options::IdempotencyLevel;

/// The `grpc_type` label values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// Stream of requests, one response.
    ClientStream,
    /// One request, stream of responses.
    ServerStream,
    /// Streams both ways.
    BidiStream,
}

impl MethodKind {
    /// The label value used by the gRPC ecosystem's metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ClientStream => "client_stream",
            Self::ServerStream => "server_stream",
            Self::BidiStream => "bidi_stream",
        }
    }
}

/// One method of a known service.
#[derive(Clone, Debug)]
pub struct MethodInfo {
    /// Fully qualified service name, e.g. `cityevents.auth.v1.AuthService`.
    pub service: String,
    /// Method name, e.g. `Login`.
    pub method: String,
    /// Streaming shape.
    pub kind: MethodKind,
    /// Declared IDEMPOTENT or NO_SIDE_EFFECTS: safe to retry.
    pub idempotent: bool,
}

static METHODS: OnceLock<HashMap<String, MethodInfo>> = OnceLock::new();

/// Looks up a method by its path, `/<package>.<Service>/<Method>`.
pub fn method(path: &str) -> Option<&'static MethodInfo> {
    METHODS.get_or_init(build).get(path)
}

fn build() -> HashMap<String, MethodInfo> {
    let sets = [
        cityevents_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    ];
    let mut out = HashMap::new();
    for bytes in sets {
        let Ok(set) = FileDescriptorSet::decode(bytes) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for svc in file.service {
                let service = format!("{package}.{}", svc.name.unwrap_or_default());
                for m in svc.method {
                    let info = method_info(&service, m);
                    out.insert(format!("/{service}/{}", info.method), info);
                }
            }
        }
    }
    out
}

fn method_info(service: &str, m: prost_types::MethodDescriptorProto) -> MethodInfo {
    let kind = match (m.client_streaming(), m.server_streaming()) {
        (false, false) => MethodKind::Unary,
        (true, false) => MethodKind::ClientStream,
        (false, true) => MethodKind::ServerStream,
        (true, true) => MethodKind::BidiStream,
    };
    let level = m
        .options
        .as_ref()
        .map(|o| o.idempotency_level())
        .unwrap_or_default();
    MethodInfo {
        service: service.to_owned(),
        method: m.name.unwrap_or_default(),
        kind,
        idempotent: level != IdempotencyLevel::IdempotencyUnknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_options_are_read_from_the_descriptors() {
        let jwks = method("/cityevents.auth.v1.AuthService/GetJwks").unwrap();
        assert!(jwks.idempotent);
        assert_eq!(jwks.kind, MethodKind::Unary);
        let login = method("/cityevents.auth.v1.AuthService/Login").unwrap();
        assert!(!login.idempotent);
        let upload = method("/cityevents.media.v1.MediaService/Upload").unwrap();
        assert_eq!(upload.kind, MethodKind::ClientStream);
        assert!(method("/grpc.health.v1.Health/Check").is_some());
        assert!(method("/no.such/Method").is_none());
    }
}
