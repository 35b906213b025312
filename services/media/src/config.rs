//! The media service's settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use cityevents_authn::VerifierConfig;
use cityevents_messaging::NatsConfig;
use cityevents_runtime::config::{
    DatabaseConfig, RedisConfig, Secret, ServerConfig, TelemetryConfig,
};
use cityevents_runtime::grpc::client::ClientConfig;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    pub database: DatabaseConfig,
    /// Token revocation lookups.
    pub redis: RedisConfig,
    pub nats: NatsConfig,
    pub verifier: VerifierConfig,
    /// The auth service, for its JWKS.
    pub auth: ClientConfig,
    pub media: MediaConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Where images are stored on the local file system, unless `s3.bucket`
    /// is set.
    pub storage_path: PathBuf,
    /// An S3-compatible object store instead of the local file system.
    pub s3: S3Config,
    /// Largest upload, in bytes.
    pub max_bytes: u64,
    /// Most pixels an image may have (width × height), checked from its
    /// header before anything is decoded.
    pub max_pixels: u64,
    /// Longest side, in pixels.
    pub max_side: u32,
    /// Images decoded at once at most (each takes a core while it runs).
    pub workers: usize,
    /// Signs image URLs: `<key id>:<secret>`, the first signs, all verify
    /// (rotation: add the new key first, drop the old one after the
    /// longest URL life).
    pub url_keys: Vec<Secret>,
    /// Life of a signed URL, in seconds (rounded up to a quarter of it, so
    /// URLs stay the same for a while and browsers cache images).
    pub url_ttl_secs: u64,
    /// An image attached to nothing (no event uses it) this long is deleted.
    pub unattached_grace_secs: u64,
    /// How often unattached images are looked for.
    pub collect_every_secs: u64,
}

/// An S3-compatible store (AWS S3, MinIO, Ceph, …).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Empty: use the local file system.
    pub bucket: String,
    /// Empty for AWS itself; e.g. `http://minio:9000` otherwise.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    /// Allow a plain-HTTP endpoint (local stores only).
    pub allow_http: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            storage_path: PathBuf::from("/var/lib/cityevents/media"),
            s3: S3Config::default(),
            max_bytes: 10 * 1024 * 1024,
            max_pixels: 40_000_000,
            max_side: 12_000,
            workers: 1,
            url_keys: Vec::new(),
            url_ttl_secs: 3_600,
            unattached_grace_secs: 86_400,
            collect_every_secs: 300,
        }
    }
}

impl cityevents_runtime::cli::ServiceConfig for Config {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}
