//! Who may export over gRPC. The same rules as the HTTP ingest paths (the
//! ingest rate limit, then the ingest keys) decide, but they live in
//! `security`, which `ingest` does not import: `app` hands the listener a
//! [`Gate`] that applies them, so both transports share one implementation.

use super::super::tenants::ExportTenants;
use crate::domain::TenantId;
use crate::http::error::ApiError;
use std::net::IpAddr;

/// What a call presents, read from its connection and metadata.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caller<'a> {
    /// The connection's peer, which the per-client rate limit keys on.
    pub peer: Option<IpAddr>,
    /// `x-forwarded-for`, believed only from `security.trusted_proxies`.
    pub forwarded_for: Option<&'a str>,
    /// `authorization` (`Bearer <key>`).
    pub authorization: Option<&'a str>,
    /// `x-api-key`.
    pub api_key: Option<&'a str>,
    /// `x-scope-orgid`: the tenant, as Loki's and the Collector's clients
    /// send it.
    pub tenant: Option<&'a str>,
}

pub trait Gate: Send + Sync {
    /// Whose logs the call holds (the request's tenant, or each resource's
    /// with `tenants.otlp_attribute` set), to go on; else the refusal HTTP
    /// would answer (401 without a valid ingest key or a tenant, 403 for a
    /// tenant the key may not write, 429 over the ingest rate limit),
    /// already counted.
    fn admit(&self, caller: &Caller<'_>) -> Result<ExportTenants, ApiError>;
}

/// No keys, no limit: every call goes on (tests, and a gate for roles that
/// configure none).
pub struct Open;

impl Gate for Open {
    fn admit(&self, _caller: &Caller<'_>) -> Result<ExportTenants, ApiError> {
        Ok(ExportTenants::One(TenantId::default()))
    }
}
