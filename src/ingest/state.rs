//! What every ingest handler shares: the bus it publishes to, its settings,
//! the id generator, and the steps after decoding (stamp, publish, count a
//! refusal, shape a refusal's head). `ensure_room` is in `mod.rs`.

use super::settings::IngestConfig;
use crate::bus::{Bus, BusError};
use crate::domain::TenantId;
use crate::domain::id::IdGenerator;
use crate::domain::log::take_trace_ids;
use crate::domain::parse::NewLog;
use crate::domain::time::Micros;
use crate::domain::{LogBatch, LogRecord};
use crate::http::error::ApiError;
use crate::metrics::{Metrics, Protocol, Rejection};
use crate::tenants::TenantLimiter;
use actix_web::http::StatusCode;
use actix_web::http::header;
use std::sync::Arc;

pub struct IngestState {
    pub bus: Arc<dyn Bus>,
    pub config: IngestConfig,
    pub ids: IdGenerator,
    pub metrics: Arc<Metrics>,
    /// Each tenant's ingest rate and daily quota (tenancy on).
    pub tenant_limits: Option<Arc<TenantLimiter>>,
    /// The tenant syslog's logs are stored under (`syslog.tenant`, else
    /// `tenants.default_tenant`, else `default`): syslog names none.
    pub syslog_tenant: TenantId,
}

impl IngestState {
    /// A log as the bus carries it: an id, the receipt time when the log
    /// has none, the request's tenant, and its trace and span ids taken out
    /// of the attributes they came in.
    pub(super) fn stamp(&self, log: NewLog, received: Micros, tenant: &TenantId) -> LogRecord {
        let timestamp = log.timestamp.unwrap_or(received);
        let mut attributes = log.attributes;
        let (trace_id, span_id) = take_trace_ids(&mut attributes);
        LogRecord {
            id: self.ids.next((received / 1000) as u64),
            timestamp,
            level: log.level,
            service: log.service,
            message: log.message,
            attributes,
            tenant: tenant.clone(),
            trace_id,
            span_id,
        }
    }

    pub(super) fn stamp_all(
        &self,
        logs: Vec<NewLog>,
        received: Micros,
        tenant: &TenantId,
    ) -> LogBatch {
        logs.into_iter()
            .map(|log| self.stamp(log, received, tenant))
            .collect()
    }

    /// Takes the batch from its tenant's ingest rate and daily quota (all
    /// its logs are one tenant's), then hands it to the bus; `Ok` means it
    /// is taken (an empty batch needs nothing). Over a limit: 429 with
    /// `Retry-After`, counted as rate limited.
    pub(super) async fn publish(
        &self,
        protocol: Protocol,
        batch: LogBatch,
    ) -> Result<(), ApiError> {
        self.admit_tenant(protocol, &batch)?;
        Ok(self.publish_to_bus(protocol, batch).await?)
    }

    /// A tenant's limits, for a batch of its logs.
    pub(super) fn admit_tenant(
        &self,
        protocol: Protocol,
        batch: &LogBatch,
    ) -> Result<(), ApiError> {
        let (Some(limits), Some(first)) = (&self.tenant_limits, batch.first()) else {
            return Ok(());
        };
        let bytes = batch.iter().map(LogRecord::estimated_bytes).sum();
        limits
            .admit_ingest(
                &first.tenant,
                batch.len() as u64,
                bytes,
                std::time::Instant::now(),
                crate::domain::time::now_micros(),
            )
            .map_err(|exceeded| {
                self.metrics
                    .reject(protocol, Rejection::RateLimited, batch.len() as u64);
                self.metrics
                    .tenants
                    .limited_by(first.tenant.as_str(), exceeded.limit);
                ApiError::tenant_limit(exceeded.limit, exceeded.to_string(), exceeded.retry_after)
            })
    }

    /// Hands the batch to the bus, without the tenant's limits (syslog
    /// pushes back instead, by reading no more).
    pub(super) async fn publish_to_bus(
        &self,
        protocol: Protocol,
        batch: LogBatch,
    ) -> Result<(), BusError> {
        if batch.is_empty() {
            return Ok(());
        }
        let count = batch.len() as u64;
        let by_tenant = self.metrics.tenants.is_enabled().then(|| by_tenant(&batch));
        self.bus.publish(batch).await?;
        self.metrics.accept(protocol, count);
        for (tenant, logs) in by_tenant.into_iter().flatten() {
            self.metrics.tenants.accept(tenant.as_str(), logs);
        }
        Ok(())
    }

    /// Counts a refused request under its reason (records refused one by
    /// one inside an accepted request are counted where they are found).
    pub(super) fn count_refusal(&self, protocol: Protocol, error: &ApiError) {
        use actix_web::ResponseError;
        let reason = match error.status_code() {
            StatusCode::PAYLOAD_TOO_LARGE => Rejection::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Rejection::MediaType,
            StatusCode::SERVICE_UNAVAILABLE => Rejection::Overloaded,
            // Counted where they are decided, per log: a tenant's limit
            // (`admit`), its keys and header (the gate, OTLP's resources).
            StatusCode::TOO_MANY_REQUESTS | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return;
            }
            _ => Rejection::Invalid,
        };
        self.metrics.reject(protocol, reason, 1);
    }
}

/// How many of the batch's logs each tenant has (a batch is usually one
/// tenant's; an OTLP export naming tenants per resource may hold several).
fn by_tenant(batch: &LogBatch) -> Vec<(TenantId, u64)> {
    let mut counts: Vec<(TenantId, u64)> = Vec::new();
    for record in batch.iter() {
        match counts
            .iter_mut()
            .find(|(tenant, _)| *tenant == record.tenant)
        {
            Some((_, logs)) => *logs += 1,
            None => counts.push((record.tenant.clone(), 1)),
        }
    }
    counts
}

/// A refusal's status and `Retry-After`, for a protocol to add its body.
pub(super) fn refusal_head(error: &ApiError) -> actix_web::HttpResponseBuilder {
    use actix_web::ResponseError;
    let mut response = actix_web::HttpResponse::build(error.status_code());
    if let Some(seconds) = error.retry_after_secs() {
        response.insert_header((header::RETRY_AFTER, seconds));
    }
    response
}

/// The tenant a request's logs are stored under: the one the gate resolved,
/// or the default tenant (tenancy off leaves nothing on the request).
pub fn request_tenant(request: &actix_web::HttpRequest) -> TenantId {
    use actix_web::HttpMessage;
    request
        .extensions()
        .get::<crate::domain::tenant::RequestTenants>()
        .map(|tenants| tenants.writer())
        .unwrap_or_default()
}
