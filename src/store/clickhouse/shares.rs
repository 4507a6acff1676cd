//! Each tenant's share of the logs, for sizing a page's first window.
//!
//! Windows are sized from the parts' metadata (`windows.rs`), which counts
//! every tenant's logs: a tenant holding 0.5% of a shared store would get a
//! first window holding a page of everyone's logs and about none of its own,
//! then step through two or three more before its page is full (each a
//! statement). Scaling the first window by the scope's share of the logs
//! makes it hold about a page of the scope's own logs, as on a store
//! holding only them. The shares come from the hour rollup (last 7 days),
//! read at most once a minute; the first read after that pays for it.

use super::pool::{Pool, ReadBudget};
use super::rows::Cells;
use crate::domain::TenantId;
use crate::domain::time::{Micros, now_micros};
use crate::store::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one reading of the shares is used.
const REFRESH: Duration = Duration::from_secs(60);

/// How far back the shares are counted.
const SPAN: Micros = 7 * 24 * 3_600_000_000;

/// The smallest share used: a tenant with no recent logs gets one window
/// as wide as the range, not an overflowing width.
const MIN_SHARE: f64 = 1e-6;

#[derive(Default)]
pub struct TenantShares {
    cached: Mutex<Option<Counts>>,
}

#[derive(Clone)]
struct Counts {
    read_at: Instant,
    by_tenant: HashMap<String, u64>,
    total: u64,
}

impl TenantShares {
    /// The share of the recent logs that belongs to `tenants`, in
    /// `(0, 1]`; 1 when unknown (the rollup cannot be read: sizing falls
    /// back to everyone's density, which is only slower).
    pub async fn share(&self, pool: &Pool, budget: &ReadBudget, tenants: &[TenantId]) -> f64 {
        let fresh = self.cached().filter(|c| c.read_at.elapsed() < REFRESH);
        let counts = match fresh {
            Some(counts) => counts,
            None => match read(pool, budget).await {
                Ok(counts) => {
                    if let Ok(mut cached) = self.cached.lock() {
                        *cached = Some(counts.clone());
                    }
                    counts
                }
                Err(error) => {
                    tracing::debug!(%error, "tenant shares unread; pages sized by every tenant's logs");
                    return 1.0;
                }
            },
        };
        counts.share(tenants)
    }

    fn cached(&self) -> Option<Counts> {
        self.cached.lock().ok().and_then(|cached| cached.clone())
    }
}

impl Counts {
    fn share(&self, tenants: &[TenantId]) -> f64 {
        if self.total == 0 {
            return 1.0;
        }
        let mine: u64 = tenants
            .iter()
            .filter_map(|tenant| self.by_tenant.get(tenant.as_str()))
            .sum();
        (mine as f64 / self.total as f64).clamp(MIN_SHARE, 1.0)
    }
}

async fn read(pool: &Pool, budget: &ReadBudget) -> Result<Counts, StoreError> {
    let rows: Vec<Cells> = pool
        .read(budget, &statement(pool.database(), now_micros() - SPAN))
        .await?;
    let mut by_tenant = HashMap::with_capacity(rows.len());
    let mut total = 0u64;
    for mut row in rows {
        let tenant = row.string()?;
        let count = row.count()?;
        total += count;
        by_tenant.insert(tenant, count);
    }
    Ok(Counts {
        read_at: Instant::now(),
        by_tenant,
        total,
    })
}

fn statement(database: &str, since: Micros) -> String {
    let hour = since - since.rem_euclid(3_600_000_000);
    format!(
        "SELECT tenant, toUInt64(sum(n)) FROM {database}.tenant_counts_hour \
         WHERE hour >= {hour} GROUP BY tenant"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn a_scope_gets_its_tenants_share_of_the_recent_logs() {
        let counts = Counts {
            read_at: Instant::now(),
            by_tenant: [("big".to_string(), 900), ("small".to_string(), 100)].into(),
            total: 1000,
        };
        assert_eq!(counts.share(&[tenant("small")]), 0.1);
        assert_eq!(counts.share(&[tenant("small"), tenant("big")]), 1.0);
        assert_eq!(counts.share(&[tenant("new")]), MIN_SHARE, "no recent logs");
        let empty = Counts {
            total: 0,
            by_tenant: HashMap::new(),
            ..counts
        };
        assert_eq!(empty.share(&[tenant("small")]), 1.0, "nothing known");
        assert_eq!(
            statement("db", 7_200_000_001),
            "SELECT tenant, toUInt64(sum(n)) FROM db.tenant_counts_hour WHERE hour >= 7200000000 GROUP BY tenant"
        );
    }
}
