//! Integration tests of the event service against real PostgreSQL, Redis,
//! NATS and a running auth service.
#![allow(clippy::unwrap_used)]

mod helpers;
mod lifecycle;
mod moderation;
mod validation;
