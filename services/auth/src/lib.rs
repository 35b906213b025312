//! The auth service: accounts, credentials, sessions, roles.
//!
//! - [`app`]: `build(config)` → a `Host` to `run(shutdown)`, used by `main.rs`
//!   and by the tests alike.
//! - [`api`]: the `cityevents.auth.v1.AuthService` handlers.
//! - [`store`]: compile-checked SQL over the service's own database, the
//!   outbox included.
//! - [`passwords`], [`tokens`], [`ratelimit`], [`validate`]: the pieces the
//!   handlers combine.
//! - [`revocation_copy`]: keeps Redis's copy of revocations true to the
//!   database (verifiers fail closed without it).
//!
//! Access tokens are Ed25519 JWTs verified everywhere with `cityevents-authn`;
//! refresh and one-time tokens are opaque, stored as SHA-256 hashes.

pub mod api;
pub mod app;
pub mod config;
pub mod metrics;
pub mod passwords;
pub mod revocation_copy;
pub mod store;
pub mod tokens;
pub mod validate;

pub use app::build;
pub use config::Config;

/// Embedded migrations of the auth database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
