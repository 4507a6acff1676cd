//! Counters shared by the roles of one process. Cheap atomics: the hot path
//! increments, `/health` (and later `/metrics`) reads.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub logs_accepted: AtomicU64,
    pub logs_rejected: AtomicU64,
    pub requests_overloaded: AtomicU64,
    pub logs_stored: AtomicU64,
    pub batches_stored: AtomicU64,
    pub store_write_failures: AtomicU64,
    pub dead_letter_logs: AtomicU64,
    pub live_clients: AtomicU64,
    pub live_clients_cut_off: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
