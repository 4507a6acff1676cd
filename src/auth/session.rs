//! Sessions after a sign-in, kept by the browser: a sealed cookie (see
//! `seal.rs`) holding who the user is, their role and tenants, and when it
//! expires (`auth.session_ttl`), so any query instance with the same secret
//! can serve it. Signing out revokes the session on the bus's coordination
//! (JetStream KV between processes), which every instance asks before it
//! trusts a cookie: a signed-out cookie is refused everywhere, not only
//! where it was signed out. A second, short-lived cookie carries a sign-in's
//! state, nonce and PKCE verifier from `/auth/login` to `/auth/callback`.

use super::seal::{Kind, RandomFailed, Sealer};
use crate::bus::coordination::{Coordination, CoordinationError};
use crate::domain::principal::{AccessRole, Credential, Principal};
use actix_web::http::header::{self, HeaderMap};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub const SESSION_COOKIE: &str = "oglogstream_session";
pub const LOGIN_COOKIE: &str = "oglogstream_login";
/// The coordination's expiring set of revoked session ids.
pub const REVOKED: &str = "revoked_sessions";
/// How long a sign-in may take at the provider.
pub const LOGIN_TTL_SECS: i64 = 600;
/// Browsers keep cookies up to 4096 bytes; past this the ID token (kept only
/// as a hint for the provider's sign-out) is left out.
const MAX_COOKIE_BYTES: usize = 3800;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random; what revocation and the CSRF token refer to.
    pub sid: String,
    pub sub: String,
    pub name: String,
    pub role: AccessRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// Seconds since the epoch.
    pub exp: i64,
    /// The ID token, as `id_token_hint` for the provider's sign-out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl Session {
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.name.clone(),
            role: self.role,
            credential: Credential::Session,
            tenants: self.tenants.clone(),
        }
    }
}

/// A sign-in between `/auth/login` and `/auth/callback`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub return_to: String,
    pub exp: i64,
}

/// What a session cookie turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    Valid(Session),
    /// Not sealed by us (another secret, tampered with, garbage).
    Invalid,
    Expired(Session),
}

pub struct Sessions {
    sealer: Sealer,
    pub ttl: Duration,
    coordination: Arc<dyn Coordination>,
}

impl Sessions {
    pub fn new(secret: &str, ttl: Duration, coordination: Arc<dyn Coordination>) -> Sessions {
        Sessions {
            sealer: Sealer::new(secret),
            ttl,
            coordination,
        }
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The cookie value of a session, with its ID token only if it fits.
    pub fn seal(&self, session: &Session) -> Result<String, RandomFailed> {
        let seal = |session: &Session| {
            let json = serde_json::to_vec(session).unwrap_or_default();
            self.sealer.seal(Kind::Session, &json)
        };
        let sealed = seal(session)?;
        if sealed.len() <= MAX_COOKIE_BYTES || session.id_token.is_none() {
            return Ok(sealed);
        }
        seal(&Session {
            id_token: None,
            ..session.clone()
        })
    }

    pub fn open(&self, value: &str, now_secs: i64) -> Opened {
        let Some(session) = self
            .sealer
            .open(Kind::Session, value)
            .and_then(|json| serde_json::from_slice::<Session>(&json).ok())
        else {
            return Opened::Invalid;
        };
        if now_secs >= session.exp {
            Opened::Expired(session)
        } else {
            Opened::Valid(session)
        }
    }

    pub fn seal_login(&self, login: &LoginState) -> Result<String, RandomFailed> {
        let json = serde_json::to_vec(login).unwrap_or_default();
        self.sealer.seal(Kind::Login, &json)
    }

    pub fn open_login(&self, value: &str, now_secs: i64) -> Option<LoginState> {
        let login: LoginState =
            serde_json::from_slice(&self.sealer.open(Kind::Login, value)?).ok()?;
        (now_secs < login.exp).then_some(login)
    }

    /// Revokes a session on every instance until it would have expired.
    pub async fn revoke(&self, session: &Session, now_secs: i64) -> Result<(), CoordinationError> {
        let left = u64::try_from(session.exp.saturating_sub(now_secs)).unwrap_or(0);
        // A minute past its expiry, for clocks a little apart.
        let keep_for = Duration::from_secs(left + 60);
        self.coordination
            .remember(REVOKED, &session.sid, keep_for)
            .await
    }

    pub async fn is_revoked(&self, session: &Session) -> Result<bool, CoordinationError> {
        self.coordination.remembers(REVOKED, &session.sid).await
    }

    pub fn csrf_token(&self, session: &Session) -> String {
        self.sealer.csrf_token(&session.sid)
    }

    pub fn csrf_token_is_valid(&self, session: &Session, token: &str) -> bool {
        self.sealer.csrf_token_is_valid(&session.sid, token)
    }
}

/// The header a state-changing request made with the session cookie must
/// carry its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` among the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// A `Set-Cookie` value: `HttpOnly` (scripts never see it), `SameSite=Lax`
/// (sent on top-level navigations from elsewhere, as the provider's redirect
/// back is, but not on other sites' requests), `Secure` when the client
/// reached us over TLS. `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> String {
    let mut cookie =
        format!("{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::coordination::MemoryCoordination;
    use actix_web::http::header::HeaderValue;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn sessions() -> Sessions {
        Sessions::new(
            SECRET,
            Duration::from_secs(3600),
            Arc::new(MemoryCoordination::new(Duration::from_secs(9))),
        )
    }

    fn session(exp: i64) -> Session {
        Session {
            sid: "sid-1".into(),
            sub: "u1".into(),
            name: "alice".into(),
            role: AccessRole::Editor,
            tenants: Some(vec!["acme".into()]),
            exp,
            id_token: Some("header.payload.signature".into()),
        }
    }

    #[tokio::test]
    async fn sealed_sessions_expire_and_are_revoked_everywhere() {
        let sessions = sessions();
        let sealed = sessions.seal(&session(1000)).unwrap();
        assert_eq!(sessions.open(&sealed, 999), Opened::Valid(session(1000)));
        assert_eq!(sessions.open(&sealed, 1000), Opened::Expired(session(1000)));
        assert_eq!(sessions.open("garbage", 0), Opened::Invalid);
        // A login-state cookie is not a session, nor the reverse.
        let login = LoginState {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            return_to: "/".into(),
            exp: 600,
        };
        let sealed_login = sessions.seal_login(&login).unwrap();
        assert_eq!(sessions.open(&sealed_login, 0), Opened::Invalid);
        assert_eq!(sessions.open_login(&sealed, 0), None);
        assert_eq!(sessions.open_login(&sealed_login, 599), Some(login));
        assert_eq!(sessions.open_login(&sealed_login, 600), None, "expired");

        let valid = session(i64::MAX / 2);
        assert!(!sessions.is_revoked(&valid).await.unwrap());
        sessions.revoke(&valid, 0).await.unwrap();
        assert!(sessions.is_revoked(&valid).await.unwrap());
        let token = sessions.csrf_token(&valid);
        assert!(sessions.csrf_token_is_valid(&valid, &token));
        assert!(!sessions.csrf_token_is_valid(&session(5), "x"));
    }

    #[test]
    fn an_oversized_id_token_is_left_out_of_the_cookie() {
        let sessions = sessions();
        let mut big = session(1000);
        big.id_token = Some("x".repeat(4000));
        let sealed = sessions.seal(&big).unwrap();
        assert!(sealed.len() <= MAX_COOKIE_BYTES);
        let Opened::Valid(opened) = sessions.open(&sealed, 0) else {
            panic!("opens")
        };
        assert_eq!(opened.id_token, None);
        assert_eq!(opened.name, "alice");
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; oglogstream_session=abc_-; b=2"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("oglogstream_login=\"xyz\""),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc_-"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
        assert_eq!(
            set_cookie(SESSION_COOKIE, "v", 60, true),
            "oglogstream_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!set_cookie(SESSION_COOKIE, "", 0, false).contains("Secure"));
    }
}
