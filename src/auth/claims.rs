//! From a signed-in user's claims to who they are here: a display name, the
//! highest role any of their groups grants (`auth.oidc.roles`), and the
//! tenants they may read (`auth.oidc.tenants_claim`). Pure.

use super::settings::OidcConfig;
use crate::domain::principal::AccessRole;
use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub name: String,
    pub role: AccessRole,
    pub tenants: Option<Vec<String>>,
}

/// Why a verified user still gets no session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NoRole(pub String);

/// The claim's values: a string, or the strings of an array. A name is
/// first looked up as written (providers use URLs as claim names, dots
/// included), then as a dotted path into nested objects
/// (`realm_access.roles`).
pub fn values(claims: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    let value = claims.get(name).or_else(|| {
        let mut parts = name.split('.');
        let first = claims.get(parts.next()?)?;
        parts.try_fold(first, |value, part| value.get(part))
    })?;
    match value {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => None,
    }
}

pub fn identity(claims: &Map<String, Value>, config: &OidcConfig) -> Result<Identity, NoRole> {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let subject = text("sub").unwrap_or_default().to_string();
    let name = ["preferred_username", "email", "name"]
        .into_iter()
        .find_map(text)
        .unwrap_or(&subject)
        .to_string();
    let groups = values(claims, &config.roles_claim).unwrap_or_default();
    // Highest role first in the configuration.
    let role = config
        .roles
        .iter()
        .find(|(_, granting)| granting.iter().any(|value| groups.contains(value)))
        .map(|(role, _)| *role)
        .ok_or_else(|| {
            NoRole(format!(
                "{name} has none of the {} values that grant a role here (auth.oidc.roles)",
                config.roles_claim
            ))
        })?;
    // A configured claim the token lacks means no tenant, not every tenant.
    let tenants = config
        .tenants_claim
        .as_deref()
        .map(|claim| values(claims, claim).unwrap_or_default());
    Ok(Identity {
        subject,
        name,
        role,
        tenants,
    })
}

#[cfg(test)]
mod tests {
    use super::super::settings::{RawAuth, RawOidc, RawRoles};
    use super::*;
    use serde_json::json;

    fn config(roles_claim: &str, tenants_claim: &str) -> OidcConfig {
        RawAuth {
            session_secret: "0123456789abcdef0123456789abcdef".into(),
            oidc: RawOidc {
                issuer: "https://id.example.com".into(),
                client_id: "ogl".into(),
                redirect_url: "https://logs.example.com/auth/callback".into(),
                roles_claim: roles_claim.into(),
                tenants_claim: tenants_claim.into(),
                roles: RawRoles {
                    viewer: vec!["devs".into()],
                    editor: vec!["sre".into()],
                    admin: vec!["platform".into()],
                },
                ..Default::default()
            },
            ..Default::default()
        }
        .validate()
        .unwrap()
        .oidc
        .unwrap()
    }

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_highest_role_any_group_grants() {
        let config = config("groups", "");
        let alice =
            claims(json!({"sub": "1", "preferred_username": "alice", "groups": ["devs", "sre"]}));
        let identity = identity(&alice, &config).unwrap();
        assert_eq!(identity.role, AccessRole::Editor);
        assert_eq!(identity.name, "alice");
        assert_eq!(identity.tenants, None, "no tenants claim configured");
        let paula = claims(json!({"sub": "2", "email": "p@example.com", "groups": "platform"}));
        let identity_paula = super::identity(&paula, &config).unwrap();
        assert_eq!(identity_paula.role, AccessRole::Admin);
        assert_eq!(identity_paula.name, "p@example.com");
        let nobody = claims(json!({"sub": "3", "groups": ["marketing"]}));
        let error = super::identity(&nobody, &config).unwrap_err();
        assert!(
            error.0.contains("3 has none of the groups values"),
            "{error}"
        );
        assert!(super::identity(&claims(json!({"sub": "4"})), &config).is_err());
    }

    #[test]
    fn nested_and_url_named_claims_and_tenants() {
        let keycloak = config("realm_access.roles", "tenants");
        let user = claims(
            json!({"sub": "1", "realm_access": {"roles": ["offline", "devs"]},
                                 "tenants": ["acme", "globex"]}),
        );
        let identity = identity(&user, &keycloak).unwrap();
        assert_eq!(identity.role, AccessRole::Viewer);
        assert_eq!(identity.tenants, Some(vec!["acme".into(), "globex".into()]));
        assert_eq!(identity.name, "1");
        let no_tenants = claims(json!({"sub": "1", "realm_access": {"roles": ["devs"]}}));
        assert_eq!(
            super::identity(&no_tenants, &keycloak).unwrap().tenants,
            Some(vec![])
        );
        let auth0 = config("https://logs.example.com/roles", "");
        let user = claims(json!({"sub": "1", "https://logs.example.com/roles": ["platform"]}));
        assert_eq!(
            super::identity(&user, &auth0).unwrap().role,
            AccessRole::Admin
        );
        assert_eq!(values(&claims(json!({"a": 5})), "a"), None);
    }
}
