//! Our own JSON: `POST /log` (one log) and `POST /log/bulk` (a JSON array
//! or NDJSON), answered `202`.

use super::body::{BodyFormat, BodySize, ContentEncoding};
use super::state::IngestState;
use crate::domain::parse::{BulkFormat, parse_bulk, parse_log};
use crate::domain::time::{now_micros, write_rfc3339};
use crate::domain::{LogBatch, LogRecord};
use crate::http::body::is_json;
use crate::http::error::ApiError;
use crate::metrics::{Protocol, Rejection};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

/// Rejected entries listed in a bulk answer; the count covers all of them.
const MAX_LISTED_ERRORS: usize = 100;

pub(super) fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/log", web::post().to(post_log))
        .route("/log/bulk", web::post().to(post_bulk));
}

/// `POST /log`'s body: one log as a JSON object.
#[derive(Clone, Copy, Debug)]
struct OneLog;

impl BodyFormat for OneLog {
    const EXPECTED: &'static str = "application/json";
    const SIZE: BodySize = BodySize::Single;
    const CONTENT_ENCODING: ContentEncoding = ContentEncoding::Ignored;

    fn of_media_type(media_type: Option<&str>) -> Option<OneLog> {
        media_type.is_some_and(is_json).then_some(OneLog)
    }
}

/// `POST /log/bulk`'s body: a JSON array, or NDJSON.
impl BodyFormat for BulkFormat {
    const EXPECTED: &'static str =
        "application/json (an array of logs) or application/x-ndjson (one log per line)";
    const SIZE: BodySize = BodySize::Bulk;
    const CONTENT_ENCODING: ContentEncoding = ContentEncoding::Ignored;

    fn of_media_type(media_type: Option<&str>) -> Option<BulkFormat> {
        match media_type {
            Some("application/x-ndjson" | "application/jsonl" | "application/jsonlines") => {
                Some(BulkFormat::Ndjson)
            }
            Some(t) if is_json(t) => Some(BulkFormat::JsonArray),
            _ => None,
        }
    }

    /// NDJSON: lines bound the logs from above, and counting them costs next
    /// to nothing.
    fn logs_at_most(self, body: &[u8]) -> usize {
        match self {
            BulkFormat::Ndjson => memchr::memchr_iter(b'\n', body).count(),
            BulkFormat::JsonArray => 1,
        }
    }
}

/// Counts a refused request under its reason.
fn counted(
    state: &IngestState,
    result: Result<HttpResponse, ApiError>,
) -> Result<HttpResponse, ApiError> {
    if let Err(error) = &result {
        state.count_refusal(Protocol::Json, error);
    }
    result
}

async fn post_log(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let result = accept_one(&request, payload, &state).await;
    counted(&state, result)
}

async fn accept_one(
    request: &HttpRequest,
    payload: web::Payload,
    state: &IngestState,
) -> Result<HttpResponse, ApiError> {
    let (OneLog, body) = state.read_body::<OneLog>(request, payload).await?;
    let log = parse_log(&body, &state.config.limits)
        .map_err(|invalid| ApiError::bad_request(invalid.field, invalid.message))?;
    let record = state.stamp(
        log,
        now_micros(),
        &crate::ingest::state::request_tenant(request),
    );
    let response = HttpResponse::Accepted()
        .content_type("application/json")
        .body(accepted_body(&record));
    state
        .publish(Protocol::Json, LogBatch::from(vec![record]))
        .await?;
    Ok(response)
}

/// `{"status":"accepted","id":…,"timestamp":…}`, written by hand: the id is
/// hex and dashes and the timestamp digits, so nothing needs escaping, and
/// serde's writer cost the single-log path ~1,400 instructions (callgrind).
fn accepted_body(record: &LogRecord) -> String {
    let mut body = String::with_capacity(96);
    body.push_str(r#"{"status":"accepted","id":""#);
    body.push_str(&record.id);
    body.push_str(r#"","timestamp":""#);
    write_rfc3339(&mut body, record.timestamp);
    body.push_str(r#""}"#);
    body
}

#[derive(Serialize)]
struct BulkAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    accepted: usize,
    rejected: usize,
    errors: Vec<BulkEntryError>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    errors_truncated: bool,
}

#[derive(Serialize)]
struct BulkEntryError {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

async fn post_bulk(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let result = accept_bulk(&request, payload, &state).await;
    counted(&state, result)
}

async fn accept_bulk(
    request: &HttpRequest,
    payload: web::Payload,
    state: &IngestState,
) -> Result<HttpResponse, ApiError> {
    let (format, body) = state.read_body::<BulkFormat>(request, payload).await?;
    let outcome = parse_bulk(&body, format, &state.config.limits)
        .map_err(|invalid| ApiError::bad_request(invalid.field, invalid.message))?;
    let rejected = outcome.rejected.len();
    state
        .metrics
        .reject(Protocol::Json, Rejection::Invalid, rejected as u64);
    let errors = outcome
        .rejected
        .into_iter()
        .take(MAX_LISTED_ERRORS)
        .map(|entry| BulkEntryError {
            index: entry.index,
            line: entry.line,
            error: entry.error.message,
            field: entry.error.field,
        })
        .collect();
    let mut answer = BulkAnswer {
        error: None,
        accepted: outcome.accepted.len(),
        rejected,
        errors,
        errors_truncated: rejected > MAX_LISTED_ERRORS,
    };
    if outcome.accepted.is_empty() {
        answer.error = Some(if rejected == 0 {
            "the body holds no logs".into()
        } else {
            "no valid log in the body: see errors".into()
        });
        // Counted above, entry by entry; not an error for `counted`.
        return Ok(HttpResponse::BadRequest().json(answer));
    }
    let batch = state.stamp_all(
        outcome.accepted,
        now_micros(),
        &crate::ingest::state::request_tenant(request),
    );
    state.publish(Protocol::Json, batch).await?;
    Ok(HttpResponse::Accepted().json(answer))
}
