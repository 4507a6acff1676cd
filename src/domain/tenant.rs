//! Tenants: the teams one deployment is shared by. Every log belongs to
//! exactly one tenant (`default` while tenants are off), and every read is
//! scoped to the tenants its request may see (see `store::filter::Scope`).

use serde::{Serialize, Serializer};
use std::fmt;
use std::sync::{Arc, LazyLock};

/// A tenant id: 1–64 characters of ASCII letters, digits, `_`, `-` and `.`
/// (what Loki's `X-Scope-OrgID` allows that is also safe in paths, metric
/// labels and SQL literals). Cheap to clone: records of one request share
/// one allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

/// The tenant of every log while tenants are off, and of logs stored
/// before tenants existed.
pub const DEFAULT_TENANT: &str = "default";

static DEFAULT: LazyLock<TenantId> = LazyLock::new(|| TenantId(Arc::from(DEFAULT_TENANT)));

/// Why a tenant id was refused (a `400` naming the header or field).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid tenant id {0:?}: use 1 to 64 characters of letters, digits, '_', '-' and '.'")]
pub struct InvalidTenant(pub String);

impl TenantId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(text: &str) -> Result<TenantId, InvalidTenant> {
        let valid = !text.is_empty()
            && text.len() <= TenantId::MAX_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            let shown: String = text.chars().take(80).collect();
            return Err(InvalidTenant(shown));
        }
        if text == DEFAULT_TENANT {
            return Ok(TenantId::default());
        }
        Ok(TenantId(Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        &*self.0 == DEFAULT_TENANT
    }
}

impl Default for TenantId {
    fn default() -> TenantId {
        DEFAULT.clone()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `team-a|team-b`, as Loki's clients name several tenants in one header;
/// duplicates collapse, the order is kept.
pub fn parse_tenant_list(text: &str) -> Result<Vec<TenantId>, InvalidTenant> {
    let mut tenants: Vec<TenantId> = Vec::new();
    for part in text.split('|') {
        let tenant = TenantId::parse(part.trim())?;
        if !tenants.contains(&tenant) {
            tenants.push(tenant);
        }
    }
    Ok(tenants)
}

/// What a request's credentials allow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Allowed {
    /// A plain key, a key bound to `*`, no keys at all: any tenant it names.
    #[default]
    Any,
    /// Only these (never empty).
    Only(Vec<TenantId>),
}

impl Allowed {
    pub fn allows(&self, tenant: &TenantId) -> bool {
        match self {
            Allowed::Any => true,
            Allowed::Only(tenants) => tenants.contains(tenant),
        }
    }
}

/// The tenants a request acts for, as the gate resolved them (one for a
/// write); left on the request for the handlers (reads scope by them,
/// ingest stamps the first). Absent with tenancy off: the default tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestTenants(pub Vec<TenantId>);

impl RequestTenants {
    /// The tenant a write is stored under.
    pub fn writer(&self) -> TenantId {
        self.0.first().cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_plain() {
        assert_eq!(
            TenantId::parse("team-a.prod_1").unwrap().as_str(),
            "team-a.prod_1"
        );
        assert!(TenantId::parse("default").unwrap().is_default());
        for bad in ["", "a b", "a/b", "ä", "a|b", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(TenantId::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn lists_split_on_bars() {
        let tenants = parse_tenant_list("team-a|team-b|team-a").unwrap();
        let names: Vec<&str> = tenants.iter().map(TenantId::as_str).collect();
        assert_eq!(names, ["team-a", "team-b"]);
        assert!(parse_tenant_list("team-a||team-b").is_err());
    }
}
