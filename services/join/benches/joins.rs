//! `make bench`: drives the join gRPC API of a real stack (auth, event, join
//! on PostgreSQL, Redis and NATS on this machine) and prints joins/s and
//! latency percentiles for two scenarios:
//!
//! - hot: 10,000 users join one event with capacity 1,000;
//! - spread: 10,000 users join 10,000 different events, one each.
//!
//! Durable commits throughout (PostgreSQL's default `synchronous_commit=on`).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

#[path = "../tests/api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tonic::transport::Channel;

use cityevents_proto::cityevents::join::v1::{JoinRequest, join_service_client::JoinServiceClient};
use cityevents_testkit::authed;

const USERS: usize = 10_000;
/// Joins outstanding at once (a closed loop: each finished join starts the next).
const IN_FLIGHT: usize = 128;
const CHANNELS: usize = 8;

struct Figures {
    name: &'static str,
    joins: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn print(&mut self) {
        self.latencies.sort_unstable();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 * p).ceil() as usize)
                .clamp(1, self.latencies.len())
                - 1;
            self.latencies[i].as_secs_f64() * 1e3
        };
        println!(
            "{:<8} {:>7} joins {:>5} errors {:>8.2} s {:>9.0} joins/s   p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms",
            self.name,
            self.joins,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.joins as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.95),
            pct(0.99),
        );
    }
}

/// Sends every (token, event) join with `IN_FLIGHT` outstanding over `CHANNELS` connections.
async fn drive(
    name: &'static str,
    clients: &[JoinServiceClient<Channel>],
    work: Vec<(String, String)>,
) -> Figures {
    let clients = Arc::new(clients.to_vec());
    let start = Instant::now();
    let results: Vec<(bool, Duration)> = futures::stream::iter(work.into_iter().enumerate())
        .map(|(i, (token, event))| {
            let mut client = clients[i % clients.len()].clone();
            async move {
                let t = Instant::now();
                let req = authed(
                    JoinRequest {
                        event_id: event,
                        ..Default::default()
                    },
                    &token,
                );
                let ok = client.join(req).await.is_ok();
                (ok, t.elapsed())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let elapsed = start.elapsed();
    let errors = results.iter().filter(|(ok, _)| !ok).count();
    Figures {
        name,
        joins: results.len(),
        errors,
        elapsed,
        latencies: results.into_iter().map(|r| r.1).collect(),
    }
}

async fn clients(app: &helpers::TestApp) -> Vec<JoinServiceClient<Channel>> {
    let mut out = Vec::new();
    for _ in 0..CHANNELS {
        let ch = Channel::from_shared(format!("http://{}", app.join_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        out.push(JoinServiceClient::new(ch));
    }
    out
}

#[tokio::main]
async fn main() {
    println!(
        "scenario   requests   errors    time      rate         latency (client-side, in-process)"
    );
    let app = helpers::spawn_app_with(|cfg| cfg.database.max_connections = 16).await;
    let clients = clients(&app).await;

    // Hot: one event, capacity 1,000, 10,000 users.
    let hot = app.event(helpers::draft(1_000, 0)).await;
    app.counts(&hot.id).await;
    let work: Vec<_> = (0..USERS)
        .map(|_| (app.world.user().1, hot.id.clone()))
        .collect();
    let mut f = drive("hot", &clients, work).await;
    f.print();
    let counts = app.counts(&hot.id).await;
    assert_eq!(
        (counts.confirmed, counts.waitlisted),
        (1_000, 9_000),
        "no overbooking under load"
    );

    // Spread: 10,000 events, one join each.
    let mut events = Vec::with_capacity(USERS);
    let creates = futures::stream::iter(0..USERS)
        .map(|_| app.event(helpers::draft(10, 0)))
        .buffer_unordered(64);
    let created: Vec<_> = creates.collect().await;
    events.extend(created.into_iter().map(|e| e.id));
    // Let the event stream deliver every snapshot first, so the measured
    // joins take the batched path, not the first-sight fallback.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM event_snapshots")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if n as usize > USERS {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} snapshots reached join");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let work: Vec<_> = events
        .into_iter()
        .map(|e| (app.world.user().1, e))
        .collect();
    let mut f = drive("spread", &clients, work).await;
    f.print();
    let (confirmed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM registrations WHERE status = 'confirmed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(confirmed as usize, 1_000 + USERS);
}
