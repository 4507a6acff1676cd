//! The `query`/`match[]` of the endpoints that take a stream selector
//! (`labels`, `series`, `index/*`, `detected_*`, `patterns`): a bare
//! selector, `{}` included, or a whole log query, whose pushed-down part
//! selects the logs (`{service_name="api"} |= "x"`).

use super::error::LokiError;
use super::execute::{KeyResolver, names_to_resolve};
use crate::domain::logql::{self, LogExpr, Query, Selector};
use crate::domain::time::Micros;
use crate::store::{Dimension, GroupedCount, LogFilter, Store};

/// A selector or log query; absent (or blank) is `{}`, every log.
pub fn parse_selection(text: Option<&str>) -> Result<LogExpr, LokiError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(LogExpr {
            selector: Selector::default(),
            pipeline: Vec::new(),
        });
    };
    if let Ok(selector) = logql::parse_selector(text) {
        return Ok(LogExpr {
            selector,
            pipeline: Vec::new(),
        });
    }
    match logql::parse(text)? {
        Query::Log(log) => Ok(log),
        Query::Metric(_) => Err(LokiError::bad_request(
            "a stream selector or log query is needed here, not a metric query",
        )),
    }
}

/// The store filter of a selection over `[from, to)`, its labels
/// resolved against the stored keys (read only when needed), and the
/// resolver for the caller's own labels.
pub async fn selection_filter(
    store: &dyn Store,
    selection: &LogExpr,
    extra_names: &[String],
    from: Micros,
    to: Micros,
) -> Result<(LogFilter, KeyResolver), LokiError> {
    let mut names = names_to_resolve(&Query::Log(selection.clone()));
    for name in extra_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let resolver = KeyResolver::for_names(store, &names, from, to).await?;
    let plan = selection.push_down(&|label| resolver.keys_for(label));
    Ok((
        LogFilter {
            expr: plan.expr,
            text: plan.text_hint,
            from: Some(from),
            to: Some(to),
            ..Default::default()
        },
        resolver,
    ))
}

/// How counts group by a label: `service_name` by service, the level
/// labels by level, any other by the attribute keys it stands for.
pub fn dimension_of(label: &str, resolver: &KeyResolver) -> Dimension {
    match label {
        "service_name" => Dimension::Service,
        "detected_level" | "level" => Dimension::Level,
        other => Dimension::Attribute(resolver.keys_for(other)),
    }
}

/// A grouped count's value for the label `dimension_of` grouped by.
pub fn group_value(row: &GroupedCount, dimension: &Dimension) -> Option<String> {
    match dimension {
        Dimension::Service => row.service.clone(),
        Dimension::Level => row.level.map(|level| level.as_str().to_string()),
        Dimension::Attribute(_) => row.attribute.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_queries_and_nothing() {
        assert!(parse_selection(None).unwrap().selector.matchers.is_empty());
        assert!(
            parse_selection(Some("{}"))
                .unwrap()
                .selector
                .matchers
                .is_empty()
        );
        let log = parse_selection(Some(r#"{service_name="checkout"} |= "timeout""#)).unwrap();
        assert_eq!(log.pipeline.len(), 1);
        let error = parse_selection(Some("count_over_time({a=\"b\"}[5m])")).unwrap_err();
        assert_eq!(error.status().as_u16(), 400);
        assert!(
            parse_selection(Some("{a="))
                .unwrap_err()
                .message()
                .starts_with("parse error")
        );
    }
}
