//! The ingest role: our own `POST /log` and `POST /log/bulk` (`json.rs`),
//! and the shippers' protocols, one folder each with its handler, its pure
//! decoder (`decoder.rs`) and their tests: OTLP/HTTP logs (`otlp/`), Loki
//! push (`loki/`), Elasticsearch bulk (`elasticsearch/`) and syslog over TCP
//! and UDP (`syslog/`). Each HTTP handler reads its body through
//! [`IngestState::read_body`] (`body.rs`: media type, size cap,
//! decompression, room in the queue), hands it to its decoder (ours is
//! `domain::parse`), stamps ids and receipt times, publishes to the bus and
//! answers in its protocol's shape: a success only once the bus has taken
//! the logs, 503 + Retry-After when it cannot. What the decoders share is in
//! `domain::shippers`.

mod body;
pub mod elasticsearch;
pub mod fuzzing;
mod json;
pub mod loki;
pub mod otlp;
mod settings;
pub mod syslog;

use crate::bus::{Bus, BusError};
use crate::domain::id::IdGenerator;
use crate::domain::parse::NewLog;
use crate::domain::time::Micros;
use crate::domain::{LogBatch, LogRecord};
use crate::http::error::ApiError;
use crate::metrics::{Metrics, Protocol, Rejection};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use std::sync::Arc;

pub use elasticsearch::{PRODUCT_HEADER, cluster_info, wants_cluster_info};
pub use settings::{IngestConfig, RawIngest};

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

pub fn routes(config: &mut web::ServiceConfig) {
    json::routes(config);
    otlp::routes(config);
    loki::routes(config);
    elasticsearch::routes(config);
}
