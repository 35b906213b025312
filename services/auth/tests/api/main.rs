#![allow(clippy::unwrap_used)]

//! Integration tests of the auth service against real PostgreSQL and Redis.
//! Each test gets a fresh database and its own Redis key prefix.

mod admin;
mod helpers;
mod login;
mod outbox;
mod profiles;
mod rate_limits;
mod recovery;
mod register;
mod server;
mod sessions;
mod smoke;
