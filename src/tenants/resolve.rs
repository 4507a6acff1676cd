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

/// An OTLP write whose tenant may come from each resource: the resource
/// attribute naming it (`tenants.otlp_attribute`), what the credentials
/// allow, and the tenant of a resource naming none (the request's, resolved
/// as for any write; `None` when the request names none, so such records
/// are refused while those of resources naming theirs are stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceTenants {
    pub attribute: String,
    pub allowed: Allowed,
    pub fallback: Option<TenantId>,
}

impl ResourceTenants {
    /// The tenant of a resource's records, from the value of its attribute.
    pub fn of_resource(&self, named: Option<&str>) -> Result<TenantId, TenantRefusal> {
        match named {
            Some(named) => record_tenant(&self.allowed, named),
            None => self.fallback.clone().ok_or(TenantRefusal::Missing),
        }
    }
}

/// For an OTLP write with `tenants.otlp_attribute` set (`None` otherwise, or
/// with tenancy off): the request's tenant is resolved as for any write,
/// but a request naming none is not refused here, since its resources may
/// name theirs; a bad or forbidden header still is.
pub fn resolve_by_resource(
    config: &TenantsConfig,
    allowed: &Allowed,
    header: Option<&str>,
) -> Option<Result<ResourceTenants, TenantRefusal>> {
    let attribute = config.otlp_attribute.as_ref().filter(|_| config.enabled)?;
    let fallback = match resolve(config, allowed, header, Access::Write) {
        Ok(tenants) => tenants.into_iter().next(),
        Err(TenantRefusal::Missing) => None,
        Err(refusal) => return Some(Err(refusal)),
    };
    Some(Ok(ResourceTenants {
        attribute: attribute.clone(),
        allowed: allowed.clone(),
        fallback,
    }))
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
    fn resources_may_name_their_tenant_within_the_key() {
        let config = TenantsConfig {
            otlp_attribute: Some("tenant.id".into()),
            ..on(None)
        };
        assert_eq!(
            resolve_by_resource(&on(None), &Allowed::Any, None),
            None,
            "no attribute: the gate resolves as for any write"
        );
        let open = resolve_by_resource(&config, &Allowed::Any, None)
            .unwrap()
            .unwrap();
        assert_eq!(open.fallback, None, "no header: not refused yet");
        assert_eq!(
            open.of_resource(Some("team-b")),
            Ok(ids(&["team-b"])[0].clone())
        );
        assert_eq!(open.of_resource(None), Err(TenantRefusal::Missing));
        assert!(matches!(
            open.of_resource(Some("a b")),
            Err(TenantRefusal::Invalid(_))
        ));
        let bound = Allowed::Only(ids(&["team-a"]));
        let bound = resolve_by_resource(&config, &bound, None).unwrap().unwrap();
        assert_eq!(bound.fallback, Some(ids(&["team-a"])[0].clone()));
        assert_eq!(
            bound.of_resource(Some("team-b")),
            Err(TenantRefusal::NotAllowed("team-b".into()))
        );
        assert_eq!(bound.of_resource(None), Ok(ids(&["team-a"])[0].clone()));
        assert!(matches!(
            resolve_by_resource(&config, &Allowed::Any, Some("a b")),
            Some(Err(TenantRefusal::Invalid(_)))
        ));
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
