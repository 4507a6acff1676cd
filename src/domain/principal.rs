//! Who a request acts as: a signed-in user, an API key, or nobody in
//! particular (`anonymous`, where the configuration leaves reads or
//! everything open), with the access role that decides what it may do and,
//! for users of a provider that names them, the tenants it may read. Pure:
//! the security middleware builds it, handlers read it from the request.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// What a caller may do, each role including the ones below it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AccessRole {
    /// Reads logs: every read endpoint, live tail, export, the Loki API.
    Viewer,
    /// Also manages alert rules, channels and saved views.
    Editor,
    /// Also reads the audit log and the tenants' usage.
    Admin,
}

impl AccessRole {
    pub const ALL: [AccessRole; 3] = [AccessRole::Viewer, AccessRole::Editor, AccessRole::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessRole::Viewer => "viewer",
            AccessRole::Editor => "editor",
            AccessRole::Admin => "admin",
        }
    }
}

impl fmt::Display for AccessRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccessRole {
    type Err = String;

    fn from_str(text: &str) -> Result<AccessRole, String> {
        AccessRole::ALL
            .into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("unknown role {text:?}: use viewer, editor or admin"))
    }
}

/// How the caller proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// The session cookie of a sign-in: state-changing requests need the
    /// session's CSRF token too.
    Session,
    /// An API key (header, Basic password, or `api_key` on a WebSocket).
    Key,
    /// Nothing: the configuration leaves this access open.
    Anonymous,
}

impl Credential {
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::Session => "session",
            Credential::Key => "key",
            Credential::Anonymous => "anonymous",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user's name as the provider gives it, `key:sha256:<first 16 hex
    /// digits>` for a key (a fingerprint: never the key), or `anonymous`.
    pub name: String,
    pub role: AccessRole,
    pub credential: Credential,
    /// The tenants a signed-in user may read, from `auth.oidc.tenants_claim`;
    /// `None` when no such claim is configured (or for keys): no tenant
    /// restriction of this principal's own.
    pub tenants: Option<Vec<String>>,
}

impl Principal {
    pub fn anonymous(role: AccessRole) -> Principal {
        Principal {
            name: "anonymous".into(),
            role,
            credential: Credential::Anonymous,
            tenants: None,
        }
    }

    pub fn may(&self, needed: AccessRole) -> bool {
        self.role >= needed
    }
}

/// Whether this principal's reads may show the audit log's records. The one
/// place this is decided: the query role's read scope asks it for every read
/// (see `query::scope`), and the store's read scope will, once `LogFilter`
/// carries one.
pub fn may_read_audit(principal: &Principal) -> bool {
    principal.role >= AccessRole::Admin
}

/// What the security middleware learnt about a request, left in its
/// extensions for handlers: who it acts as (`None` on open routes, which
/// check no credentials) and from which address (the client behind trusted
/// proxies).
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Option<Principal>,
    pub client_ip: Option<IpAddr>,
}

impl Caller {
    /// Whether this caller's reads may show the audit log: never for a
    /// caller whose principal is unknown.
    pub fn may_read_audit(&self) -> bool {
        self.principal.as_ref().is_some_and(may_read_audit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_case_insensitively() {
        assert!(AccessRole::Viewer < AccessRole::Editor);
        assert!(AccessRole::Editor < AccessRole::Admin);
        assert_eq!("Editor".parse::<AccessRole>(), Ok(AccessRole::Editor));
        let error = "owner".parse::<AccessRole>().unwrap_err();
        assert!(error.contains("viewer, editor or admin"), "{error}");
        let viewer = Principal::anonymous(AccessRole::Viewer);
        assert!(viewer.may(AccessRole::Viewer));
        assert!(!viewer.may(AccessRole::Editor));
        assert!(!may_read_audit(&viewer));
        assert!(!may_read_audit(&Principal::anonymous(AccessRole::Editor)));
        assert!(may_read_audit(&Principal::anonymous(AccessRole::Admin)));
    }
}
