//! The shared query model ([`LogFilter`], cursors) as conditions on the
//! columns of `logs` (and of the rollups, for what they hold): what every
//! read statement filters by. The query language's part comes from
//! `language.rs`.

use super::language::expr_condition;
use super::schema::{Features, TRACE_TABLE, TS_CLAMP_SECONDS};
use super::sql::{text_literal, time_range, where_clause};
use crate::domain::log::AUDIT_SERVICE;
use crate::domain::time::Micros;
use crate::store::filter::{LogFilter, LogKey, Order};

/// Conditions on the scope, level, service, message and the query
/// language's expression, valid on `logs` (and, without the message, on the
/// tenant-keyed rollups:
/// they are read only when the expression tests levels and services alone,
/// `LogFilter::countable_by_level_and_service`).
pub fn dimension_conditions(
    filter: &LogFilter,
    with_text: bool,
    features: Features,
) -> Vec<String> {
    let mut conditions = scope_conditions(filter);
    if let Some(levels) = filter.levels {
        let codes: Vec<String> = levels.iter().map(|l| l.code().to_string()).collect();
        conditions.push(format!("level IN ({})", codes.join(", ")));
    }
    if let Some(service) = &filter.service {
        conditions.push(format!(
            "positionCaseInsensitiveUTF8(service, {}) > 0",
            text_literal(service)
        ));
    }
    if with_text && let Some(text) = &filter.text {
        conditions.push(text_condition(text, features));
    }
    if !filter.expr.is_everything() {
        conditions.push(expr_condition(&filter.expr));
    }
    conditions
}

/// Whose logs the reader may see (`LogFilter::scope`): its tenants, and
/// not the audit log unless it may. Valid on `logs` and on the tenant-keyed
/// rollups alike, which lead with the tenant.
fn scope_conditions(filter: &LogFilter) -> Vec<String> {
    let scope = &filter.scope;
    let tenants: Vec<String> = scope
        .tenants()
        .iter()
        .map(|tenant| text_literal(tenant.as_str()))
        .collect();
    let mut conditions = vec![match tenants.as_slice() {
        [tenant] => format!("tenant = {tenant}"),
        tenants => format!("tenant IN ({})", tenants.join(", ")),
    }];
    if !scope.audit {
        conditions.push(format!("service != {}", text_literal(AUDIT_SERVICE)));
    }
    conditions
}

/// `[from, to)` on a table of logs: on `ts_us`, and (for a range starting
/// after 1970) on `ts`, the log's second clamped as the column is. `ts` is
/// the partition key's column, whose minimum and maximum the server keeps
/// per part, so it skips every part outside the range before looking at a
/// mark. Under the `(tenant, ts_us, id)` key that matters: the primary
/// index alone still picks, in every part, the granule where the tenant's
/// run begins, whose times it cannot bound, so a narrow window on a store
/// of 50 parts read 50 granules (300,000 rows) where it needed one.
pub fn logs_time_range(from: Micros, to: Micros) -> String {
    let range = time_range("ts_us", from, to);
    if from <= 0 || to <= from {
        return range;
    }
    let second = |micros: Micros| micros.div_euclid(1_000_000).min(TS_CLAMP_SECONDS);
    format!(
        "({range} AND ts >= toDateTime({}, 'UTC') AND ts <= toDateTime({}, 'UTC'))",
        second(from),
        second(to - 1)
    )
}

/// Every condition of `filter` on `logs`, time included (facets and
/// attribute keys, which read every matching log).
pub fn filter_condition(filter: &LogFilter, features: Features) -> String {
    let (from, to) = filter.bounds();
    let mut conditions = vec![logs_time_range(from, to)];
    conditions.extend(dimension_conditions(filter, true, features));
    where_clause(&conditions)
}

/// Past the cursor `after` in page order: `(ts_us, id)` beyond it, ids
/// compared as bytes, as pages order them.
pub fn after_condition(after: &LogKey, order: Order) -> String {
    let beyond = match order {
        Order::Desc => "<",
        Order::Asc => ">",
    };
    format!(
        "(ts_us {beyond} {ts} OR (ts_us = {ts} AND id {beyond} {id}))",
        ts = after.timestamp,
        id = text_literal(&after.id)
    )
}

/// The message contains `needle` (lowercase), ignoring case. Servers with
/// the message's n-gram skip index get the form that index answers:
/// `lowerUTF8(message) LIKE '%needle%'` with `%`, `_` and `\` escaped, so it
/// still means a plain substring; older ones scan with
/// `positionCaseInsensitiveUTF8`.
fn text_condition(needle: &str, features: Features) -> String {
    if features.text_index {
        let mut pattern = String::with_capacity(needle.len() + 2);
        pattern.push('%');
        for c in needle.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        format!("lowerUTF8(message) LIKE {}", text_literal(&pattern))
    } else {
        format!(
            "positionCaseInsensitiveUTF8(message, {}) > 0",
            text_literal(needle)
        )
    }
}

/// The table holding every log `filter` can match: `logs_by_trace`
/// (schema version 12) when it pins one trace id, where that trace's logs
/// are a short run of the sort key whatever the time range and hold every
/// column the other conditions test; `logs` otherwise. Reads name it in
/// place of `logs` and keep their conditions as they are.
pub fn logs_table(filter: &LogFilter) -> &'static str {
    if filter.pinned_trace_id().is_some() {
        TRACE_TABLE
    } else {
        "logs"
    }
}

/// Whether `filter` narrows the logs beyond its scope (levels, services,
/// text, an expression): pages then find their keys first (`read.rs`).
pub fn narrows_beyond_scope(filter: &LogFilter) -> bool {
    filter.levels.is_some()
        || filter.service.is_some()
        || filter.text.is_some()
        || !filter.expr.is_everything()
}

/// `PREWHERE …` for the conditions that decide which rows qualify, so the
/// server reads the wide columns only for granules with a match; empty when
/// there are none.
pub fn prewhere(filter: &LogFilter, features: Features) -> String {
    let conditions = dimension_conditions(filter, true, features);
    if conditions.is_empty() {
        String::new()
    } else {
        format!(" PREWHERE {}", conditions.join(" AND "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::OLD_SERVER as OLD;
    use super::*;

    #[test]
    fn text_is_searched_the_way_the_server_can_index() {
        let modern = Features {
            low_cardinality: true,
            codecs: true,
            text_index: true,
        };
        assert_eq!(
            text_condition("a%b_c\\d", modern),
            format!(
                "lowerUTF8(message) LIKE {}",
                text_literal("%a\\%b\\_c\\\\d%")
            )
        );
        assert_eq!(
            text_condition("abc", OLD),
            format!(
                "positionCaseInsensitiveUTF8(message, {}) > 0",
                text_literal("abc")
            )
        );
    }
}
