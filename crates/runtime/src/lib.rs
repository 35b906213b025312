//! The service runtime every CityEvents binary is built from.
//!
//! - [`config`]: typed config from defaults, a TOML file and `CITYEVENTS_*` env.
//! - [`telemetry`] and [`metrics`]: JSON logs with trace ids, OTLP traces,
//!   a Prometheus registry served by [`admin`] at `/metrics`.
//! - [`grpc`]: server assembly (health, reflection, metrics, trace context,
//!   timeouts, limits, graceful shutdown) and client assembly (deadlines,
//!   trace propagation, token forwarding, retries of idempotent calls).
//! - [`db`] and [`redis`]: pools and migrations.
//! - [`error`]: the one error-code table, mapped to gRPC and HTTP.
//! - [`shutdown`]: the process's shutdown signal.

pub mod admin;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod db;
pub mod error;
pub mod grpc;
pub mod host;
pub mod metrics;
pub mod parse;
pub mod ratelimit;
pub mod redis;
pub mod shutdown;
pub mod telemetry;

pub use error::{Error, ErrorCode, Result};
pub use tokio_util::sync::CancellationToken;
