//! The ingest role: `POST /log` and `POST /log/bulk`. Validates, stamps ids
//! and receipt times, and publishes to the bus; answers 202 only once the bus
//! has taken the batch.

use crate::bus::{Bus, BusError};
use crate::config::IngestConfig;
use crate::domain::id::IdGenerator;
use crate::domain::parse::{BulkFormat, NewLog, parse_bulk, parse_log};
use crate::domain::time::{Micros, format_rfc3339, now_micros};
use crate::domain::{LogBatch, LogRecord};
use crate::http::body::{is_json, media_type, read_limited};
use crate::http::error::ApiError;
use crate::metrics::{Metrics, Rejection};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use std::sync::Arc;

/// Rejected entries listed in a bulk answer; the count covers all of them.
const MAX_LISTED_ERRORS: usize = 100;

pub struct IngestState {
    pub bus: Arc<dyn Bus>,
    pub config: IngestConfig,
    pub ids: IdGenerator,
    pub metrics: Arc<Metrics>,
}

impl IngestState {
    fn stamp(&self, log: NewLog, received: Micros) -> LogRecord {
        let timestamp = log.timestamp.unwrap_or(received);
        LogRecord {
            id: self.ids.next((received / 1000) as u64),
            timestamp,
            level: log.level,
            service: log.service,
            message: log.message,
            attributes: log.attributes,
        }
    }

    /// Refuses work the queue cannot take before paying for parsing it: under
    /// overload, parsing bodies only to answer 503 took the CPU the batcher
    /// needed to drain the queue (measured: most of the server's time during
    /// a saturating bulk load). Only a bus that reports its depth is checked;
    /// the 503 is counted as overloaded by `counted`.
    fn ensure_room(&self, logs: usize) -> Result<(), ApiError> {
        let Some(pending) = self.bus.pending() else {
            return Ok(());
        };
        let wanted = (logs.max(1) as u64).min(self.config.queue_capacity as u64);
        if pending + wanted > self.config.queue_capacity as u64 {
            return Err(BusError::Full(format!("{pending} logs are waiting to be stored")).into());
        }
        Ok(())
    }

    async fn publish(&self, batch: LogBatch) -> Result<(), ApiError> {
        let count = batch.len() as u64;
        match self.bus.publish(batch).await {
            Ok(()) => {
                Metrics::add(&self.metrics.logs_accepted, count);
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/log", web::post().to(post_log))
        .route("/log/bulk", web::post().to(post_bulk));
}

#[derive(Serialize)]
struct Accepted<'a> {
    status: &'static str,
    id: &'a str,
    timestamp: String,
}

/// Counts a refused request under its reason (invalid entries of an accepted
/// bulk request are counted where they are found).
fn counted(
    state: &IngestState,
    result: Result<HttpResponse, ApiError>,
) -> Result<HttpResponse, ApiError> {
    if let Err(error) = &result {
        use actix_web::ResponseError;
        use actix_web::http::StatusCode;
        let reason = match error.status_code() {
            StatusCode::PAYLOAD_TOO_LARGE => Rejection::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Rejection::MediaType,
            StatusCode::SERVICE_UNAVAILABLE => Rejection::Overloaded,
            _ => Rejection::Invalid,
        };
        state.metrics.reject(reason, 1);
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
    if !media_type(request).is_some_and(|t| is_json(&t)) {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    let body = read_limited(
        request,
        payload,
        state.config.max_body_bytes,
        state.config.body_read_timeout,
    )
    .await?;
    // After reading the body, so the keep-alive connection stays usable.
    state.ensure_room(1)?;
    let log = parse_log(&body, &state.config.limits)
        .map_err(|invalid| ApiError::bad_request(invalid.field, invalid.message))?;
    let record = state.stamp(log, now_micros());
    let response = HttpResponse::Accepted().json(Accepted {
        status: "accepted",
        id: &record.id,
        timestamp: format_rfc3339(record.timestamp),
    });
    state.publish(LogBatch::from(vec![record])).await?;
    Ok(response)
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
    let format = match media_type(request).as_deref() {
        Some("application/x-ndjson" | "application/jsonl" | "application/jsonlines") => {
            BulkFormat::Ndjson
        }
        Some(t) if is_json(t) => BulkFormat::JsonArray,
        _ => {
            return Err(ApiError::unsupported_media_type(
                "application/json (an array of logs) or application/x-ndjson (one log per line)",
            ));
        }
    };
    let body = read_limited(
        request,
        payload,
        state.config.max_bulk_bytes,
        state.config.body_read_timeout,
    )
    .await?;
    if format == BulkFormat::Ndjson {
        // Lines bound the logs from above; counting them costs next to nothing.
        state.ensure_room(memchr::memchr_iter(b'\n', &body).count())?;
    } else {
        state.ensure_room(1)?;
    }
    let outcome = parse_bulk(&body, format, &state.config.limits)
        .map_err(|invalid| ApiError::bad_request(invalid.field, invalid.message))?;
    let rejected = outcome.rejected.len();
    state.metrics.reject(Rejection::Invalid, rejected as u64);
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
    let received = now_micros();
    let batch: LogBatch = outcome
        .accepted
        .into_iter()
        .map(|log| state.stamp(log, received))
        .collect();
    state.publish(batch).await?;
    Ok(HttpResponse::Accepted().json(answer))
}
