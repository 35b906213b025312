//! `make bench` (auth memory): 10,000 sign-ups at 16 concurrent clients
//! against the real auth service (in this process, on PostgreSQL, Redis and
//! NATS), printing the process's resident memory before, at its peak and
//! after, with the sign-up rate. Argon2id takes 19 MiB a hash; the hashing
//! threads keep the peak bounded (docs/benchmarks.md).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cityevents_proto::cityevents::auth::v1 as pb;

const SIGN_UPS: usize = 10_000;
const CLIENTS: usize = 16;

/// `VmRSS` and `VmHWM` (peak) of this process, in MiB.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main]
async fn main() {
    let app = Arc::new(helpers::spawn_app().await);
    let (idle, _) = rss();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients = (0..CLIENTS).map(|_| {
        let (app, next) = (app.clone(), next.clone());
        tokio::spawn(async move {
            let mut errors = 0;
            while next.fetch_add(1, Ordering::Relaxed) < SIGN_UPS as u64 {
                let req = pb::RegisterRequest {
                    email: helpers::unique_email(),
                    password: helpers::PASSWORD.into(),
                    display_name: "Bench".into(),
                };
                if app.client.clone().register(req).await.is_err() {
                    errors += 1;
                }
            }
            errors
        })
    });
    let errors: usize = futures::future::join_all(clients)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();
    let elapsed = started.elapsed();
    let (after, peak) = rss();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (settled, _) = rss();
    println!(
        "auth sign-ups: {SIGN_UPS} at {CLIENTS} clients in {:.1} s ({:.0}/s), {errors} errors",
        elapsed.as_secs_f64(),
        SIGN_UPS as f64 / elapsed.as_secs_f64()
    );
    println!(
        "auth RSS: idle {idle} MiB, peak {peak} MiB, after {after} MiB, 2 s later {settled} MiB"
    );
}
