//! Per-tenant limits at run time: an ingest rate (a token bucket of logs),
//! a daily quota of ingested bytes, the longest range a read may cover and
//! the live tails open at once. The table can be replaced while the server
//! runs (the overrides file re-read), without losing the buckets' state.

use super::settings::{LimitsTable, TenantLimits};
use crate::domain::tenant::TenantId;
use crate::domain::time::Micros;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

const DAY: Micros = 86_400_000_000;

/// A limit a tenant has reached: a `429` with `Retry-After`, in each
/// protocol's shape.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("tenant {tenant} {problem}")]
pub struct LimitExceeded {
    pub tenant: String,
    /// Which limit: `ingest_rate`, `ingest_bytes_per_day`,
    /// `max_query_range`, `max_live_connections`.
    pub limit: &'static str,
    pub problem: String,
    /// When trying again can work (none for a read over too long a range).
    pub retry_after: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Default)]
struct Usage {
    bucket: Option<Bucket>,
    /// (UTC day number, bytes ingested that day).
    day_bytes: (i64, u64),
    live: usize,
}

pub struct TenantLimiter {
    table: RwLock<Arc<LimitsTable>>,
    usage: Mutex<HashMap<TenantId, Usage>>,
}

impl TenantLimiter {
    pub fn new(table: LimitsTable) -> Arc<TenantLimiter> {
        Arc::new(TenantLimiter {
            table: RwLock::new(Arc::new(table)),
            usage: Mutex::new(HashMap::new()),
        })
    }

    /// The limits in force now.
    pub fn table(&self) -> Arc<LimitsTable> {
        match self.table.read() {
            Ok(table) => Arc::clone(&table),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// New limits (the overrides file changed); buckets and quotas carry on.
    pub fn replace(&self, table: LimitsTable) {
        match self.table.write() {
            Ok(mut current) => *current = Arc::new(table),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(table),
        }
    }

    fn limits_of(&self, tenant: &TenantId) -> TenantLimits {
        self.table().of(tenant).clone()
    }

    /// Takes `logs` from the tenant's rate and `bytes` from its daily quota,
    /// or says which is spent (taking nothing then).
    pub fn admit_ingest(
        &self,
        tenant: &TenantId,
        logs: u64,
        bytes: u64,
        now: Instant,
        now_micros: Micros,
    ) -> Result<(), LimitExceeded> {
        let limits = self.limits_of(tenant);
        if limits.ingest_rate.is_none() && limits.ingest_bytes_per_day.is_none() {
            return Ok(());
        }
        let Ok(mut usage) = self.usage.lock() else {
            return Ok(()); // a poisoned lock must not stop ingest
        };
        let usage = usage.entry(tenant.clone()).or_default();
        let today = now_micros.div_euclid(DAY);
        if let Some(quota) = limits.ingest_bytes_per_day {
            let spent = if usage.day_bytes.0 == today {
                usage.day_bytes.1
            } else {
                0
            };
            if spent.saturating_add(bytes) > quota {
                let tomorrow = (today + 1) * DAY;
                return Err(LimitExceeded {
                    tenant: tenant.to_string(),
                    limit: "ingest_bytes_per_day",
                    problem: format!(
                        "has used {spent} of its {quota} bytes of logs for today (UTC): more are taken from midnight"
                    ),
                    retry_after: Some(Duration::from_micros((tomorrow - now_micros).max(0) as u64)),
                });
            }
        }
        if let Some((per_second, burst)) = limits.ingest_rate {
            let bucket = usage.bucket.get_or_insert(Bucket {
                tokens: burst,
                updated: now,
            });
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
            bucket.updated = now;
            // A request larger than the burst passes when the bucket is full
            // and leaves a debt: the rate holds over time either way.
            let needed = (logs as f64).min(burst);
            if bucket.tokens < needed {
                let wait = (needed - bucket.tokens) / per_second;
                return Err(LimitExceeded {
                    tenant: tenant.to_string(),
                    limit: "ingest_rate",
                    problem: format!("is over its ingest rate of {per_second} logs/s"),
                    retry_after: Some(Duration::from_secs_f64(wait.max(0.001))),
                });
            }
            bucket.tokens -= logs as f64;
        }
        if limits.ingest_bytes_per_day.is_some() {
            if usage.day_bytes.0 != today {
                usage.day_bytes = (today, 0);
            }
            usage.day_bytes.1 = usage.day_bytes.1.saturating_add(bytes);
        }
        Ok(())
    }

    /// A read over `[from, to)` for each of `tenants`.
    pub fn check_range(
        &self,
        tenants: &[TenantId],
        from: Micros,
        to: Micros,
    ) -> Result<(), LimitExceeded> {
        let table = self.table();
        for tenant in tenants {
            if let Some(longest) = table.of(tenant).max_query_range
                && to.saturating_sub(from) > longest.as_micros() as i64
            {
                return Err(LimitExceeded {
                    tenant: tenant.to_string(),
                    limit: "max_query_range",
                    problem: format!(
                        "may read at most {} days at once: narrow from/to",
                        longest.as_secs_f64() / 86_400.0
                    ),
                    retry_after: None,
                });
            }
        }
        Ok(())
    }

    /// The shortest `max_query_range` among `tenants`, with whose it is.
    pub fn max_query_range(&self, tenants: &[TenantId]) -> Option<(Duration, TenantId)> {
        let table = self.table();
        tenants
            .iter()
            .filter_map(|tenant| Some((table.of(tenant).max_query_range?, tenant.clone())))
            .min_by_key(|(range, _)| *range)
    }

    /// A live tail for each of `tenants`, held until the slot drops.
    pub fn open_live(self: &Arc<Self>, tenants: &[TenantId]) -> Result<LiveSlot, LimitExceeded> {
        let table = self.table();
        let Ok(mut usage) = self.usage.lock() else {
            return Ok(LiveSlot {
                limiter: Arc::clone(self),
                tenants: Vec::new(),
            });
        };
        for tenant in tenants {
            if let Some(most) = table.of(tenant).max_live_connections {
                let open = usage.get(tenant).map_or(0, |u| u.live);
                if open >= most {
                    return Err(LimitExceeded {
                        tenant: tenant.to_string(),
                        limit: "max_live_connections",
                        problem: format!("has its {most} live tails open"),
                        retry_after: Some(Duration::from_secs(5)),
                    });
                }
            }
        }
        for tenant in tenants {
            usage.entry(tenant.clone()).or_default().live += 1;
        }
        Ok(LiveSlot {
            limiter: Arc::clone(self),
            tenants: tenants.to_vec(),
        })
    }
}

/// An open live tail's place in its tenants' counts.
pub struct LiveSlot {
    limiter: Arc<TenantLimiter>,
    tenants: Vec<TenantId>,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        if let Ok(mut usage) = self.limiter.usage.lock() {
            for tenant in &self.tenants {
                if let Some(entry) = usage.get_mut(tenant) {
                    entry.live = entry.live.saturating_sub(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn limited(limits: TenantLimits) -> Arc<TenantLimiter> {
        TenantLimiter::new(LimitsTable {
            defaults: TenantLimits::default(),
            overrides: [(tenant("noisy"), limits)].into(),
        })
    }

    #[test]
    fn the_rate_is_per_tenant() {
        let limiter = limited(TenantLimits {
            ingest_rate: Some((100.0, 200.0)),
            ..Default::default()
        });
        let start = Instant::now();
        assert!(
            limiter
                .admit_ingest(&tenant("noisy"), 200, 0, start, 0)
                .is_ok()
        );
        let refused = limiter
            .admit_ingest(&tenant("noisy"), 50, 0, start, 0)
            .unwrap_err();
        assert_eq!(refused.limit, "ingest_rate");
        assert!(refused.retry_after.unwrap() <= Duration::from_millis(500));
        // Another tenant is not limited at all.
        for _ in 0..100 {
            assert!(
                limiter
                    .admit_ingest(&tenant("quiet"), 1000, 0, start, 0)
                    .is_ok()
            );
        }
        // Half a second refills 50.
        let later = start + Duration::from_millis(500);
        assert!(
            limiter
                .admit_ingest(&tenant("noisy"), 50, 0, later, 0)
                .is_ok()
        );
    }

    #[test]
    fn the_quota_resets_at_midnight_utc() {
        let limiter = limited(TenantLimits {
            ingest_bytes_per_day: Some(1000),
            ..Default::default()
        });
        let now = Instant::now();
        let noon = 10 * DAY + DAY / 2;
        assert!(
            limiter
                .admit_ingest(&tenant("noisy"), 1, 600, now, noon)
                .is_ok()
        );
        let refused = limiter
            .admit_ingest(&tenant("noisy"), 1, 600, now, noon)
            .unwrap_err();
        assert_eq!(refused.limit, "ingest_bytes_per_day");
        assert_eq!(refused.retry_after, Some(Duration::from_secs(12 * 3600)));
        assert!(
            limiter
                .admit_ingest(&tenant("noisy"), 1, 600, now, 11 * DAY)
                .is_ok()
        );
    }

    #[test]
    fn ranges_and_live_tails_are_bounded() {
        let limiter = limited(TenantLimits {
            max_query_range: Some(Duration::from_secs(86_400)),
            max_live_connections: Some(1),
            ..Default::default()
        });
        assert!(limiter.check_range(&[tenant("noisy")], 0, DAY).is_ok());
        assert!(limiter.check_range(&[tenant("noisy")], 0, DAY + 1).is_err());
        assert!(
            limiter
                .check_range(&[tenant("quiet")], 0, 100 * DAY)
                .is_ok()
        );
        let first = limiter.open_live(&[tenant("noisy")]).unwrap();
        assert!(limiter.open_live(&[tenant("noisy")]).is_err());
        drop(first);
        assert!(limiter.open_live(&[tenant("noisy")]).is_ok());
    }

    #[test]
    fn a_new_table_applies_at_once() {
        let limiter = limited(TenantLimits::default());
        let now = Instant::now();
        assert!(
            limiter
                .admit_ingest(&tenant("noisy"), 1000, 0, now, 0)
                .is_ok()
        );
        limiter.replace(LimitsTable {
            defaults: TenantLimits {
                ingest_rate: Some((1.0, 1.0)),
                ..Default::default()
            },
            overrides: Default::default(),
        });
        assert!(limiter.admit_ingest(&tenant("noisy"), 1, 0, now, 0).is_ok());
        assert!(
            limiter
                .admit_ingest(&tenant("noisy"), 1, 0, now, 0)
                .is_err()
        );
    }
}
