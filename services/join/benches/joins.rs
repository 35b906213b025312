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
#[allow(dead_code, unused_imports)]
mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tonic::transport::Channel;

use cityevents_loadgen::machine::CpuTimes;
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
    /// Machine-wide CPU over the run (every process: services, load
    /// generator, PostgreSQL, NATS, Redis): work, and steal apart.
    machine: CpuTimes,
    /// WAL written over the run, and full-page images among it (many after
    /// a checkpoint), from `pg_stat_wal` (the whole server).
    wal_bytes: i64,
    wal_fpi: i64,
}

async fn wal(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT wal_bytes::bigint, wal_fpi FROM pg_stat_wal")
        .fetch_one(pool)
        .await
        .unwrap()
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
            "{:<8} {:>7} joins {:>5} errors {:>8.2} s {:>9.0} joins/s   p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms   cpu {:>4.0} µs/join ({:.0}% busy, {:.1}% stolen)  wal {:.1} kB/join ({} fpi)",
            self.name,
            self.joins,
            self.errors,
            self.elapsed.as_secs_f64(),
            self.joins as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.95),
            pct(0.99),
            self.machine.work.as_secs_f64() * 1e6 / self.joins as f64,
            self.machine.busy() * 100.0,
            self.machine.stolen() * 100.0,
            self.wal_bytes as f64 / 1024.0 / self.joins as f64,
            self.wal_fpi,
        );
    }
}

/// Sends every (token, event) join with `IN_FLIGHT` outstanding over `CHANNELS` connections.
async fn drive(
    name: &'static str,
    app: &helpers::TestApp,
    clients: &[JoinServiceClient<Channel>],
    work: Vec<(String, String)>,
) -> Figures {
    let clients = Arc::new(clients.to_vec());
    let wal0 = wal(&app.pool).await;
    let machine0 = CpuTimes::now();
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
    let machine = CpuTimes::now().since(machine0);
    let wal1 = wal(&app.pool).await;
    let errors = results.iter().filter(|(ok, _)| !ok).count();
    Figures {
        name,
        joins: results.len(),
        errors,
        elapsed,
        latencies: results.into_iter().map(|r| r.1).collect(),
        machine,
        wal_bytes: wal1.0 - wal0.0,
        wal_fpi: wal1.1 - wal0.1,
    }
}

/// Planner statistics as a running system has them: the setup just filled
/// the tables, faster than autovacuum looks.
async fn analyze(app: &helpers::TestApp) {
    sqlx::query("ANALYZE").execute(&app.pool).await.unwrap();
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
    // `CE_BENCH_OTLP=<endpoint>`: traced at the services' default sampling
    // and exported there, to compare with tracing off.
    let telemetry = match std::env::var("CE_BENCH_OTLP") {
        Ok(endpoint) => {
            let cfg = cityevents_runtime::config::TelemetryConfig {
                log_filter: "warn".into(),
                otlp_endpoint: Some(endpoint.clone()),
                ..Default::default()
            };
            println!(
                "tracing: on at the default sampling (ratio {}, failed and slow spans kept), exported over OTLP to {endpoint}",
                cfg.sample_ratio
            );
            Some(cityevents_runtime::telemetry::init("join", &cfg).unwrap())
        }
        Err(_) => {
            println!("tracing: off (no subscriber)");
            None
        }
    };
    cityevents_testkit::sweep_leftovers(std::time::Duration::ZERO).await;
    let app = helpers::spawn_app_with(|cfg| cfg.database.max_connections = 16).await;
    let clients = clients(&app).await;
    // `CE_BENCH=spread make bench` runs one scenario (for profiling).
    let only = std::env::var("CE_BENCH").unwrap_or_default();
    if only.is_empty() || only == "hot" {
        hot(&app, &clients).await;
    }
    let _flush_at_end = telemetry;
    if only.is_empty() || only == "spread" {
        spread(&app, &clients).await;
    }
}

/// One event, capacity 1,000, 10,000 users.
async fn hot(app: &helpers::TestApp, clients: &[JoinServiceClient<Channel>]) {
    let hot = app.event(helpers::draft(1_000, 0)).await;
    app.counts(&hot.id).await;
    let work: Vec<_> = (0..USERS)
        .map(|_| (app.world.user().1, hot.id.clone()))
        .collect();
    analyze(app).await;
    let mut f = drive("hot", app, clients, work).await;
    f.print();
    let counts = app.counts(&hot.id).await;
    assert_eq!(
        (counts.confirmed, counts.waitlisted),
        (1_000, 9_000),
        "no overbooking under load"
    );
}

/// 10,000 events, one join each.
async fn spread(app: &helpers::TestApp, clients: &[JoinServiceClient<Channel>]) {
    let events: Vec<String> = futures::stream::iter(0..USERS)
        .map(|_| app.event(helpers::draft(10, 0)))
        .buffer_unordered(64)
        .map(|e| e.id)
        .collect()
        .await;
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.parse().unwrap()).collect();
    // Let the event stream deliver every snapshot first, so the measured
    // joins take the batched path, not the first-sight fallback.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (n,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM event_snapshots WHERE event_id = ANY($1)")
                .bind(&ids)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if n as usize >= USERS {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} snapshots reached join");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let work: Vec<_> = events
        .into_iter()
        .map(|e| (app.world.user().1, e))
        .collect();
    analyze(app).await;
    let mut f = drive("spread", app, clients, work).await;
    f.print();
    let (spread_confirmed,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM registrations WHERE status = 'confirmed' AND event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        spread_confirmed as usize, USERS,
        "every spread join confirmed"
    );
}
