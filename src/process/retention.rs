//! Retention: deletes logs past `storage.retention_days` (hourly) and, when
//! `storage.max_bytes` is set, the oldest logs while the store uses more
//! (every [`SIZE_CHECK`]), so a store bounded in size never fills its disk.

use crate::domain::time::{Micros, now_micros};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tenants::TenantLimiter;
use std::sync::Arc;
use std::time::Duration;

const MINUTE: Micros = 60_000_000;
const HOUR: Micros = 60 * MINUTE;
/// How often the store's size is compared with `storage.max_bytes`.
const SIZE_CHECK: Duration = Duration::from_secs(10);
/// A size-bound deletion aims this far below the bound, so the next few
/// minutes of logs do not start another one at once.
const SIZE_TARGET: f64 = 0.9;

pub struct Retention {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub max_age_days: Option<u32>,
    pub max_bytes: Option<u64>,
    /// Tenancy on: each tenant's own `retention`, where its limits set one.
    pub tenant_limits: Option<Arc<TenantLimiter>>,
}

impl Retention {
    /// Runs until aborted (it holds no state worth a graceful stop).
    pub async fn run(self) {
        let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
        let mut size_checks = tokio::time::interval(SIZE_CHECK);
        size_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every_hour.tick(), if self.max_age_days.is_some() || self.tenant_limits.is_some() => {
                    self.apply_age().await;
                    self.apply_tenants().await;
                }
                _ = size_checks.tick(), if self.max_bytes.is_some() => self.apply_size().await,
                else => return,
            }
        }
    }

    /// The cutoff is aligned to the hour, as it always was for age.
    async fn apply_age(&self) {
        let Some(days) = self.max_age_days else {
            return;
        };
        let cutoff = now_micros() - i64::from(days) * 24 * HOUR;
        let cutoff = cutoff - cutoff.rem_euclid(HOUR);
        match self.store.delete_older_than(cutoff).await {
            Ok(deleted) => {
                Metrics::add(&self.metrics.retention_deleted_by_age, deleted);
                tracing::info!(deleted, days, "retention applied");
            }
            Err(error) => tracing::warn!(%error, "retention failed; will retry in an hour"),
        }
    }

    /// Each tenant's logs past its own `retention` (`[tenants.defaults]` or
    /// its override), cut at the hour like age retention.
    async fn apply_tenants(&self) {
        let Some(limits) = &self.tenant_limits else {
            return;
        };
        let tenants = match self.store.tenants().await {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::warn!(%error, "tenant retention cannot list the tenants; will retry in an hour");
                return;
            }
        };
        let table = limits.table();
        for tenant in tenants {
            let Some(keep) = table.of(&tenant).retention else {
                continue;
            };
            let cutoff = now_micros() - keep.as_micros().min(i64::MAX as u128) as Micros;
            let cutoff = cutoff - cutoff.rem_euclid(HOUR);
            match self.store.delete_tenant_older_than(&tenant, cutoff).await {
                Ok(deleted) => {
                    Metrics::add(&self.metrics.retention_deleted_by_tenant, deleted);
                    if deleted > 0 {
                        tracing::info!(deleted, %tenant, "tenant retention applied");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, %tenant, "tenant retention failed; will retry in an hour")
                }
            }
        }
    }

    /// Deletes the oldest minutes while the store uses more than the bound.
    async fn apply_size(&self) {
        let Some(max_bytes) = self.max_bytes else {
            return;
        };
        // A few rounds at most: each deletes the share of the time span the
        // excess is of the size, which may be off when logs are uneven.
        for _ in 0..8 {
            let Some(used) = self.store.used_bytes().await else {
                return;
            };
            if used <= max_bytes {
                return;
            }
            let oldest = match self.store.oldest_timestamp().await {
                Ok(Some(oldest)) => oldest,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, "size retention cannot read the oldest log; will retry");
                    return;
                }
            };
            let cutoff = size_cutoff(oldest, now_micros(), used, max_bytes);
            match self.store.delete_older_than(cutoff).await {
                Ok(deleted) => {
                    Metrics::add(&self.metrics.retention_deleted_by_size, deleted);
                    tracing::info!(
                        deleted,
                        used_bytes = used,
                        max_bytes,
                        "size retention deleted the oldest logs"
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "size retention failed; will retry");
                    return;
                }
            }
        }
    }
}

/// Where to cut so that about the share of logs by which `used` exceeds
/// the target goes: that share of the span from the oldest log to now,
/// aligned down to a minute (the rollups' finest grain) and at least the
/// oldest log's minute.
fn size_cutoff(oldest: Micros, now: Micros, used: u64, max_bytes: u64) -> Micros {
    let target = max_bytes as f64 * SIZE_TARGET;
    let share = ((used as f64 - target) / used as f64).clamp(0.0, 1.0);
    let span = (now - oldest).max(0) as f64;
    let cutoff = oldest + (span * share) as Micros;
    let cutoff = cutoff - cutoff.rem_euclid(MINUTE);
    let first_minute_after_oldest = oldest - oldest.rem_euclid(MINUTE) + MINUTE;
    cutoff.max(first_minute_after_oldest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_takes_the_excess_share_of_the_span_by_whole_minutes() {
        let oldest = 1_700_000_000_000_000 - 1_700_000_000_000_000 % MINUTE + 5;
        let now = oldest + 100 * MINUTE;
        // 2x the bound: the target is 0.9x, so 55% of the span goes.
        let cutoff = size_cutoff(oldest, now, 2000, 1000);
        assert_eq!(cutoff.rem_euclid(MINUTE), 0);
        assert_eq!((cutoff - oldest + 5) / MINUTE, 55);
        // A sliver over the target: still at least the oldest minute.
        let cutoff = size_cutoff(oldest, now, 901, 1000);
        assert_eq!(cutoff, oldest - 5 + MINUTE);
    }
}
