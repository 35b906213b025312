//! Integration tests of the media service: real PostgreSQL, Redis, NATS, a
//! running auth service, images stored on the local file system.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attachments;
mod helpers;
mod serving;
mod storage;
mod uploads;
