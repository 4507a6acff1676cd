//! `[auth]` and `[auth.oidc]`: sign-in with an OpenID Connect provider, the
//! session cookie's secret and lifetime, and which claim values grant which
//! role. Sign-in is off until `auth.oidc.issuer` is set.

use crate::domain::principal::AccessRole;
use crate::domain::settings::{InvalidSetting, duration};
use actix_web::http::Uri;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// Seals session cookies; the same on every query instance. 32+ characters.
    pub session_secret: String,
    pub session_ttl: String,
    pub oidc: RawOidc,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth {
            session_secret: String::new(),
            session_ttl: "12h".into(),
            oidc: RawOidc::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    pub post_logout_redirect_url: String,
    pub scopes: Vec<String>,
    pub roles_claim: String,
    pub roles: RawRoles,
    pub tenants_claim: String,
}

impl Default for RawOidc {
    fn default() -> Self {
        RawOidc {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            redirect_url: String::new(),
            post_logout_redirect_url: String::new(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            roles_claim: "groups".into(),
            roles: RawRoles::default(),
            tenants_claim: String::new(),
        }
    }
}

/// Claim values (groups) granting each role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRoles {
    pub viewer: Vec<String>,
    pub editor: Vec<String>,
    pub admin: Vec<String>,
}

/// A secret from the configuration: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// `None`: sign-in is off (API keys only, or open).
    pub oidc: Option<OidcConfig>,
    pub session_secret: Option<Secret>,
    pub session_ttl: Duration,
}

#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// As configured: the provider's discovery document must name exactly it.
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client (PKCE only).
    pub client_secret: Option<Secret>,
    pub redirect_url: String,
    /// Where the provider sends the browser after signing out there.
    pub post_logout_redirect_url: String,
    pub scopes: Vec<String>,
    /// A claim name, or a dotted path into nested claims
    /// (`realm_access.roles`, Keycloak's realm roles).
    pub roles_claim: String,
    /// Claim values granting each role, highest role first.
    pub roles: Vec<(AccessRole, Vec<String>)>,
    pub tenants_claim: Option<String>,
}

/// Shortest and longest `auth.session_ttl`.
const MIN_TTL: Duration = Duration::from_secs(60);
const MAX_TTL: Duration = Duration::from_secs(30 * 86_400);
const MIN_SECRET_CHARS: usize = 32;

impl RawAuth {
    pub fn validate(&self) -> Result<AuthConfig, InvalidSetting> {
        let session_ttl = duration("auth.session_ttl", &self.session_ttl)?;
        if !(MIN_TTL..=MAX_TTL).contains(&session_ttl) {
            return Err(InvalidSetting::new(
                "auth.session_ttl",
                "must be between 1m and 720h",
            ));
        }
        let secret = self.session_secret.trim();
        let session_secret = match secret {
            "" => None,
            secret if secret.chars().count() < MIN_SECRET_CHARS => {
                return Err(InvalidSetting::new(
                    "auth.session_secret",
                    format!(
                        "must be at least {MIN_SECRET_CHARS} characters (e.g. head -c 32 /dev/urandom | base64)"
                    ),
                ));
            }
            secret => Some(Secret(secret.to_string())),
        };
        let oidc = self.oidc.validate()?;
        if oidc.is_some() && session_secret.is_none() {
            return Err(InvalidSetting::new(
                "auth.session_secret",
                "sign-in (auth.oidc.issuer) needs a secret to seal session cookies: 32+ characters, the same on every query instance",
            ));
        }
        Ok(AuthConfig {
            oidc,
            session_secret,
            session_ttl,
        })
    }
}

impl RawOidc {
    fn validate(&self) -> Result<Option<OidcConfig>, InvalidSetting> {
        let issuer = self.issuer.trim();
        if issuer.is_empty() {
            return Ok(None);
        }
        provider_url("auth.oidc.issuer", issuer)?;
        let client_id = self.client_id.trim();
        if client_id.is_empty() {
            return Err(InvalidSetting::new(
                "auth.oidc.client_id",
                "sign-in needs the client id registered with the provider",
            ));
        }
        let redirect_url = self.redirect_url.trim();
        let redirect = browser_url("auth.oidc.redirect_url", redirect_url)?;
        if !redirect.path().ends_with("/auth/callback") {
            return Err(InvalidSetting::new(
                "auth.oidc.redirect_url",
                "must end in /auth/callback, e.g. https://logs.example.com/auth/callback",
            ));
        }
        let post_logout_redirect_url = match self.post_logout_redirect_url.trim() {
            "" => {
                // The dashboard's root: the redirect URL without /auth/callback.
                let root = redirect_url
                    .split('?')
                    .next()
                    .unwrap_or(redirect_url)
                    .trim_end_matches("/auth/callback");
                format!("{root}/")
            }
            url => {
                browser_url("auth.oidc.post_logout_redirect_url", url)?;
                url.to_string()
            }
        };
        let scopes: Vec<String> = self
            .scopes
            .iter()
            .map(|scope| scope.trim().to_string())
            .filter(|scope| !scope.is_empty())
            .collect();
        if !scopes.iter().any(|scope| scope == "openid") {
            return Err(InvalidSetting::new(
                "auth.oidc.scopes",
                "must include openid",
            ));
        }
        if let Some(bad) = scopes.iter().find(|s| s.contains(char::is_whitespace)) {
            return Err(InvalidSetting::new(
                "auth.oidc.scopes",
                format!("{bad:?} holds a space: list each scope on its own"),
            ));
        }
        let roles_claim = self.roles_claim.trim();
        if roles_claim.is_empty() {
            return Err(InvalidSetting::new(
                "auth.oidc.roles_claim",
                "must name the claim holding the user's groups (groups by default)",
            ));
        }
        let clean = |values: &[String]| -> Vec<String> {
            values
                .iter()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect()
        };
        let roles = vec![
            (AccessRole::Admin, clean(&self.roles.admin)),
            (AccessRole::Editor, clean(&self.roles.editor)),
            (AccessRole::Viewer, clean(&self.roles.viewer)),
        ];
        if roles.iter().all(|(_, values)| values.is_empty()) {
            return Err(InvalidSetting::new(
                "auth.oidc.roles",
                "no claim value grants a role, so nobody could sign in: e.g. roles = { viewer = [\"devs\"], editor = [\"sre\"], admin = [\"platform\"] }",
            ));
        }
        let client_secret = Some(self.client_secret.trim())
            .filter(|s| !s.is_empty())
            .map(|s| Secret(s.to_string()));
        Ok(Some(OidcConfig {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            client_secret,
            redirect_url: redirect_url.to_string(),
            post_logout_redirect_url,
            scopes,
            roles_claim: roles_claim.to_string(),
            roles,
            tenants_claim: Some(self.tenants_claim.trim().to_string()).filter(|c| !c.is_empty()),
        }))
    }
}

/// A URL of the provider: `https://`, or `http://` on a loopback address
/// only (a provider in a test), since tokens travel over it.
pub fn provider_url(key: &str, url: &str) -> Result<Uri, InvalidSetting> {
    let uri: Uri = url
        .parse()
        .map_err(|_| InvalidSetting::new(key, format!("{url:?} is not a URL")))?;
    let host = uri
        .host()
        .ok_or_else(|| InvalidSetting::new(key, format!("{url:?} has no host")))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(InvalidSetting::new(
            key,
            format!(
                "{url:?}: the provider must be https:// (http:// only on a loopback address, for tests)"
            ),
        )),
        _ => Err(InvalidSetting::new(
            key,
            format!("{url:?}: use an https:// URL"),
        )),
    }
}

/// A URL the browser is sent to: `http://` or `https://` with a host.
fn browser_url(key: &str, url: &str) -> Result<Uri, InvalidSetting> {
    let uri: Uri = url
        .parse()
        .map_err(|_| InvalidSetting::new(key, format!("{url:?} is not a URL")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(InvalidSetting::new(
            key,
            format!("{url:?}: use the dashboard's absolute http:// or https:// address"),
        ));
    }
    Ok(uri)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawAuth {
        RawAuth {
            session_secret: "0123456789abcdef0123456789abcdef".into(),
            session_ttl: "8h".into(),
            oidc: RawOidc {
                issuer: "https://id.example.com/realms/main".into(),
                client_id: "oglogstream".into(),
                client_secret: "s3cret".into(),
                redirect_url: "https://logs.example.com/auth/callback".into(),
                roles: RawRoles {
                    viewer: vec!["devs".into()],
                    editor: vec!["sre".into()],
                    admin: vec![" platform ".into()],
                },
                ..RawOidc::default()
            },
        }
    }

    fn key_of(raw: RawAuth) -> String {
        raw.validate().unwrap_err().key
    }

    #[test]
    fn off_by_default_and_validated_when_on() {
        let off = RawAuth::default().validate().unwrap();
        assert!(off.oidc.is_none());
        assert_eq!(off.session_ttl, Duration::from_secs(12 * 3600));
        let on = raw().validate().unwrap();
        let oidc = on.oidc.unwrap();
        assert_eq!(oidc.post_logout_redirect_url, "https://logs.example.com/");
        assert_eq!(oidc.roles[0], (AccessRole::Admin, vec!["platform".into()]));
        assert_eq!(oidc.roles_claim, "groups");
        assert_eq!(oidc.tenants_claim, None);
        assert!(!format!("{:?}", oidc.client_secret).contains("s3cret"));
        assert!(!format!("{:?}", on.session_secret).contains("0123"));
    }

    #[test]
    fn every_bad_setting_is_named() {
        let mut plain_http = raw();
        plain_http.oidc.issuer = "http://id.example.com".into();
        assert_eq!(key_of(plain_http), "auth.oidc.issuer");
        let mut loopback = raw();
        loopback.oidc.issuer = "http://127.0.0.1:9000".into();
        assert!(loopback.validate().is_ok());
        let mut no_secret = raw();
        no_secret.session_secret = String::new();
        assert_eq!(key_of(no_secret), "auth.session_secret");
        let mut short_secret = raw();
        short_secret.session_secret = "short".into();
        assert_eq!(key_of(short_secret), "auth.session_secret");
        let mut no_client = raw();
        no_client.oidc.client_id = " ".into();
        assert_eq!(key_of(no_client), "auth.oidc.client_id");
        let mut redirect = raw();
        redirect.oidc.redirect_url = "https://logs.example.com/callback".into();
        assert_eq!(key_of(redirect), "auth.oidc.redirect_url");
        let mut relative = raw();
        relative.oidc.redirect_url = "/auth/callback".into();
        assert_eq!(key_of(relative), "auth.oidc.redirect_url");
        let mut no_openid = raw();
        no_openid.oidc.scopes = vec!["profile".into()];
        assert_eq!(key_of(no_openid), "auth.oidc.scopes");
        let mut no_roles = raw();
        no_roles.oidc.roles = RawRoles::default();
        assert_eq!(key_of(no_roles), "auth.oidc.roles");
        let mut ttl = raw();
        ttl.session_ttl = "10s".into();
        assert_eq!(key_of(ttl), "auth.session_ttl");
    }
}
