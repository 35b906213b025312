//! The auth database. Every statement is checked at compile time against the
//! migrations (`.sqlx/` holds the checked shapes for offline builds).
//!
//! Functions take a `&mut PgConnection`, so callers decide the transaction:
//! `&mut *tx` inside one, a pooled connection outside.

pub mod audit;
pub mod one_time;
pub mod sessions;
pub mod users;
