//! The join service: registrations that never overbook.
//!
//! - [`batch`]: the hot path. Joins are coalesced per shard into one
//!   transaction that locks the events' rows, decides each join in arrival
//!   order, and writes registrations, counters and outbox rows in bulk.
//! - [`store`]: leave (with promotion of the waitlist head in the same
//!   transaction), check-in and reads.
//! - [`snapshots`]: what join knows of events, from the event stream, with a
//!   gRPC fallback.
//! - [`status`]: registration and event states, mapped to SQL and proto once.
//! - [`tickets`]: signed, offline-verifiable ticket codes.
//! - [`api`]: the gRPC handlers; [`app::build`] wires it all.

pub mod answers;
pub mod api;
pub mod app;
pub mod batch;
pub mod config;
pub mod metrics;
pub mod snapshots;
pub mod status;
pub mod store;
pub mod tickets;

pub use app::build;
pub use config::Config;

/// Embedded migrations of the join database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
