//! The BFF against real auth, event, join and feed services (in-process), real
//! PostgreSQL, Redis and NATS.
#![allow(clippy::unwrap_used)]

mod discovery;
mod edge;
mod helpers;
mod journey;
mod media;
mod replicas;
mod rest;
