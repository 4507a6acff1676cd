//! What every Loki handler shares: the clock in nanoseconds, the
//! `categorize-labels` flag, and one bound for all the store reads an
//! answer needs (`query.timeout` and the client still there, as every
//! other read of the query role).

use super::error::LokiError;
use crate::query::QueryState;
use crate::query::client_gone::ClientSocket;
use crate::store::StoreError;
use actix_web::HttpRequest;
use std::future::Future;

pub const ENCODING_FLAGS: &str = "X-Loki-Response-Encoding-Flags";

pub fn now_nanos() -> i64 {
    crate::domain::time::now_micros().saturating_mul(1000)
}

/// Whether the client asked for structured metadata and parsed labels
/// apart (`X-Loki-Response-Encoding-Flags: categorize-labels`).
pub fn categorize_labels(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(ENCODING_FLAGS)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|flag| flag.trim().eq_ignore_ascii_case("categorize-labels"))
}

/// Runs `work` (every store read of one answer) within `query.timeout`
/// and while the client is there: 503 past the timeout, as our API.
pub async fn bounded<T>(
    state: &QueryState,
    request: &HttpRequest,
    work: impl Future<Output = Result<T, LokiError>>,
) -> Result<T, LokiError> {
    state
        .read(ClientSocket::of(request), async {
            Ok::<_, StoreError>(work.await)
        })
        .await?
}
