//! Per-client token buckets. Each client gets `burst` tokens, refilled at
//! `per_second`; a request takes one. The clock is a parameter so tests can
//! move time by hand.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// Clients remembered per shard before idle ones are forgotten, bounding
/// memory under a flood of distinct addresses.
const MAX_CLIENTS_PER_SHARD: usize = 4096;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            per_second,
            burst: burst.max(1.0),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// `Ok` to go ahead, or how long until a token will be there.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let shard = &self.shards[self.hasher.hash_one(client) as usize % SHARDS];
        let Ok(mut buckets) = shard.lock() else {
            return Ok(()); // a poisoned limiter must not take the service down
        };
        if buckets.len() >= MAX_CLIENTS_PER_SHARD && !buckets.contains_key(&client) {
            self.forget_full_buckets(&mut buckets, now);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.per_second;
        Err(Duration::from_secs_f64(wait.max(0.001)))
    }

    /// A bucket that would be full by now is the same as no bucket.
    fn forget_full_buckets(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let refill = Duration::from_secs_f64(self.burst / self.per_second);
        buckets.retain(|_, bucket| now.saturating_duration_since(bucket.updated) < refill);
        if buckets.len() >= MAX_CLIENTS_PER_SHARD {
            buckets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empties_then_refills() {
        let limiter = RateLimiter::new(2.0, 3.0);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(client, start).is_ok());
        }
        let wait = limiter.check(client, start).unwrap_err();
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::from_millis(400),
            "{wait:?}"
        );
        assert!(
            limiter
                .check(client, start + Duration::from_millis(499))
                .is_err()
        );
        assert!(
            limiter
                .check(client, start + Duration::from_millis(1000))
                .is_ok()
        );
    }

    #[test]
    fn clients_are_independent() {
        let limiter = RateLimiter::new(1.0, 1.0);
        let now = Instant::now();
        assert!(limiter.check("192.0.2.1".parse().unwrap(), now).is_ok());
        assert!(limiter.check("192.0.2.1".parse().unwrap(), now).is_err());
        assert!(limiter.check("192.0.2.2".parse().unwrap(), now).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = RateLimiter::new(1000.0, 1.0);
        let now = Instant::now();
        for i in 0..(SHARDS * MAX_CLIENTS_PER_SHARD * 2) as u32 {
            let _ = limiter.check(IpAddr::from(i.to_be_bytes()), now);
        }
        let total: usize = limiter.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= SHARDS * MAX_CLIENTS_PER_SHARD);
    }
}
