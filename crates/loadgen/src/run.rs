//! The open loop: request `i` is due at `start + i / rate` whether or not
//! earlier ones have answered, and its latency counts from that intended
//! time, so a stalled server shows as latency instead of as a slower
//! generator (coordinated omission, as wrk2 avoids it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::machine::CpuTimes;
use crate::target::Target;

/// What a run is asked to do.
pub struct Load {
    pub rate: f64,
    pub duration: Duration,
    /// Requests in flight at most; a request due beyond it is counted as
    /// `dropped` (the generator's limit, not the server's answer).
    pub max_in_flight: usize,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Figures {
    pub offered: f64,
    pub seconds: f64,
    /// Answers by status label.
    pub by_status: BTreeMap<String, u64>,
    /// Latency of every answer and of the successful ones, in µs, sorted.
    pub all: Vec<u64>,
    pub ok: Vec<u64>,
    /// CPU seconds this process used over the run.
    pub generator_cpu: f64,
    /// CPU seconds each watched process used over the run.
    pub watched_cpu: Vec<(String, f64)>,
    /// The whole machine over the run (work and steal).
    pub machine: CpuTimes,
}

impl Figures {
    pub fn answered(&self) -> u64 {
        self.all.len() as u64
    }
    pub fn successes(&self) -> u64 {
        self.ok.len() as u64
    }
    pub fn achieved(&self) -> f64 {
        self.answered() as f64 / self.seconds
    }
    pub fn goodput(&self) -> f64 {
        self.successes() as f64 / self.seconds
    }
    pub fn p(&self, q: f64) -> Duration {
        percentile(&self.all, q)
    }
    pub fn ok_p(&self, q: f64) -> Duration {
        percentile(&self.ok, q)
    }
    /// Share of answers with one of `labels`.
    pub fn share(&self, labels: &[&str]) -> f64 {
        let n: u64 = labels.iter().filter_map(|l| self.by_status.get(*l)).sum();
        n as f64 / self.answered().max(1) as f64
    }
}

pub(crate) fn percentile(sorted: &[u64], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Duration::from_micros(sorted[i])
}

/// Success labels: HTTP 2xx and gRPC OK.
fn is_ok(label: &str) -> bool {
    label == "OK" || label.starts_with('2') && label.len() == 3
}

#[derive(Default)]
struct Tally {
    by_status: BTreeMap<String, u64>,
    all: Vec<u64>,
    ok: Vec<u64>,
}

/// Drives `target` at `load`, numbering requests from `*next` (so users in
/// a token file are not reused across the steps of one invocation).
pub async fn run(
    target: Arc<Target>,
    tokens: Arc<Vec<String>>,
    load: &Load,
    next: &AtomicU64,
    watch: &[(String, u32)],
) -> Figures {
    let total = (load.rate * load.duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / load.rate.max(0.001));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_seconds("self");
    let machine_before = CpuTimes::now();
    let watched_before: Vec<f64> = watch
        .iter()
        .map(|(_, pid)| cpu_seconds(&pid.to_string()))
        .collect();
    let start = Instant::now() + Duration::from_millis(20);
    let mut dropped = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..total {
        let due = start + interval.mul_f64(k as f64);
        tokio::time::sleep_until(due.into()).await;
        if in_flight.load(Ordering::Relaxed) >= load.max_in_flight {
            dropped += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let i = next.fetch_add(1, Ordering::Relaxed);
        let (target, tokens, tally, in_flight) = (
            target.clone(),
            tokens.clone(),
            tally.clone(),
            in_flight.clone(),
        );
        tasks.spawn(async move {
            let token = if tokens.is_empty() {
                ""
            } else {
                &tokens[(i as usize) % tokens.len()]
            };
            let label = target.fire(i, token).await;
            let micros = due.elapsed().as_micros() as u64;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut t) = tally.lock() {
                if is_ok(&label) {
                    t.ok.push(micros);
                }
                t.all.push(micros);
                *t.by_status.entry(label).or_insert(0) += 1;
            }
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let seconds = start
        .elapsed()
        .as_secs_f64()
        .max(load.duration.as_secs_f64());
    let generator_cpu = cpu_seconds("self") - cpu_before;
    let machine = CpuTimes::now().since(machine_before);
    let watched_cpu = watch
        .iter()
        .zip(watched_before)
        .map(|((name, pid), before)| (name.clone(), cpu_seconds(&pid.to_string()) - before))
        .collect();
    let mut t = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    if dropped > 0 {
        t.by_status.insert("dropped".into(), dropped);
    }
    t.all.sort_unstable();
    t.ok.sort_unstable();
    Figures {
        offered: load.rate,
        seconds,
        by_status: t.by_status,
        all: t.all,
        ok: t.ok,
        generator_cpu,
        watched_cpu,
        machine,
    }
}

/// User + system CPU seconds of a process (`self` or a pid), from
/// `/proc/<pid>/stat` (clock ticks of 1/100 s, Linux's USER_HZ).
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; the fields after it are fixed.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the name comes field 3 (the state); utime and stime are 14, 15.
    let field = |n: usize| f.get(n - 3).and_then(|x| x.parse::<u64>().ok());
    match (field(14), field(15)) {
        (Some(u), Some(s)) => (u + s) as f64 / 100.0,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_rank_that_covers_the_share() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_micros(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&v, 1.0), Duration::from_micros(100));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }

    #[test]
    fn this_process_uses_some_cpu() {
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {}
        assert!(cpu_seconds("self") > 0.0);
    }
}
