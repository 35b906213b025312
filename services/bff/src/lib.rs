//! The BFF: the public edge for browsers and apps.
//!
//! - [`api`]: `cityevents.api.v1` over the auth, event and join services.
//! - [`edge`]: tokens, client address and rate limits, checked on every call.
//! - [`rest`]: REST/JSON and server-sent events transcoded from the protos'
//!   `google.api.http` rules, and the OpenAPI document from the same table.
//! - [`live`]: one stream subscription per replica, fanned out to watchers.
//! - [`replicas`]: `bff replicas`, discovery as the BFF sees it.
//! - [`app::build`] wires it all; gRPC-web and CORS wrap the one port.

pub mod api;
pub mod app;
pub mod config;
pub mod edge;
pub mod http_metrics;
pub mod live;
pub mod media;
pub mod replicas;
pub mod rest;

pub use app::build;
pub use config::Config;
