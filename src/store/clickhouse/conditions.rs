//! The shared query model ([`LogFilter`], cursors) as conditions on the
//! columns of `logs` (and of the rollups, for what they hold): what every
//! read statement filters by. The query language's part comes from
//! `language.rs`.

use super::language::expr_condition;
use super::schema::Features;
use super::sql::{text_literal, time_range, where_clause};
use crate::store::filter::{LogFilter, LogKey, Order};

/// Conditions on level, service, message and the query language's
/// expression, valid on `logs` (and, without the message, on the rollups:
/// they are read only when the expression tests levels and services alone,
/// `LogFilter::countable_by_level_and_service`).
pub fn dimension_conditions(
    filter: &LogFilter,
    with_text: bool,
    features: Features,
) -> Vec<String> {
    let mut conditions = Vec::new();
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

/// Every condition of `filter` on `logs`, time included (facets and
/// attribute keys, which read every matching log).
pub fn filter_condition(filter: &LogFilter, features: Features) -> String {
    let (from, to) = filter.bounds();
    let mut conditions = vec![time_range("ts_us", from, to)];
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
