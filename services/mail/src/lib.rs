//! The mail service: notifications from domain events, each sent once.
//!
//! - [`notify`]: what each auth, event and join message sends, logged in the
//!   consumer's transaction (the delivery log's unique key makes a
//!   redelivered message log nothing twice); reminders 24 hours ahead.
//! - [`send`]: SMTP delivery with retries, leases shared across replicas.
//! - [`compose`]: templates (`templates/`), MIME, unsubscribe links.
//! - [`store`]: compile-checked SQL; [`api`]: the operators' calls.

pub mod api;
pub mod app;
pub mod compose;
pub mod config;
pub mod notify;
pub mod send;
pub mod store;

pub use app::build;
pub use config::Config;

/// Embedded migrations of the mail database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
