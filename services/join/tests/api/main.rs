//! Integration tests of the join service with real PostgreSQL, Redis, NATS,
//! and running auth and event services. Many race many clients.
#![allow(clippy::unwrap_used)]

mod concurrency;
mod events;
mod hardening;
mod helpers;
mod idempotency;
mod organizers;
mod rules;
mod tickets;
