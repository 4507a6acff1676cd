//! What a request may read, applied to every store read and the live tail:
//! the tenants the gate resolved for it (`RequestTenants`; the default
//! tenant with tenancy off) and whether the audit log's records are visible
//! (`domain::principal::may_read_audit`: admins only).
//!
//! Handlers read through [`ScopedStore`] (`QueryState::scoped`), never the
//! store directly, so no read can forget the scope: [`ReadScope::apply`]
//! sets `LogFilter::scope`, which every store applies.

use crate::domain::principal::Caller;
use crate::domain::tenant::{RequestTenants, TenantId};
use crate::domain::time::Micros;
use crate::domain::time::now_micros;
use crate::domain::{LogBatch, LogRecord};
use crate::metrics::{Metrics, TenantLimit};
use crate::store::facets::{FacetQuery, Facets, KeyCount};
use crate::store::filter::Scope;
use crate::store::grouped::{GroupedCount, GroupedCountQuery};
use crate::store::{
    BucketCount, HistogramQuery, LevelServiceCount, LogFilter, LogQuery, RawLog, Store, StoreError,
};
use actix_web::{HttpMessage, HttpRequest};
use async_trait::async_trait;
use std::collections::HashSet;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadScope {
    scope: Scope,
}

impl ReadScope {
    /// The scope of the request's caller, as the gate left it: the tenants
    /// it resolved (the default tenant when tenancy is off), the audit log
    /// for admins only. A request the gate left nothing on sees the least.
    pub fn of(request: &HttpRequest) -> ReadScope {
        let extensions = request.extensions();
        let tenants = extensions
            .get::<RequestTenants>()
            .and_then(|tenants| Scope::of(tenants.0.iter().cloned()))
            .unwrap_or_default();
        let audit = extensions
            .get::<Caller>()
            .is_some_and(Caller::may_read_audit);
        ReadScope {
            scope: tenants.with_audit(audit),
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Narrows a filter to the scope: the store applies it (tenants first in
    /// its keys, the audit service left out), whatever the filter said.
    pub fn apply(&self, filter: &mut LogFilter) {
        filter.scope = self.scope.clone();
    }

    /// For reads that filter in memory (the live tail).
    pub fn applied(&self, mut filter: LogFilter) -> LogFilter {
        self.apply(&mut filter);
        filter
    }
}

/// The store as one caller may read it: every read narrowed to the scope.
/// It is a [`Store`] itself, so code written against the trait (the Loki
/// API's reads, the grouped counts, patterns) reads through it unchanged;
/// it cannot write.
pub struct ScopedStore<'a> {
    pub store: &'a dyn Store,
    pub scope: ReadScope,
    /// The shortest `max_query_range` of the scope's tenants, and whose.
    pub max_range: Option<(std::time::Duration, TenantId)>,
    /// Where a read refused for that range is counted, per tenant.
    pub metrics: &'a Metrics,
}

impl ScopedStore<'_> {
    /// The filter narrowed to the scope and held to the tenants' longest
    /// range: a read without `from` covers that much before its end; one
    /// asking more is refused (400, `tenants.max_query_range`).
    pub fn narrow(&self, filter: &LogFilter) -> Result<LogFilter, StoreError> {
        let mut filter = self.scope.applied(filter.clone());
        if let Some((longest, tenant)) = &self.max_range {
            let longest = longest.as_micros().min(i64::MAX as u128) as i64;
            let to = filter.to.unwrap_or_else(|| now_micros().saturating_add(1));
            match filter.from {
                None => filter.from = Some(to.saturating_sub(longest)),
                Some(from) if to.saturating_sub(from) > longest => {
                    self.metrics
                        .tenants
                        .limited(tenant.as_str(), TenantLimit::QueryRange);
                    return Err(StoreError::OverLimit {
                        field: "tenants.max_query_range".into(),
                        message: format!(
                            "tenant {tenant} may read at most {} at once: narrow from and to",
                            format_duration(longest)
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(filter)
    }

    fn query(&self, query: &LogQuery) -> Result<LogQuery, StoreError> {
        Ok(LogQuery {
            filter: self.narrow(&query.filter)?,
            ..query.clone()
        })
    }
}

/// `30d`, `12h`, `90m`, `45s`: the largest unit that divides it.
fn format_duration(micros: i64) -> String {
    let seconds = micros / 1_000_000;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds >= size && seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[async_trait]
impl Store for ScopedStore<'_> {
    fn kind(&self) -> &'static str {
        self.store.kind()
    }

    async fn insert(&self, _batches: &[LogBatch]) -> Result<(), StoreError> {
        Err(StoreError::Internal(
            "a read scope cannot write: write through the store".into(),
        ))
    }

    async fn existing_ids(&self, batches: &[LogBatch]) -> Result<HashSet<String>, StoreError> {
        self.store.existing_ids(batches).await
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        self.store.logs(&self.query(query)?).await
    }

    async fn raw_logs(&self, query: &LogQuery) -> Result<Vec<RawLog>, StoreError> {
        self.store.raw_logs(&self.query(query)?).await
    }

    async fn facets(&self, query: &FacetQuery) -> Result<Facets, StoreError> {
        let query = FacetQuery {
            filter: self.narrow(&query.filter)?,
            ..query.clone()
        };
        self.store.facets(&query).await
    }

    async fn attribute_keys(&self, filter: &LogFilter) -> Result<Vec<KeyCount>, StoreError> {
        self.store.attribute_keys(&self.narrow(filter)?).await
    }

    async fn level_service_counts(
        &self,
        filter: &LogFilter,
    ) -> Result<Vec<LevelServiceCount>, StoreError> {
        self.store.level_service_counts(&self.narrow(filter)?).await
    }

    async fn bucket_counts(&self, query: &HistogramQuery) -> Result<Vec<BucketCount>, StoreError> {
        let query = HistogramQuery {
            filter: self.narrow(&query.filter)?,
            ..query.clone()
        };
        self.store.bucket_counts(&query).await
    }

    async fn grouped_counts(
        &self,
        query: &GroupedCountQuery,
    ) -> Result<Vec<GroupedCount>, StoreError> {
        let query = GroupedCountQuery {
            filter: self.narrow(&query.filter)?,
            ..query.clone()
        };
        self.store.grouped_counts(&query).await
    }

    async fn delete_older_than(&self, _cutoff: Micros) -> Result<u64, StoreError> {
        Err(StoreError::Internal(
            "a read scope cannot delete: retention runs on the store".into(),
        ))
    }

    async fn oldest_timestamp(&self) -> Result<Option<Micros>, StoreError> {
        self.store.oldest_timestamp().await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.store.check().await
    }

    /// Closing a view closes nothing: the store is shared.
    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Level;
    use crate::domain::audit::AUDIT_SERVICE;
    use crate::domain::principal::{AccessRole, Principal};

    fn record(service: &str) -> LogRecord {
        LogRecord {
            id: "1".into(),
            timestamp: 0,
            level: Level::Info,
            service: service.into(),
            message: "m".into(),
            attributes: Default::default(),
            tenant: Default::default(),
            trace_id: None,
            span_id: None,
        }
    }

    #[test]
    fn only_admins_see_the_audit_log() {
        let scope = |role: Option<AccessRole>| {
            let request = actix_web::test::TestRequest::default().to_http_request();
            request.extensions_mut().insert(Caller {
                principal: role.map(Principal::anonymous),
                client_ip: None,
            });
            ReadScope::of(&request)
        };
        for (role, visible) in [
            (None, false),
            (Some(AccessRole::Viewer), false),
            (Some(AccessRole::Editor), false),
            (Some(AccessRole::Admin), true),
        ] {
            let filter = scope(role).applied(LogFilter::default());
            assert_eq!(filter.matches(&record(AUDIT_SERVICE)), visible, "{role:?}");
            assert!(filter.matches(&record("web")));
        }
        let bare = actix_web::test::TestRequest::default().to_http_request();
        assert!(
            !ReadScope::of(&bare)
                .applied(LogFilter::default())
                .matches(&record(AUDIT_SERVICE))
        );
    }
}
