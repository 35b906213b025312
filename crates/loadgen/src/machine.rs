//! What the whole machine's CPUs did over a run, from `/proc/stat`: the work
//! every process did, and the time the hypervisor gave to other guests
//! (steal). CPU per request counts work only; steal is printed beside it,
//! so a slow run on a busy host is told apart from software doing more.

use std::time::Duration;

/// Cumulative machine CPU times (all CPUs together).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// user + nice + system + irq + softirq: work done by this machine.
    pub work: Duration,
    /// Time this VM was ready to run but the host ran something else.
    pub steal: Duration,
    /// Everything, idle and iowait included.
    pub total: Duration,
}

impl CpuTimes {
    /// The times so far.
    pub fn now() -> Self {
        Self::parse(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
    }

    /// The `cpu` line of a `/proc/stat` text (ticks of 10 ms, USER_HZ).
    pub fn parse(stat: &str) -> Self {
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|t| t.parse().ok())
            .collect();
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
        let ms = |t: u64| Duration::from_millis(t * 10);
        Self {
            work: ms(at(0) + at(1) + at(2) + at(5) + at(6)),
            steal: ms(at(7)),
            total: ms((0..8).map(at).sum()),
        }
    }

    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            work: self.work.saturating_sub(earlier.work),
            steal: self.steal.saturating_sub(earlier.steal),
            total: self.total.saturating_sub(earlier.total),
        }
    }

    /// Share of the CPUs' time spent working.
    pub fn busy(&self) -> f64 {
        self.work.as_secs_f64() / self.total.as_secs_f64().max(1e-9)
    }

    /// Share of the CPUs' time taken by the host for other guests.
    pub fn stolen(&self) -> f64 {
        self.steal.as_secs_f64() / self.total.as_secs_f64().max(1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_counted_apart_from_work() {
        let before = CpuTimes::parse("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3");
        let after = CpuTimes::parse("cpu  300 0 150 1000 10 0 0 140 0 0\n");
        let d = after.since(before);
        assert_eq!(d.work, Duration::from_millis(3_000));
        assert_eq!(d.steal, Duration::from_millis(1_000));
        assert_eq!(d.total, Duration::from_millis(6_000));
        assert!((d.busy() - 0.5).abs() < 1e-9 && (d.stolen() - 1.0 / 6.0).abs() < 1e-9);
    }
}
