//! The media service: images that are safe to accept.
//!
//! - [`check`]: the real type from magic bytes and the dimensions from the
//!   header, before anything is decoded.
//! - [`work`] and [`process`]: a bounded worker pool decodes under limits,
//!   applies the orientation, drops all metadata and makes the variants.
//! - [`store`]: rows, and bytes kept once by their SHA-256 (object storage);
//!   [`receive`]: uploads streamed to the store as they arrive.
//! - [`sign`]: signed, expiring URLs; [`serve`]: reading what one names.
//! - [`attach`]: which images are in use; the rest are collected.
//! - [`api`]: the gRPC service.

pub mod api;
pub mod app;
pub mod attach;
pub mod check;
pub mod config;
pub mod process;
pub mod receive;
pub mod serve;
pub mod sign;
pub mod store;
pub mod work;

pub use app::build;
pub use config::Config;

/// Embedded migrations of the media database.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
