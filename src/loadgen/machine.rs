//! CPU and memory accounting from /proc, to tell how much of the machine
//! the server, the generator and everything else used during a phase: on a
//! shared 2-core machine a busy neighbour changes the figures.

use std::time::Instant;

/// The machine, and the server's process on it (`--pid`).
pub(super) struct Machine {
    pub(super) cores: usize,
    pub(super) memory_gib: u64,
    pid: Option<u32>,
}

pub(super) struct CpuSample {
    total_busy: u64,
    pub(super) server: u64,
    pub(super) generator: u64,
    at: Instant,
}

pub(super) struct CpuUsage {
    pub(super) server: f64,
    pub(super) generator: f64,
    pub(super) other: f64,
}

pub(super) struct Memory {
    pub(super) peak_kib: u64,
    pub(super) current_kib: u64,
}

impl Machine {
    pub(super) fn new(pid: Option<u32>) -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .map_or(0, |kib| (kib + (1 << 19)) >> 20);
        Machine {
            cores,
            memory_gib,
            pid,
        }
    }

    /// Ticks (1/100 s) of user+system time of a process.
    fn process_ticks(pid: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }

    fn total_busy() -> Option<u64> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?;
        let values: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal: busy is all but idle+iowait.
        Some(values.iter().take(8).sum::<u64>() - values.get(3)? - values.get(4)?)
    }

    pub(super) fn sample(&self) -> CpuSample {
        CpuSample {
            total_busy: Machine::total_busy().unwrap_or(0),
            server: self
                .pid
                .and_then(|p| Machine::process_ticks(&p.to_string()))
                .unwrap_or(0),
            generator: Machine::process_ticks("self").unwrap_or(0),
            at: Instant::now(),
        }
    }

    pub(super) fn usage_since(&self, before: &CpuSample) -> Option<CpuUsage> {
        self.pid?;
        let now = self.sample();
        let seconds = now.at.duration_since(before.at).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let percent = |ticks: u64| ticks as f64 / seconds; // 100 ticks/s = 100%
        let server = percent(now.server.saturating_sub(before.server));
        let generator = percent(now.generator.saturating_sub(before.generator));
        let total = percent(now.total_busy.saturating_sub(before.total_busy));
        Some(CpuUsage {
            server,
            generator,
            other: (total - server - generator).max(0.0),
        })
    }

    pub(super) fn memory(&self) -> Option<Memory> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let field = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        };
        Some(Memory {
            peak_kib: field("VmHWM:")?,
            current_kib: field("VmRSS:")?,
        })
    }
}
