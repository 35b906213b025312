//! Many live watchers on one event: opens `count` `WatchEvent` streams over
//! `connections` HTTP/2 connections, waits until each has the current
//! counts, then takes `updates` seats one at a time through the BFF and
//! measures, for every watcher and every seat, how long after the join was
//! answered the watcher saw the new count. Reports update latency p50/p99,
//! the watchers that missed an update, and the BFF's memory per watcher
//! (resident set before and after the streams opened).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tonic::transport::Channel;

use cityevents_proto::cityevents::api::v1::{
    self as api, live_service_client::LiveServiceClient,
    registrations_service_client::RegistrationsServiceClient, watch_event_response::Update,
};

/// What a watchers run is asked to do.
pub struct Watchers {
    pub endpoint: String,
    pub event_id: String,
    pub count: usize,
    pub connections: usize,
    pub updates: usize,
    /// Bearer tokens: the first `updates` join, the rest watch.
    pub tokens: Vec<String>,
    /// The BFF's pid, for its resident set.
    pub pid: Option<u32>,
}

/// When each watcher first saw `confirmed >= k`, per `k` (1-based).
type Seen = Arc<Mutex<Vec<Vec<Option<Instant>>>>>;

/// A request as person `i` sends it: their token, and an address of their
/// own (`x-forwarded-for`, believed when the generator is a trusted proxy)
/// so the edge's per-address limit sees many people, not one.
fn as_person<T>(msg: T, token: &str, i: usize) -> anyhow::Result<tonic::Request<T>> {
    let mut req = tonic::Request::new(msg);
    let md = req.metadata_mut();
    md.insert("authorization", format!("Bearer {token}").parse()?);
    md.insert(
        "x-forwarded-for",
        crate::template::address(i as u64).parse()?,
    );
    Ok(req)
}

/// Resident set of `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs the scenario and prints its figures.
pub async fn run(w: Watchers) -> anyhow::Result<()> {
    anyhow::ensure!(
        w.tokens.len() > w.updates,
        "--tokens needs more than --updates lines"
    );
    let channels: Vec<Channel> = (0..w.connections.max(1))
        .map(|_| {
            Ok(tonic::transport::Endpoint::from_shared(w.endpoint.clone())?
                .tcp_nodelay(true)
                .connect_lazy())
        })
        .collect::<anyhow::Result<_>>()?;
    let rss_before = w.pid.map(rss_kib);
    let seen: Seen = Arc::new(Mutex::new(vec![vec![None; w.updates + 1]; w.count]));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(w.count);
    let opened = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..w.count {
        let channel = channels[i % channels.len()].clone();
        let token = w.tokens[w.updates + i % (w.tokens.len() - w.updates)].clone();
        let (event_id, seen, ready) = (w.event_id.clone(), seen.clone(), ready_tx.clone());
        tasks.spawn(async move {
            // A refused watch (the edge shedding the burst of openings) is
            // retried after a pause, as a client would.
            let mut client = LiveServiceClient::new(channel);
            let mut attempt = 0;
            let mut stream = loop {
                let msg = api::WatchEventRequest {
                    event_id: event_id.clone(),
                };
                match client.watch_event(as_person(msg, &token, i)?).await {
                    Ok(s) => break s.into_inner(),
                    Err(e) if e.code() == tonic::Code::ResourceExhausted && attempt < 30 => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(500 + (i as u64 % 500))).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            let mut ready = Some(ready);
            while let Some(msg) = stream.message().await? {
                let Some(Update::Counts(c)) = msg.update else {
                    continue;
                };
                if let Some(r) = ready.take() {
                    r.send(()).await.ok();
                }
                let now = Instant::now();
                let mut seen = seen.lock().await;
                let upto = usize::try_from(c.confirmed)
                    .unwrap_or(0)
                    .min(seen[i].len() - 1);
                for k in 1..=upto {
                    seen[i][k].get_or_insert(now);
                }
            }
            anyhow::Ok(())
        });
    }
    drop(ready_tx);
    for n in 0..w.count {
        tokio::select! {
            r = ready_rx.recv() => if r.is_none() { anyhow::bail!("only {n} of {} watchers opened", w.count) },
            () = tokio::time::sleep(Duration::from_secs(60)) => anyhow::bail!("only {n} of {} watchers opened in 60 s", w.count),
        }
    }
    let open_secs = opened.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = w.pid.map(rss_kib);

    // Take seats one at a time; each join's answer time is the reference.
    let mut joins = RegistrationsServiceClient::new(channels[0].clone());
    let mut answered = Vec::with_capacity(w.updates);
    for k in 0..w.updates {
        let req = as_person(
            api::JoinEventRequest {
                event_id: w.event_id.clone(),
                ..Default::default()
            },
            &w.tokens[k],
            w.count + k,
        )?;
        joins.join_event(req).await?;
        answered.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    tasks.abort_all();

    let seen = seen.lock().await;
    let mut lat: Vec<u64> = Vec::new();
    let mut missed = 0usize;
    for watcher in seen.iter() {
        for (k, at) in answered.iter().enumerate() {
            match watcher[k + 1] {
                Some(t) => lat.push(t.saturating_duration_since(*at).as_micros() as u64),
                None => missed += 1,
            }
        }
    }
    lat.sort_unstable();
    let p = |q: f64| crate::run::percentile(&lat, q).as_secs_f64() * 1000.0;
    println!(
        "watchers: {} open over {} connections in {open_secs:.1} s (refused openings retried); {} updates: latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {missed} of {} deliveries missed",
        w.count,
        channels.len(),
        w.updates,
        p(0.5),
        p(0.99),
        p(1.0),
        w.count * w.updates,
    );
    if let (Some(before), Some(open)) = (rss_before, rss_open) {
        println!(
            "watchers: BFF resident set {:.1} MiB before, {:.1} MiB with the watchers open: {:.1} KiB per watcher",
            before as f64 / 1024.0,
            open as f64 / 1024.0,
            open.saturating_sub(before) as f64 / w.count as f64,
        );
    }
    Ok(())
}
