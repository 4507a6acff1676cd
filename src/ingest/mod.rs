//! The ingest role: our own `POST /log` and `POST /log/bulk` (`json`), and
//! the shippers' protocols: OTLP/HTTP logs (`otlp`), Loki push (`loki`),
//! Elasticsearch bulk (`elasticsearch`) and syslog over TCP and UDP
//! (`syslog`). Each handler reads the body within the limits, hands it to
//! its pure decoder (`domain::parse`, `domain::shippers`), stamps ids and
//! receipt times, publishes to the bus and answers in its protocol's shape:
//! a success only once the bus has taken the logs, 503 + Retry-After when it
//! cannot.

mod elasticsearch;
mod json;
mod loki;
mod otlp;
pub mod syslog;

use crate::bus::{Bus, BusError};
use crate::config::IngestConfig;
use crate::domain::id::IdGenerator;
use crate::domain::parse::NewLog;
use crate::domain::shippers::{DecodeError, compression};
use crate::domain::time::Micros;
use crate::domain::{LogBatch, LogRecord};
use crate::http::body::read_limited;
use crate::http::error::ApiError;
use crate::metrics::{Metrics, Protocol, Rejection};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, web};
use bytes::Bytes;
use std::sync::Arc;

pub use elasticsearch::{PRODUCT_HEADER, cluster_info, wants_cluster_info};

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

    fn stamp_all(&self, logs: Vec<NewLog>, received: Micros) -> LogBatch {
        logs.into_iter()
            .map(|log| self.stamp(log, received))
            .collect()
    }

    /// Refuses work the queue cannot take before paying for parsing it: under
    /// overload, parsing bodies only to answer 503 took the CPU the batcher
    /// needed to drain the queue (measured: most of the server's time during
    /// a saturating bulk load). Only a bus that reports its depth is checked;
    /// the 503 is counted as overloaded by `count_refusal`.
    /// The bus's own answer counts too: an in-memory queue also refuses
    /// when it is full in bytes or its store's disk is (the body's bytes are
    /// not known to it yet; `publish` checks them).
    fn ensure_room(&self, logs: usize) -> Result<(), ApiError> {
        self.bus.room_for(logs, 0)?;
        let Some(pending) = self.bus.pending() else {
            return Ok(());
        };
        let wanted = (logs.max(1) as u64).min(self.config.queue_capacity as u64);
        if pending + wanted > self.config.queue_capacity as u64 {
            return Err(BusError::Full(format!("{pending} logs are waiting to be stored")).into());
        }
        Ok(())
    }

    /// Hands the batch to the bus; `Ok` means it is taken (an empty batch
    /// needs nothing).
    async fn publish(&self, protocol: Protocol, batch: LogBatch) -> Result<(), BusError> {
        if batch.is_empty() {
            return Ok(());
        }
        let count = batch.len() as u64;
        self.bus.publish(batch).await?;
        self.metrics.accept(protocol, count);
        Ok(())
    }

    /// Counts a refused request under its reason (records refused one by
    /// one inside an accepted request are counted where they are found).
    fn count_refusal(&self, protocol: Protocol, error: &ApiError) {
        use actix_web::ResponseError;
        let reason = match error.status_code() {
            StatusCode::PAYLOAD_TOO_LARGE => Rejection::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Rejection::MediaType,
            StatusCode::SERVICE_UNAVAILABLE => Rejection::Overloaded,
            _ => Rejection::Invalid,
        };
        self.metrics.reject(protocol, reason, 1);
    }

    /// A shipper's body: read within `ingest.max_bulk_bytes` (chunked or
    /// not) and, with `Content-Encoding: gzip`, inflated within the same
    /// limit, so a zip bomb gets 413 having cost at most that much memory.
    async fn read_shipper_body(
        &self,
        request: &HttpRequest,
        payload: web::Payload,
    ) -> Result<Bytes, ApiError> {
        let limit = self.config.max_bulk_bytes;
        let encoding = request
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|value| value.to_str().unwrap_or("?").trim().to_ascii_lowercase());
        let gzipped = match encoding.as_deref() {
            None | Some("" | "identity") => false,
            Some("gzip" | "x-gzip") => true,
            Some(_) => {
                return Err(ApiError::unsupported_encoding(
                    "the body as it is (identity) or gzip",
                ));
            }
        };
        let body = read_limited(request, payload, limit, self.config.body_read_timeout).await?;
        if !gzipped {
            return Ok(body.freeze());
        }
        compression::gunzip(&body, limit)
            .map(Bytes::from)
            .map_err(decode_error)
    }
}

/// The protocols that take protobuf or JSON: which one the request's
/// `Content-Type` names, if either.
fn protobuf_or_json<T>(request: &HttpRequest, protobuf: T, json: T) -> Option<T> {
    match crate::http::body::media_type(request).as_deref() {
        Some("application/x-protobuf") => Some(protobuf),
        Some(media) if crate::http::body::is_json(media) => Some(json),
        _ => None,
    }
}

/// A refusal's status and `Retry-After`, for a protocol to add its body.
fn refusal_head(error: &ApiError) -> actix_web::HttpResponseBuilder {
    use actix_web::ResponseError;
    let mut response = actix_web::HttpResponse::build(error.status_code());
    if let Some(seconds) = error.retry_after_secs() {
        response.insert_header((header::RETRY_AFTER, seconds));
    }
    response
}

/// A body the decoder cannot read: 400, or 413 when it inflates too far.
fn decode_error(error: DecodeError) -> ApiError {
    match error {
        DecodeError::Malformed(message) => ApiError::bad_request(None, message),
        DecodeError::TooLarge(limit) => ApiError::payload_too_large(limit),
    }
}

pub fn routes(config: &mut web::ServiceConfig) {
    json::routes(config);
    otlp::routes(config);
    loki::routes(config);
    elasticsearch::routes(config);
}
