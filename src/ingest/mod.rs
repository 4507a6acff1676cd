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
use crate::metrics::Metrics;
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
    /// a saturating bulk load). Only a bus that reports its depth is checked.
    fn ensure_room(&self, logs: usize) -> Result<(), ApiError> {
        let Some(pending) = self.bus.pending() else {
            return Ok(());
        };
        let wanted = (logs.max(1) as u64).min(self.config.queue_capacity as u64);
        if pending + wanted > self.config.queue_capacity as u64 {
            Metrics::add(&self.metrics.requests_overloaded, 1);
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
            Err(error) => {
                Metrics::add(&self.metrics.requests_overloaded, 1);
                Err(error.into())
            }
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

async fn post_log(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    if !media_type(&request).is_some_and(|t| is_json(&t)) {
        return Err(ApiError::unsupported_media_type("application/json"));
    }
    let body = read_limited(&request, payload, state.config.max_body_bytes).await?;
    // After reading the body, so the keep-alive connection stays usable.
    state.ensure_room(1)?;
    let log = parse_log(&body, &state.config.limits).map_err(|invalid| {
        Metrics::add(&state.metrics.logs_rejected, 1);
        ApiError::bad_request(invalid.field, invalid.message)
    })?;
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
    let format = match media_type(&request).as_deref() {
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
    let body = read_limited(&request, payload, state.config.max_bulk_bytes).await?;
    if format == BulkFormat::Ndjson {
        // Lines bound the logs from above; counting them costs next to nothing.
        state.ensure_room(memchr::memchr_iter(b'\n', &body).count())?;
    } else {
        state.ensure_room(1)?;
    }
    let outcome = parse_bulk(&body, format, &state.config.limits)
        .map_err(|invalid| ApiError::bad_request(invalid.field, invalid.message))?;
    let rejected = outcome.rejected.len();
    Metrics::add(&state.metrics.logs_rejected, rejected as u64);
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
