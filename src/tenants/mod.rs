//! Tenants: one deployment shared by many teams. With `tenants.enabled`,
//! every request acts for a tenant (`resolve.rs`: its key's, the
//! `X-Scope-OrgID` header's, or the default tenant), every log is stored
//! with its tenant, and every read is scoped to the request's tenants
//! (`store::filter::Scope`). Each tenant has its own limits (`limits.rs`),
//! which the overrides file changes while the server runs (`overrides.rs`).
//! Off (the default), every log belongs to `default` and nothing changes.

pub mod limits;
pub mod overrides;
pub mod resolve;
pub mod settings;

pub use limits::{LimitExceeded, LiveSlot, TenantLimiter};
pub use resolve::{
    Access, Allowed, ResourceTenants, TENANT_HEADER, TenantRefusal, resolve, resolve_by_resource,
};
pub use settings::{RawRetentionRule, RawTenants, RetentionRule, TenantsConfig};
