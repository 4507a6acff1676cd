//! Tenants: one deployment shared by teams. With `tenants.enabled`, every
//! request acts for a tenant (its key's, else `X-Scope-OrgID`, else the
//! default tenant, else 401), every log is stored with it, and every read
//! sees only the tenants the request may read. These tests start the real
//! binary with keys bound to tenants and ask every door as each team.

mod isolation;
mod limits;
mod metrics;
mod otlp;
mod retention;
