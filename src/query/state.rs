//! What every query handler shares: the store and bus it reads, and how
//! a store read is bounded (`query.timeout`, the client still there).

use super::client_gone::{self, ClientSocket};
use super::params::{self, ParamError};
use super::scope::{ReadScope, ScopedStore};
use crate::bus::Bus;
use crate::http::error::ApiError;
use crate::metrics::Metrics;
use crate::store::alert_records::AlertRecords;
use crate::store::filter::Scope;
use crate::store::{Store, StoreError};
use crate::tenants::TenantLimiter;
use actix_web::HttpRequest;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub struct QueryState {
    pub store: Arc<dyn Store>,
    /// The store's small records: saved views (`views.rs`).
    pub records: Arc<dyn AlertRecords>,
    pub bus: Arc<dyn Bus>,
    pub metrics: Arc<Metrics>,
    /// Flips to `true` when the server is stopping: live streams close.
    pub stopping: watch::Receiver<bool>,
    /// `query.timeout`: the longest one store read may run.
    pub timeout: Duration,
    /// `[loki]`: the label model of the Loki API.
    pub loki: super::loki::LokiConfig,
    /// Each tenant's read limits (tenancy on).
    pub tenant_limits: Option<Arc<TenantLimiter>>,
    /// `[ui]`: what the dashboard asks `/api/ui` for.
    pub ui: super::ui::UiConfig,
}

impl QueryState {
    /// The store as the request's caller may read it.
    pub fn scoped(&self, request: &HttpRequest) -> ScopedStore<'_> {
        let scope = ReadScope::of(request);
        let max_range = self
            .tenant_limits
            .as_ref()
            .and_then(|limits| limits.max_query_range(scope.scope().tenants()));
        ScopedStore {
            store: &*self.store,
            scope,
            max_range,
            metrics: &self.metrics,
        }
    }

    /// Runs a store read for at most `query.timeout` and while its client
    /// (`socket`) is there. A read that runs longer, or whose client went
    /// away, is dropped, which cancels it in the store; both are counted.
    /// The first answers 503; nobody reads the second's answer.
    pub async fn read<T>(
        &self,
        socket: Option<ClientSocket>,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, ApiError> {
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.timeout, read) => outcome,
            () = client_gone::gone(socket) => {
                Metrics::add(&self.metrics.queries_abandoned, 1);
                return Err(ApiError::bad_request(None, "the client went away"));
            }
        };
        match outcome {
            Ok(outcome) => Ok(outcome?),
            Err(_) => {
                Metrics::add(&self.metrics.queries_timed_out, 1);
                Err(ApiError::unavailable(
                    format!(
                        "the query took longer than query.timeout ({:?}) and was cancelled: narrow it (a shorter time range, more filters) or raise query.timeout",
                        self.timeout
                    ),
                    1,
                ))
            }
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(error: ParamError) -> ApiError {
        ApiError::bad_parameter(&error.name, error.message).at_position(error.position)
    }
}

/// Whose logs the request may read: set on the request by the security
/// guard (its key's or session's tenants, or the tenant header); without
/// one — tenants off — the `default` tenant, without the audit log.
pub(super) fn scope_of(request: &HttpRequest) -> Scope {
    ReadScope::of(request).scope().clone()
}

/// The request's query string as name-value pairs (400 when it is not
/// one).
pub(super) fn decoded(request: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    Ok(params::decode(request.query_string())?)
}
