//! Retention: deletes logs past `storage.retention_days`, each tenant's
//! `retention` and the retention rules (at start, then hourly) and, when
//! `storage.max_bytes` is set, the oldest logs while the store uses more
//! (every [`SIZE_CHECK`]), so a store bounded in size never fills its disk.
//!
//! Retention rules (a tenant's `retention_rules`, then the global
//! `[[retention.rules]]`): the rule that decides a log's fate is the first
//! of that list matching it; a log no rule matches keeps the tenant's
//! `retention`, else `storage.retention_days`, else stays. So rule i
//! deletes what it matches, none of the rules before it matches, past its
//! `keep`; the default deletes what no rule matches, past its time; and a
//! rule keeping longer than the default protects what it names. A tenant
//! without rules takes the fast paths (`delete_older_than`,
//! `delete_tenant_older_than`) as before rules existed.

use crate::domain::TenantId;
use crate::domain::query::Expr;
use crate::domain::time::{Micros, now_micros};
use crate::metrics::Metrics;
use crate::store::filter::Scope;
use crate::store::{LogFilter, Store};
use crate::tenants::{RetentionRule, TenantLimiter};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
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
    /// Tenancy on: each tenant's own `retention` and `retention_rules`,
    /// where its limits set them.
    pub tenant_limits: Option<Arc<TenantLimiter>>,
    /// `[[retention.rules]]`: every tenant's, after its own.
    pub rules: Vec<RetentionRule>,
}

impl Retention {
    /// Runs until aborted (it holds no state worth a graceful stop).
    pub async fn run(self) {
        let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
        let mut size_checks = tokio::time::interval(SIZE_CHECK);
        size_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every_hour.tick(), if self.max_age_days.is_some() || self.tenant_limits.is_some() || !self.rules.is_empty() => {
                    if self.any_rules() {
                        self.apply_rules().await;
                    } else {
                        self.apply_age().await;
                        self.apply_tenants().await;
                    }
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

    /// Whether any tenant has a retention rule (its own or a global one).
    fn any_rules(&self) -> bool {
        !self.rules.is_empty()
            || self.tenant_limits.as_ref().is_some_and(|limits| {
                let table = limits.table();
                !table.defaults.retention_rules.is_empty()
                    || table
                        .overrides
                        .values()
                        .any(|limits| !limits.retention_rules.is_empty())
            })
    }

    /// Age, tenant and rule retention, tenant by tenant (see the module's
    /// comment for which rule decides).
    async fn apply_rules(&self) {
        let tenants = match self.store.tenants().await {
            Ok(tenants) => tenants,
            Err(error) => {
                tracing::warn!(%error, "retention rules cannot list the tenants; will retry in an hour");
                return;
            }
        };
        let table = self.tenant_limits.as_ref().map(|limits| limits.table());
        let now = now_micros();
        for tenant in tenants {
            let limits = table.as_ref().map(|table| table.of(&tenant));
            let rules: Vec<&RetentionRule> = limits
                .map(|limits| limits.retention_rules.iter())
                .into_iter()
                .flatten()
                .chain(&self.rules)
                .collect();
            let by_tenant = limits
                .and_then(|limits| limits.retention)
                .map(|keep| (cutoff(now, keep), &self.metrics.retention_deleted_by_tenant));
            let by_age = self.max_age_days.map(|days| {
                let keep = std::time::Duration::from_secs(u64::from(days) * 86_400);
                (cutoff(now, keep), &self.metrics.retention_deleted_by_age)
            });
            if rules.is_empty() {
                // Both apply, as without rules: the later cutoff wins.
                let default = by_tenant.into_iter().chain(by_age).max_by_key(|(c, _)| *c);
                if let Some((cutoff, counter)) = default {
                    self.delete(
                        &tenant,
                        counter,
                        self.store.delete_tenant_older_than(&tenant, cutoff).await,
                    );
                }
                continue;
            }
            self.apply_tenant_rules(&tenant, &rules, by_tenant.or(by_age), now)
                .await;
        }
    }

    /// One tenant's rules in order, each deleting what it matches and no
    /// earlier rule does; then its default retention, deleting what no
    /// rule matches.
    async fn apply_tenant_rules(
        &self,
        tenant: &TenantId,
        rules: &[&RetentionRule],
        default: Option<(Micros, &AtomicU64)>,
        now: Micros,
    ) {
        // Every log of the tenant, the audit log included: rules name it
        // like any other service.
        let scope = Scope::tenant(tenant.clone()).with_audit(true);
        let filter = |to: Micros, expr: Expr| LogFilter {
            to: Some(to),
            expr,
            scope: scope.clone(),
            ..LogFilter::default()
        };
        let mut earlier: Vec<Expr> = Vec::new();
        for rule in rules {
            let expr = rule.query.clone().and(none_of(&earlier));
            let deleted = self
                .store
                .delete_matching(&filter(cutoff(now, rule.keep), expr))
                .await;
            self.delete(tenant, &self.metrics.retention_deleted_by_rule, deleted);
            earlier.push(rule.query.clone());
        }
        if let Some((cutoff, counter)) = default {
            let deleted = self
                .store
                .delete_matching(&filter(cutoff, none_of(&earlier)))
                .await;
            self.delete(tenant, counter, deleted);
        }
    }

    /// Counts (and logs) one deletion's outcome.
    fn delete(
        &self,
        tenant: &TenantId,
        counter: &AtomicU64,
        outcome: Result<u64, crate::store::StoreError>,
    ) {
        match outcome {
            Ok(deleted) => {
                Metrics::add(counter, deleted);
                if deleted > 0 {
                    tracing::info!(deleted, %tenant, "retention applied");
                }
            }
            Err(error) => {
                tracing::warn!(%error, %tenant, "retention failed; will retry in an hour")
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

/// `keep` before `now`, aligned down to the hour as age retention always was.
fn cutoff(now: Micros, keep: std::time::Duration) -> Micros {
    let cutoff = now - keep.as_micros().min(i64::MAX as u128) as Micros;
    cutoff - cutoff.rem_euclid(HOUR)
}

/// Logs matching none of `rules` (every log when there are none).
fn none_of(rules: &[Expr]) -> Expr {
    match rules {
        [] => Expr::everything(),
        rules => Expr::Not(Box::new(Expr::Or(rules.to_vec()))),
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
