//! Per-request telemetry: a request id (the client's `X-Request-Id` when it is
//! sane, a fresh one otherwise) on the tracing span of the whole request and
//! on the response, a latency sample per route pattern and status, and one
//! log line per request (DEBUG; 5xx at WARN).

use crate::domain::id::IdGenerator;
use crate::http::health::is_up;
use crate::metrics::Metrics;
use actix_web::HttpResponse;
use actix_web::http::header::HeaderValue;
use actix_web::web;

pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    /// The id of the request a handler is serving, for an answer that must
    /// name it (a 500's body: the client quotes it, the log line carries it).
    static CURRENT_REQUEST_ID: String;
}

/// Runs a request's handling with its id available to [`current_request_id`].
pub fn with_request_id<F: std::future::Future>(
    id: String,
    handling: F,
) -> impl std::future::Future<Output = F::Output> {
    CURRENT_REQUEST_ID.scope(id, handling)
}

/// The id of the request being served, inside [`with_request_id`].
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Ids are echoed into logs and headers, so only short, printable ones are taken.
pub fn request_id(incoming: Option<&HeaderValue>, ids: &IdGenerator) -> String {
    incoming
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| ids.next((crate::domain::time::now_micros() / 1000) as u64))
}

/// The label for a response's route: the matched pattern, never the raw path
/// (which would let clients create unbounded label values).
pub fn route_label(pattern: Option<String>) -> String {
    pattern.unwrap_or_else(|| "other".to_string())
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(state: web::Data<MetricsState>) -> HttpResponse {
    // The dependencies as /health sees them, both at once: a scrape takes
    // at most one check timeout even when both are down.
    let storage_check = async {
        match &state.store {
            Some(store) => Some(is_up(store.check()).await),
            None => None,
        }
    };
    let used_bytes = async {
        match &state.store {
            Some(store) => store.used_bytes().await,
            None => None,
        }
    };
    let (bus_up, storage_up, store_used_bytes) =
        tokio::join!(is_up(state.bus.check()), storage_check, used_bytes);
    let mut dependencies_up = vec![("bus", bus_up)];
    dependencies_up.extend(storage_up.map(|up| ("storage", up)));
    let gauges = crate::metrics::Gauges {
        dependencies_up,
        queue_depth: state.bus.pending(),
        queue_capacity: state.bus.capacity(),
        dead_letters_total: state.dead_letters_before_start
            + Metrics::get(&state.metrics.dead_letter_logs),
        store_size_bytes: state.store.as_ref().and_then(|store| store.size_bytes()),
        store_used_bytes,
        disk: state
            .store
            .as_ref()
            .and_then(|store| store.disk_watch())
            .map(|watch| watch.status()),
        store_index_backlog: state.store.as_ref().and_then(|store| store.index_backlog()),
        stream_fill: state.bus.stream_fill(),
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&gauges))
}

pub struct MetricsState {
    pub metrics: std::sync::Arc<Metrics>,
    pub bus: std::sync::Arc<dyn crate::bus::Bus>,
    pub store: Option<std::sync::Arc<dyn crate::store::Store>>,
    pub dead_letters_before_start: u64,
}
