//! The feed service: discovery's read model, built only from the event and
//! join streams, in its own database tuned for queries.
//!
//! - [`projection`] applies `event.*` and `join.*` idempotently;
//!   [`rebuild`] replays both streams from the start into a fresh projection.
//! - [`query`] checks requests; [`search`] runs them behind one [`search::Engine`]
//!   (full text, typo tolerance, filters, geo, keyset pages);
//!   [`rank`] holds trending and "for you"; [`cursor`] signs page tokens.
//! - [`cache`]: Redis cache-aside with single flight; calendars come from
//!   `cityevents-ical`.

pub mod api;
pub mod app;
pub mod cache;
pub mod config;
pub mod cursor;
pub mod projection;
pub mod query;
pub mod rank;
pub mod rebuild;
pub mod search;

pub use app::build;
pub use config::Config;

/// Embedded migrations of the feed database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
