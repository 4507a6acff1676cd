//! The ingest role: our own `POST /log` and `POST /log/bulk` (`json.rs`),
//! and the shippers' protocols, one folder each with its handler, its pure
//! decoder (`decoder.rs`) and their tests: OTLP/HTTP logs (`otlp/`), Loki
//! push (`loki/`), Elasticsearch bulk (`elasticsearch/`) and syslog over TCP
//! and UDP (`syslog/`). Each HTTP handler reads its body through
//! [`IngestState::read_body`] (`body.rs`: media type, size cap,
//! decompression, room in the queue), hands it to its decoder (ours is
//! `domain::parse`), stamps ids and receipt times, publishes to the bus and
//! answers in its protocol's shape: a success only once the bus has taken
//! the logs, 503 + Retry-After when it cannot. What the handlers share is in
//! `state.rs` (and `ensure_room` here); what the decoders share is in
//! `domain::shippers`.

mod body;
pub mod elasticsearch;
pub mod fuzzing;
mod json;
pub mod loki;
pub mod otlp;
mod settings;
mod state;
pub mod syslog;

use crate::bus::BusError;
use crate::http::error::ApiError;
use actix_web::web;

pub use elasticsearch::{PRODUCT_HEADER, cluster_info, wants_cluster_info};
pub use settings::{IngestConfig, RawIngest};
pub use state::IngestState;

impl IngestState {
    /// Refuses work the queue cannot take before paying for parsing it: under
    /// overload, parsing bodies only to answer 503 took the CPU the batcher
    /// needed to drain the queue (measured: most of the server's time during
    /// a saturating bulk load). Only a bus that reports its depth is checked;
    /// the 503 is counted as overloaded by `count_refusal`.
    /// The bus's own answer counts too: an in-memory queue also refuses
    /// when it is full in bytes or its store's disk is (the body's bytes are
    /// not known to it yet; `publish` checks them).
    fn ensure_room(&self, logs: usize) -> Result<(), ApiError> {
        Ok(self.room(logs)?)
    }

    /// [`IngestState::ensure_room`] as the bus says it, for protocols that
    /// answer a full queue in their own terms (gRPC).
    fn room(&self, logs: usize) -> Result<(), BusError> {
        self.bus.room_for(logs, 0)?;
        let Some(pending) = self.bus.pending() else {
            return Ok(());
        };
        let wanted = (logs.max(1) as u64).min(self.config.queue_capacity as u64);
        if pending + wanted > self.config.queue_capacity as u64 {
            return Err(BusError::Full(format!(
                "{pending} logs are waiting to be stored"
            )));
        }
        Ok(())
    }
}

pub fn routes(config: &mut web::ServiceConfig) {
    json::routes(config);
    otlp::routes(config);
    loki::routes(config);
    elasticsearch::routes(config);
}
