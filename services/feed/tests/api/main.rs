//! Integration tests of the feed service: real PostgreSQL (with PostGIS),
//! Redis and NATS, fed by running event and join services.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache;
mod calendar;
mod helpers;
mod paging;
mod projection;
mod search;
