//! The event service: events and their lifecycle (draft → published →
//! cancelled, completed once past), organizers and moderation.
//!
//! - [`app::build`] wires config into a runnable host (server + outbox relay).
//! - [`api`]: handlers; [`store`]: compile-checked SQL; [`validate`]: drafts.
//!
//! Every state change of a published event writes a domain event
//! (`event.published`, `event.updated`, `event.cancelled`, `event.hidden`,
//! `event.unhidden`) carrying the whole event, so consumers keep snapshots.

pub mod api;
pub mod app;
pub mod config;
pub mod store;
pub mod validate;

pub use app::build;
pub use config::Config;

/// Embedded migrations of the event database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
