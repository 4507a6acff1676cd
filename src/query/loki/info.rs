//! The small answers: `drilldown-limits` (which Drilldown reads to decide
//! what to show: Patterns needs `pattern_ingester_enabled`),
//! `status/buildinfo` and `format_query`.

use super::answer;
use super::error::LokiError;
use super::params::LokiParams;
use crate::domain::logql::{self, MAX_ENTRIES, MAX_SERIES};
use crate::query::QueryState;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

/// The Loki release whose API this one answers as. Grafana and Drilldown
/// turn features on by the version they read here.
pub const LOKI_VERSION: &str = "3.5.0";

pub async fn drilldown_limits(state: web::Data<QueryState>) -> Result<HttpResponse, LokiError> {
    let timeout = format!("{}s", state.timeout.as_secs().max(1));
    answer::bare(&json!({
        "limits": {
            "discover_log_levels": true,
            "discover_service_name": ["service_name"],
            "log_level_fields": ["level"],
            "max_entries_limit_per_query": MAX_ENTRIES,
            "max_line_size_truncate": false,
            "max_query_bytes_read": "0B",
            "max_query_length": "0s",
            "max_query_lookback": "0s",
            "max_query_range": "0s",
            "max_query_series": MAX_SERIES,
            "metric_aggregation_enabled": false,
            "otlp_config": {},
            "pattern_persistence_enabled": false,
            "query_timeout": timeout,
            "retention_period": "0s",
            "volume_enabled": true,
            "volume_max_series": 1000
        },
        "pattern_ingester_enabled": true,
        "version": LOKI_VERSION
    }))
}

pub async fn buildinfo() -> Result<HttpResponse, LokiError> {
    answer::bare(&json!({
        "version": LOKI_VERSION,
        "revision": concat!("oglogstream-", env!("CARGO_PKG_VERSION")),
        "branch": "oglogstream",
        "buildUser": "oglogstream",
        "buildDate": "",
        "goVersion": ""
    }))
}

pub async fn format_query(
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, LokiError> {
    let params = LokiParams::read(&request, payload).await?;
    let query = logql::parse(params.query()?)?;
    answer::success(&query.to_string())
}
