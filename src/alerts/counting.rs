//! A rule's count per group over `[from, to)`.

use super::rule::{GroupKey, Rule};
use super::state::Labels;
use crate::domain::LogRecord;
use crate::domain::time::Micros;
use crate::store::{LogFilter, LogQuery, Order, Store, StoreError};
use std::collections::HashMap;

const PAGE: usize = 1000;
const MAX_SCANNED: usize = 200_000;

/// The group a log belongs to under `group_by`: its level, service or
/// attribute values (an absent attribute is the empty value).
pub fn labels_of(record: &LogRecord, group_by: &[GroupKey]) -> Labels {
    group_by
        .iter()
        .map(|key| {
            let value = match key {
                GroupKey::Level => record.level.as_str().to_string(),
                GroupKey::Service => record.service.clone(),
                GroupKey::Attribute(name) => {
                    record.attributes.get(name).cloned().unwrap_or_default()
                }
            };
            (key.label().to_string(), value)
        })
        .collect()
}

/// Counts the logs matching the rule's query in `[from, to)`, per group.
pub async fn count_groups(
    store: &dyn Store,
    rule: &Rule,
    from: Micros,
    to: Micros,
) -> Result<Vec<(Labels, u64)>, StoreError> {
    let mut counts: HashMap<Labels, u64> = HashMap::new();
    let mut scanned = 0;
    loop {
        let page = store
            .logs(&LogQuery {
                filter: LogFilter {
                    from: Some(from),
                    to: Some(to),
                    expr: rule.expr.clone(),
                    ..LogFilter::default()
                },
                limit: PAGE,
                offset: scanned,
                order: Order::Asc,
                after: None,
            })
            .await?;
        for record in page.iter().filter(|r| rule.expr.matches(r)) {
            *counts.entry(labels_of(record, &rule.group_by)).or_default() += 1;
        }
        scanned += page.len();
        if page.len() < PAGE {
            break;
        }
        if scanned >= MAX_SCANNED {
            return Err(StoreError::Unavailable(format!(
                "more than {MAX_SCANNED} logs in the window"
            )));
        }
    }
    Ok(counts.into_iter().collect())
}
