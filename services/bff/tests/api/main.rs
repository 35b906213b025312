//! The BFF against real auth, event and join services (in-process), real
//! PostgreSQL, Redis and NATS.
#![allow(clippy::unwrap_used)]

mod edge;
mod helpers;
mod journey;
mod replicas;
mod rest;
