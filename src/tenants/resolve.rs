//! Which tenant a request acts for, in the order the issue of tenants set
//! out: the tenant its key (or signed-in user) is bound to, else the
//! `X-Scope-OrgID` header (as Loki's clients and Grafana send it), else
//! `tenants.default_tenant`, else a `401` naming the header. A binding that
//! does not cover a named tenant is a `403`; a malformed id a `400`. Pure.

use super::settings::TenantsConfig;
pub use crate::domain::tenant::Allowed;
use crate::domain::tenant::{InvalidTenant, TenantId, parse_tenant_list};

/// The header Loki, Grafana, Promtail, Alloy and the Loki clients send.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// Why no tenant: each maps to one status with `field: "X-Scope-OrgID"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TenantRefusal {
    /// 401.
    #[error(
        "this request needs a tenant: send the header X-Scope-OrgID (or use a key bound to one tenant)"
    )]
    Missing,
    /// 400.
    #[error("{0}")]
    Invalid(InvalidTenant),
    /// 400: logs go to exactly one tenant.
    #[error("logs are written to one tenant at a time: X-Scope-OrgID names several")]
    Several,
    /// 403.
    #[error("this key or user may not use tenant {0:?}")]
    NotAllowed(String),
}

/// What the request is doing: ingest writes to one tenant, reads may span
/// several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Write,
    Read,
}

/// The tenants the request acts for (one for a write); `default` alone
/// while tenants are off, whatever the request says.
pub fn resolve(
    config: &TenantsConfig,
    allowed: &Allowed,
    header: Option<&str>,
    access: Access,
) -> Result<Vec<TenantId>, TenantRefusal> {
    if !config.enabled {
        return Ok(vec![TenantId::default()]);
    }
    let named = match header.map(str::trim).filter(|h| !h.is_empty()) {
        Some(header) => Some(parse_tenant_list(header).map_err(TenantRefusal::Invalid)?),
        None => None,
    };
    let tenants = match (named, allowed) {
        (Some(named), _) => {
            if let Some(refused) = named.iter().find(|t| !allowed.allows(t)) {
                return Err(TenantRefusal::NotAllowed(refused.to_string()));
            }
            named
        }
        // A key bound to one tenant names it; bound to several, a read sees
        // them all and a write must say which.
        (None, Allowed::Only(bound)) => match (bound.as_slice(), access) {
            ([one], _) => vec![one.clone()],
            (_, Access::Read) => bound.clone(),
            (_, Access::Write) => return Err(TenantRefusal::Missing),
        },
        (None, Allowed::Any) => match &config.default_tenant {
            Some(tenant) => vec![tenant.clone()],
            None => return Err(TenantRefusal::Missing),
        },
    };
    if access == Access::Write && tenants.len() > 1 {
        return Err(TenantRefusal::Several);
    }
    Ok(tenants)
}

/// The tenant of one record that names its own (an OTLP resource
/// attribute): allowed only where the request's credentials allow it.
pub fn record_tenant(allowed: &Allowed, named: &str) -> Result<TenantId, TenantRefusal> {
    let tenant = TenantId::parse(named.trim()).map_err(TenantRefusal::Invalid)?;
    if !allowed.allows(&tenant) {
        return Err(TenantRefusal::NotAllowed(tenant.to_string()));
    }
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(default_tenant: Option<&str>) -> TenantsConfig {
        TenantsConfig {
            enabled: true,
            default_tenant: default_tenant.map(|t| TenantId::parse(t).unwrap()),
            ..TenantsConfig::default()
        }
    }

    fn ids(names: &[&str]) -> Vec<TenantId> {
        names.iter().map(|n| TenantId::parse(n).unwrap()).collect()
    }

    #[test]
    fn off_means_default_whatever_is_sent() {
        let off = TenantsConfig::default();
        assert_eq!(
            resolve(&off, &Allowed::Any, Some("team-a|x y"), Access::Read),
            Ok(ids(&["default"]))
        );
    }

    #[test]
    fn the_order_is_key_then_header_then_default_then_401() {
        let bound = Allowed::Only(ids(&["team-a"]));
        assert_eq!(
            resolve(&on(None), &bound, None, Access::Write),
            Ok(ids(&["team-a"]))
        );
        assert_eq!(
            resolve(&on(None), &Allowed::Any, Some("team-b"), Access::Write),
            Ok(ids(&["team-b"]))
        );
        assert_eq!(
            resolve(&on(Some("shared")), &Allowed::Any, None, Access::Read),
            Ok(ids(&["shared"]))
        );
        assert_eq!(
            resolve(&on(None), &Allowed::Any, None, Access::Read),
            Err(TenantRefusal::Missing)
        );
    }

    #[test]
    fn a_bound_key_may_name_only_its_tenants() {
        let bound = Allowed::Only(ids(&["team-a", "team-c"]));
        assert_eq!(
            resolve(&on(None), &bound, Some("team-b"), Access::Read),
            Err(TenantRefusal::NotAllowed("team-b".into()))
        );
        assert_eq!(
            resolve(&on(None), &bound, Some("team-a|team-c"), Access::Read),
            Ok(ids(&["team-a", "team-c"]))
        );
        assert_eq!(
            resolve(&on(None), &bound, None, Access::Read),
            Ok(ids(&["team-a", "team-c"]))
        );
        assert_eq!(
            resolve(&on(None), &bound, None, Access::Write),
            Err(TenantRefusal::Missing),
            "a write must say which of its tenants"
        );
    }

    #[test]
    fn malformed_and_several_are_400() {
        assert!(matches!(
            resolve(&on(None), &Allowed::Any, Some("a b"), Access::Read),
            Err(TenantRefusal::Invalid(_))
        ));
        assert_eq!(
            resolve(
                &on(None),
                &Allowed::Any,
                Some("team-a|team-b"),
                Access::Write
            ),
            Err(TenantRefusal::Several)
        );
        assert!(record_tenant(&Allowed::Only(ids(&["team-a"])), "team-b").is_err());
        assert_eq!(
            record_tenant(&Allowed::Any, " team-b ").unwrap().as_str(),
            "team-b"
        );
    }
}
