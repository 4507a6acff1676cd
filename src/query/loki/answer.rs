//! Answers in Loki's JSON: `{"status":"success","data":…}` around the
//! engine's `data` objects (with `stats` inside `data` for queries, as
//! Loki writes it), and the bare objects of the endpoints that have no
//! wrapper (`index/stats`, `detected_*`, `drilldown-limits`, `buildinfo`).

use super::error::LokiError;
use super::execute::ReadStats;
use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

/// `{"status":"success","data":<data>}`.
pub fn success(data: &impl Serialize) -> Result<HttpResponse, LokiError> {
    let data = serde_json::to_string(data).map_err(internal)?;
    Ok(json_body(format!(
        "{{\"status\":\"success\",\"data\":{data}}}"
    )))
}

/// A query's answer: `data` is the engine's object (`resultType`,
/// `encodingFlags`, `result`), completed with Loki's `stats`.
pub fn query_success(
    data: &impl Serialize,
    stats: &ReadStats,
    entries: u64,
    elapsed: Duration,
) -> Result<HttpResponse, LokiError> {
    let mut data = serde_json::to_string(data).map_err(internal)?;
    // The object's closing brace makes room for `stats` (every engine
    // `data` is a non-empty JSON object).
    if !data.ends_with('}') || data.len() < 2 {
        return Err(internal("a query answer that is not an object"));
    }
    data.pop();
    let stats = serde_json::to_string(&stats_json(stats, entries, elapsed)).map_err(internal)?;
    Ok(json_body(format!(
        "{{\"status\":\"success\",\"data\":{data},\"stats\":{stats}}}}}"
    )))
}

/// An object with no wrapper.
pub fn bare(body: &impl Serialize) -> Result<HttpResponse, LokiError> {
    let body = serde_json::to_string(body).map_err(internal)?;
    Ok(json_body(body))
}

fn json_body(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body)
}

fn internal(error: impl std::fmt::Display) -> LokiError {
    LokiError::from(crate::http::error::ApiError::internal(error))
}

/// Loki's statistics, the summary filled in (Grafana shows it in the query
/// inspector); the per-component sections are Loki's own and stay zero.
fn stats_json(stats: &ReadStats, entries: u64, elapsed: Duration) -> serde_json::Value {
    let seconds = elapsed.as_secs_f64();
    let per_second = |total: u64| {
        if seconds > 0.0 {
            (total as f64 / seconds) as u64
        } else {
            0
        }
    };
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_second(stats.bytes),
            "linesProcessedPerSecond": per_second(stats.lines),
            "totalBytesProcessed": stats.bytes,
            "totalLinesProcessed": stats.lines,
            "execTime": seconds,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": entries,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": stats.lines,
            "totalStructuredMetadataBytesProcessed": 0
        },
        "querier": {"store": {"totalChunksRef": 0, "totalChunksDownloaded": 0, "chunksDownloadTime": 0}},
        "ingester": {"totalReached": 0, "totalChunksMatched": 0, "totalBatches": 0, "totalLinesSent": 0}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn stats_go_inside_data() {
        let response = query_success(
            &json!({"resultType": "vector", "result": []}),
            &ReadStats {
                lines: 3,
                bytes: 30,
            },
            0,
            Duration::from_millis(2),
        )
        .unwrap();
        let body = response.into_body().try_into_bytes().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"]["resultType"], "vector");
        assert_eq!(body["data"]["stats"]["summary"]["totalLinesProcessed"], 3);
    }
}
