//! The query model shared by the query role and both stores: the seed's
//! filters (`level`, `service`, `q`, `from`, `to`) and the `query`
//! language's expression, ANDed. [`LogFilter::matches`] is the definition;
//! each store's SQL must agree with it (the store contract checks).

use crate::domain::log::AUDIT_SERVICE;
use crate::domain::query::{Expr, Matcher, Predicate, TextField};
use crate::domain::time::{MAX_MICROS, Micros};
use crate::domain::{LevelSet, LogRecord, TenantId};
use std::cmp::Ordering;

/// What a set of logs must match. Every condition is optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogFilter {
    pub levels: Option<LevelSet>,
    /// Case-insensitive substring of the service name, stored lowercase.
    pub service: Option<String>,
    /// Case-insensitive substring of the message, stored lowercase.
    pub text: Option<String>,
    /// Inclusive.
    pub from: Option<Micros>,
    /// Exclusive.
    pub to: Option<Micros>,
    /// The `query` parameter, parsed; `Expr::everything()` when absent.
    pub expr: Expr,
    /// Whose logs the reader may see. Every store read applies it, so no
    /// endpoint can forget it; the default sees the `default` tenant only,
    /// without the audit log.
    pub scope: Scope,
}

/// Who is reading: the tenants a request may see (never none) and whether
/// it may see the audit log (service `oglogstream.audit`, admins only).
/// Tenancy is data: it travels with the filter into every store read like
/// any other condition (stores put the tenant first in their keys, so one
/// tenant's reads cost what they would in a store of its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    tenants: Vec<TenantId>,
    pub audit: bool,
}

impl Default for Scope {
    fn default() -> Scope {
        Scope {
            tenants: vec![TenantId::default()],
            audit: false,
        }
    }
}

impl Scope {
    /// The tenants given (sorted, without repeats); `None` for none.
    pub fn of(tenants: impl IntoIterator<Item = TenantId>) -> Option<Scope> {
        let mut tenants: Vec<TenantId> = tenants.into_iter().collect();
        tenants.sort();
        tenants.dedup();
        (!tenants.is_empty()).then_some(Scope {
            tenants,
            audit: false,
        })
    }

    /// One tenant.
    pub fn tenant(tenant: TenantId) -> Scope {
        Scope {
            tenants: vec![tenant],
            audit: false,
        }
    }

    /// The same tenants, with the audit log visible or not.
    pub fn with_audit(mut self, audit: bool) -> Scope {
        self.audit = audit;
        self
    }

    /// Sorted and distinct, never empty.
    pub fn tenants(&self) -> &[TenantId] {
        &self.tenants
    }

    /// More than one tenant: rows then say whose they are.
    pub fn is_multi_tenant(&self) -> bool {
        self.tenants.len() > 1
    }

    pub fn includes(&self, record: &LogRecord) -> bool {
        self.tenants.contains(&record.tenant) && (self.audit || record.service != AUDIT_SERVICE)
    }
}

impl LogFilter {
    /// Evaluates the filter on one record in memory (live tail does this).
    pub fn matches(&self, record: &LogRecord) -> bool {
        self.scope.includes(record)
            && self
                .levels
                .is_none_or(|levels| levels.contains(record.level))
            && self.from.is_none_or(|from| record.timestamp >= from)
            && self.to.is_none_or(|to| record.timestamp < to)
            && self
                .service
                .as_deref()
                .is_none_or(|needle| contains_ignore_case(&record.service, needle))
            && self
                .text
                .as_deref()
                .is_none_or(|needle| contains_ignore_case(&record.message, needle))
            && self.expr.matches(record)
    }

    /// Whether counts can come from rollups keyed by (time, level,
    /// service): no message search, and an expression over levels and
    /// services only.
    pub fn countable_by_level_and_service(&self) -> bool {
        if self.text.is_some() {
            return false;
        }
        let mut only_dimensions = true;
        self.expr.for_each_predicate(&mut |predicate| {
            only_dimensions &= matches!(
                predicate,
                Predicate::Levels(_)
                    | Predicate::Text {
                        field: TextField::Service,
                        ..
                    }
            );
        });
        only_dimensions
    }

    /// The one trace id the filter pins (`trace_id:X` among the terms its
    /// expression ANDs at the top): every log it can match belongs to that
    /// trace, so a store may read the trace's logs from an index by trace id
    /// whatever the time range, then apply the rest of the filter to them.
    pub fn pinned_trace_id(&self) -> Option<&str> {
        self.expr.conjuncts().iter().find_map(|term| match term {
            Expr::Is(Predicate::Text {
                field: TextField::TraceId,
                matcher: Matcher::Exact(id),
            }) => Some(id.as_str()),
            _ => None,
        })
    }

    /// The time range with open ends closed at the representable limits.
    pub fn bounds(&self) -> (Micros, Micros) {
        (self.from.unwrap_or(0), self.to.unwrap_or(MAX_MICROS))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Desc,
    Asc,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogQuery {
    pub filter: LogFilter,
    pub limit: usize,
    pub offset: usize,
    pub order: Order,
    /// Keyset paging: only rows strictly after this one in `order` (a
    /// cursor's position). Combines with `offset` only in tests.
    pub after: Option<LogKey>,
}

/// A row's place in page order: timestamp, then id compared as a string
/// (byte order). `desc` reverses both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogKey {
    pub timestamp: Micros,
    pub id: String,
}

impl LogKey {
    pub fn of(record: &LogRecord) -> LogKey {
        LogKey {
            timestamp: record.timestamp,
            id: record.id.clone(),
        }
    }

    /// Ascending page order.
    pub fn compare(&self, other: &LogKey) -> Ordering {
        self.timestamp
            .cmp(&other.timestamp)
            .then_with(|| self.id.as_bytes().cmp(other.id.as_bytes()))
    }

    /// Whether `record` comes after this key in `order`.
    pub fn precedes(&self, record: &LogRecord, order: Order) -> bool {
        let ordering =
            (self.timestamp, self.id.as_bytes()).cmp(&(record.timestamp, record.id.as_bytes()));
        match order {
            Order::Asc => ordering == Ordering::Less,
            Order::Desc => ordering == Ordering::Greater,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HistogramQuery {
    /// `from` and `to` are always set for a histogram.
    pub filter: LogFilter,
    pub interval: Micros,
}

/// Kept here for the stores' use; defined beside the query language.
pub use crate::domain::query::contains_ignore_case;

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(query: &str) -> Option<String> {
        let filter = LogFilter {
            expr: crate::domain::query::parse(query).expect("a query"),
            ..LogFilter::default()
        };
        filter.pinned_trace_id().map(str::to_string)
    }

    #[test]
    fn a_trace_id_is_pinned_only_when_every_match_must_have_it() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(pinned(&format!("trace_id:{id}")).as_deref(), Some(id));
        assert_eq!(
            pinned(&format!(
                "level:>=warn trace_id:{} service:api",
                id.to_uppercase()
            ))
            .as_deref(),
            Some(id),
            "ANDed with other terms, hex lowercased as stored"
        );
        for loose in [
            format!("trace_id:{id} OR level:error"),
            format!("-trace_id:{id}"),
            "trace_id:*".to_string(),
            format!("span_id:{}", &id[..16]),
            format!("trace:{id}"),
            String::new(),
        ] {
            assert_eq!(pinned(&loose), None, "{loose}");
        }
    }
}
