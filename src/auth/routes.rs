//! The sign-in flow's endpoints:
//! - `GET /auth/login?return_to=/explorer`: to the provider, with a fresh
//!   state, nonce and PKCE verifier in a sealed, short-lived cookie.
//! - `GET /auth/callback?code&state`: back from the provider; checks the
//!   state, exchanges the code, verifies the ID token (signature, issuer,
//!   audience, expiry, nonce), maps the groups to a role, sets the session
//!   cookie and sends the browser where it was going.
//! - `POST /auth/logout` (with the CSRF token): revokes the session on every
//!   instance, deletes the cookie, and answers where the browser should go
//!   to end the provider's session too.
//! - `GET /auth/me`: who the caller is, its role, what it may do and its
//!   CSRF token, for the dashboard.
//!
//! Every sign-in, failed sign-in and sign-out is audited.

use super::claims::{self, Identity};
use super::gate::{Gate, Identified};
use super::provider::{Provider, ProviderError};
use super::session::{
    CSRF_HEADER, LOGIN_COOKIE, LOGIN_TTL_SECS, LoginState, Opened, SESSION_COOKIE, Session, cookie,
    set_cookie,
};
use crate::domain::audit::{Actor, AuditEvent, Outcome, action};
use crate::domain::principal::Principal;
use crate::domain::time::now_micros;
use crate::http::error::ApiError;
use crate::security::access::{HANDLER_PERMISSIONS, ROLE_RULES};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// What the sign-in endpoints share.
pub struct SignIn {
    pub gate: Arc<Gate>,
    /// `None` while sign-in is off.
    pub provider: Option<Arc<Provider>>,
}

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/auth/login", web::get().to(login))
        .route("/auth/callback", web::get().to(callback))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/me", web::get().to(me));
}

fn now_secs() -> i64 {
    now_micros() / 1_000_000
}

impl SignIn {
    fn secure(&self, request: &HttpRequest) -> bool {
        self.gate.guard.is_secure(
            request.head(),
            request.peer_addr().map(|a| a.ip()),
            request.app_config().secure(),
        )
    }

    fn event(
        &self,
        request: &HttpRequest,
        action: &str,
        outcome: Outcome,
        actor: Actor,
    ) -> AuditEvent {
        let mut event = AuditEvent::new(action, outcome, actor);
        event.client_ip = self
            .gate
            .guard
            .client_ip(request.head(), request.peer_addr().map(|a| a.ip()));
        event.method = Some(request.method().to_string());
        event.path = Some(request.path().to_string());
        event.request_id = crate::http::telemetry::current_request_id();
        event
    }

    fn provider(&self) -> Result<&Arc<Provider>, ApiError> {
        self.provider.as_ref().ok_or_else(|| {
            ApiError::not_found("sign-in is not configured: set [auth.oidc] (docs/security.md)")
                .with_field("auth.oidc")
        })
    }
}

/// Only a path of ours: never another site (an open redirect).
fn safe_return_to(text: Option<&str>) -> String {
    match text {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.starts_with("/auth/")
                && path.len() <= 2048
                && !path.chars().any(char::is_control) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

/// `GET /auth/login`
async fn login(request: HttpRequest, sign_in: web::Data<SignIn>) -> Result<HttpResponse, ApiError> {
    let provider = sign_in.provider()?;
    let sessions = sign_in
        .gate
        .sessions
        .as_ref()
        .ok_or_else(|| ApiError::internal("sign-in without sessions"))?;
    let query: LoginQuery = web::Query::<LoginQuery>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or(LoginQuery { return_to: None });
    let metadata = provider.metadata().await.map_err(provider_unavailable)?;
    let random = |bytes| {
        sessions
            .sealer()
            .random_text(bytes)
            .map_err(ApiError::internal)
    };
    let login = LoginState {
        state: random(16)?,
        nonce: random(16)?,
        verifier: random(32)?,
        return_to: safe_return_to(query.return_to.as_deref()),
        exp: now_secs() + LOGIN_TTL_SECS,
    };
    let sealed = sessions.seal_login(&login).map_err(ApiError::internal)?;
    let location =
        provider.authorization_url(&metadata, &login.state, &login.nonce, &login.verifier);
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .append_header((
            header::SET_COOKIE,
            set_cookie(
                LOGIN_COOKIE,
                &sealed,
                LOGIN_TTL_SECS as u64,
                sign_in.secure(&request),
            ),
        ))
        .finish())
}

/// Discovery failed: the provider is away (a warning), or its answer does
/// not fit the configuration (an error: an operator must act). Either way
/// nobody can sign in until it is fixed: `503`.
fn provider_unavailable(error: ProviderError) -> ApiError {
    match error {
        ProviderError::Unavailable(_) => tracing::warn!(%error, "sign-in provider unavailable"),
        _ => tracing::error!(%error, "sign-in provider misconfigured: check auth.oidc.issuer"),
    }
    ApiError::unavailable(error.to_string(), 5)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// RFC 9207: the provider that answered, where it says.
    iss: Option<String>,
}

/// A failed sign-in: audited, answered in the usual error shape.
struct Failure {
    error: ApiError,
    /// Who, if we got that far.
    actor: String,
    reason: String,
}

fn failure(error: ApiError, reason: impl Into<String>) -> Failure {
    Failure {
        error,
        actor: "none".into(),
        reason: reason.into(),
    }
}

/// `GET /auth/callback`
async fn callback(
    request: HttpRequest,
    sign_in: web::Data<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let secure = sign_in.secure(&request);
    let clear_login = set_cookie(LOGIN_COOKIE, "", 0, secure);
    match complete(&request, &sign_in).await {
        Ok((session, sealed, return_to)) => {
            let mut event = sign_in.event(
                &request,
                action::SIGN_IN,
                Outcome::Success,
                Actor::of(&session.principal()),
            );
            event.target = Some(session.sub.clone());
            sign_in.gate.audit.record(event);
            tracing::info!(user = %session.name, role = %session.role, "signed in");
            let max_age = sign_in
                .gate
                .sessions
                .as_ref()
                .map_or(0, |sessions| sessions.ttl.as_secs());
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, return_to))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .append_header((header::SET_COOKIE, clear_login))
                .append_header((
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, &sealed, max_age, secure),
                ))
                .finish())
        }
        Err(failure) => {
            let mut event = sign_in.event(
                &request,
                action::SIGN_IN_FAILED,
                Outcome::Failure,
                Actor::unidentified(failure.actor),
            );
            event.reason = Some(failure.reason);
            sign_in.gate.audit.record(event);
            let mut response = actix_web::ResponseError::error_response(&failure.error);
            if let Ok(value) = header::HeaderValue::from_str(&clear_login) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Ok(response)
        }
    }
}

/// The callback's checks, in order; the session, its cookie value and where to go.
async fn complete(
    request: &HttpRequest,
    sign_in: &SignIn,
) -> Result<(Session, String, String), Failure> {
    let provider = sign_in
        .provider()
        .map_err(|e| failure(e, "sign-in is off"))?;
    let sessions = sign_in.gate.sessions.as_ref().ok_or_else(|| {
        failure(
            ApiError::internal("sign-in without sessions"),
            "no sessions",
        )
    })?;
    let query = web::Query::<CallbackQuery>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            failure(
                ApiError::bad_request(None, format!("unreadable callback: {e}")),
                "unreadable callback",
            )
        })?;
    let now = now_secs();
    let again = "sign in again (/auth/login)";
    let login = cookie(request.headers(), LOGIN_COOKIE)
        .and_then(|value| sessions.open_login(&value, now))
        .ok_or_else(|| {
            failure(
                ApiError::bad_request(
                    Some("state".into()),
                    format!("this sign-in expired or began in another browser: {again}"),
                ),
                "no sign-in in progress (login cookie missing or expired)",
            )
        })?;
    let state_matches = query
        .state
        .as_deref()
        .is_some_and(|state| constant_time_eq(state.as_bytes(), login.state.as_bytes()));
    if !state_matches {
        return Err(failure(
            ApiError::bad_request(
                Some("state".into()),
                format!("the provider's answer does not belong to this sign-in: {again}"),
            ),
            "state mismatch",
        ));
    }
    // Another provider's answer sent to us (a mix-up attack) never counts.
    if query
        .iss
        .as_deref()
        .is_some_and(|iss| iss != provider.config.issuer)
    {
        return Err(failure(
            ApiError::bad_request(
                Some("iss".into()),
                format!(
                    "the answer comes from another provider than {}",
                    provider.config.issuer
                ),
            ),
            "iss mismatch",
        ));
    }
    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        return Err(failure(
            ApiError::unauthorized_because(format!(
                "the provider refused the sign-in: {error} {description}"
            ))
            .with_field("error"),
            format!("provider error: {error}"),
        ));
    }
    let code = query.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        failure(
            ApiError::bad_request(Some("code".into()), "the callback has no code"),
            "no code",
        )
    })?;
    let tokens = provider
        .exchange_code(&code, &login.verifier)
        .await
        .map_err(|error| exchange_failure(error, "code"))?;
    let id_token = tokens.id_token.ok_or_else(|| {
        failure(
            ApiError::unauthorized_because("the provider sent no ID token").with_field("id_token"),
            "no id_token",
        )
    })?;
    let mut claims = provider
        .verify_id_token(&id_token, &login.nonce, now)
        .await
        .map_err(|error| exchange_failure(error, "id_token"))?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // Providers that keep groups (or names) out of the ID token give them
    // from userinfo; the ID token's claims win where both have one.
    let config = &provider.config;
    let wanted_claims_missing = claims::values(&claims, &config.roles_claim).is_none()
        || config
            .tenants_claim
            .as_deref()
            .is_some_and(|claim| claims::values(&claims, claim).is_none());
    if wanted_claims_missing && let Some(access_token) = &tokens.access_token {
        let userinfo = provider
            .userinfo(access_token, &subject)
            .await
            .map_err(|error| exchange_failure(error, "userinfo"))?;
        for (key, value) in userinfo.into_iter().flatten() {
            claims.entry(key).or_insert(value);
        }
    }
    let Identity {
        subject,
        name,
        role,
        tenants,
    } = claims::identity(&claims, config).map_err(|no_role| Failure {
        error: ApiError::forbidden_field("roles", no_role.to_string()),
        actor: claims
            .get("preferred_username")
            .or_else(|| claims.get("email"))
            .and_then(Value::as_str)
            .unwrap_or(&subject)
            .to_string(),
        reason: "no role for the user's groups".into(),
    })?;
    let session = Session {
        sid: sessions
            .sealer()
            .random_text(16)
            .map_err(|e| failure(ApiError::internal(e), "random"))?,
        sub: subject,
        name,
        role,
        tenants,
        exp: now + sessions.ttl.as_secs() as i64,
        id_token: Some(id_token),
    };
    let sealed = sessions
        .seal(&session)
        .map_err(|e| failure(ApiError::internal(e), "random"))?;
    Ok((session, sealed, login.return_to))
}

fn exchange_failure(error: ProviderError, field: &str) -> Failure {
    let reason = error.to_string();
    let error = match error {
        ProviderError::Unavailable(_) => ApiError::unavailable(reason.clone(), 5),
        ProviderError::Refused(_) | ProviderError::Token(_) => {
            ApiError::unauthorized_because(format!("sign-in failed: {reason}")).with_field(field)
        }
        ProviderError::Invalid(_) => ApiError::unavailable(reason.clone(), 5),
    };
    failure(error, reason)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// `POST /auth/logout`
async fn logout(
    request: HttpRequest,
    sign_in: web::Data<SignIn>,
) -> Result<HttpResponse, ApiError> {
    let secure = sign_in.secure(&request);
    let clear = set_cookie(SESSION_COOKIE, "", 0, secure);
    let signed_out = |redirect: String| {
        HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .append_header((header::SET_COOKIE, clear.clone()))
            .json(json!({"signed_out": true, "redirect": redirect}))
    };
    let (Some(sessions), Some(value)) = (
        sign_in.gate.sessions.as_ref(),
        cookie(request.headers(), SESSION_COOKIE),
    ) else {
        return Ok(signed_out("/".into()));
    };
    let now = now_secs();
    let session = match sessions.open(&value, now) {
        Opened::Valid(session) => session,
        Opened::Expired(_) | Opened::Invalid => return Ok(signed_out("/".into())),
    };
    let token = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !sessions.csrf_token_is_valid(&session, token) {
        let mut event = sign_in.event(
            &request,
            action::FORBIDDEN,
            Outcome::Denied,
            Actor::of(&session.principal()),
        );
        event.status = Some(403);
        event.reason = Some("missing or wrong CSRF token".into());
        sign_in.gate.audit.record(event);
        return Err(ApiError::forbidden_field(
            "X-CSRF-Token",
            "signing out needs the session's CSRF token in X-CSRF-Token",
        ));
    }
    if let Err(error) = sessions.revoke(&session, now).await {
        tracing::warn!(%error, "cannot revoke a session");
        // The browser forgets the cookie anyway; the session itself stays
        // valid until it is revoked (retry) or expires.
        let mut response = actix_web::ResponseError::error_response(&ApiError::unavailable(
            "cannot sign out on the server now: retry shortly",
            2,
        ));
        if let Ok(value) = header::HeaderValue::from_str(&clear) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return Ok(response);
    }
    sign_in.gate.audit.record(sign_in.event(
        &request,
        action::SIGN_OUT,
        Outcome::Success,
        Actor::of(&session.principal()),
    ));
    tracing::info!(user = %session.name, "signed out");
    // Ending the provider's session too, where it offers that; failing to
    // discover it still signs out here.
    let redirect = match &sign_in.provider {
        Some(provider) => match provider.metadata().await {
            Ok(metadata) => provider.end_session_url(&metadata, session.id_token.as_deref()),
            Err(error) => {
                tracing::warn!(%error, "cannot reach the provider to end its session");
                None
            }
        },
        None => None,
    };
    Ok(signed_out(redirect.unwrap_or_else(|| "/".into())))
}

/// What each of the roles' permissions allows this principal.
fn permissions(principal: &Principal) -> Value {
    let mut allowed = serde_json::Map::new();
    allowed.insert("logs.read".into(), json!(true));
    for rule in ROLE_RULES {
        allowed.insert(rule.what.into(), json!(principal.may(rule.role)));
    }
    for (what, role) in HANDLER_PERMISSIONS {
        allowed.insert((*what).into(), json!(principal.may(*role)));
    }
    Value::Object(allowed)
}

/// Whose logs the dashboard reads: tenancy on or off, the default tenant,
/// and the tenants this request's reads act for (its `X-Scope-OrgID` within
/// what the principal may read), or why it names none it may read.
fn tenancy(gate: &Gate, request: &HttpRequest, principal: &Principal) -> Value {
    let config = &gate.tenants;
    if !config.enabled {
        return json!({"enabled": false});
    }
    let (reads_as, error) = match gate.read_tenants(request.head(), principal) {
        Ok(tenants) => (
            tenants.map(|t| t.0.iter().map(|id| id.to_string()).collect::<Vec<_>>()),
            None,
        ),
        Err(refusal) => (None, Some(refusal.to_string())),
    };
    json!({
        "enabled": true,
        "default_tenant": config.default_tenant.as_ref().map(|t| t.to_string()),
        "reads_as": reads_as,
        "error": error,
    })
}

/// `GET /auth/me`
async fn me(request: HttpRequest, sign_in: web::Data<SignIn>) -> Result<HttpResponse, ApiError> {
    let sign_in_on = sign_in.provider.is_some();
    let body = match sign_in.gate.identify(request.head()).await {
        Identified::Principal { principal, session } => {
            let csrf = session
                .as_ref()
                .zip(sign_in.gate.sessions.as_ref())
                .map(|(session, sessions)| sessions.csrf_token(session));
            let tenancy = tenancy(&sign_in.gate, &request, &principal);
            json!({
                "signed_in": true,
                "sign_in": sign_in_on,
                "name": principal.name,
                "role": principal.role,
                "credential": principal.credential.as_str(),
                "tenants": principal.tenants,
                "tenancy": tenancy,
                "csrf_token": csrf,
                "expires": session.map(|s| crate::domain::time::format_rfc3339(s.exp * 1_000_000)),
                "permissions": permissions(&principal),
            })
        }
        Identified::Nobody => json!({"signed_in": false, "sign_in": sign_in_on}),
        // An expired or signed-out cookie: nobody is signed in (and the
        // cookie goes), so the dashboard sends the browser to sign in.
        Identified::Rejected {
            reason,
            clear_cookie: true,
            ..
        } => {
            return Ok(HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .append_header((
                    header::SET_COOKIE,
                    set_cookie(SESSION_COOKIE, "", 0, sign_in.secure(&request)),
                ))
                .json(json!({"signed_in": false, "sign_in": sign_in_on, "reason": reason})));
        }
        Identified::Rejected { reason, .. } => {
            return Err(ApiError::unauthorized_because(format!(
                "{reason}: send a valid API key"
            )));
        }
        Identified::Unverifiable(_) => {
            return Err(ApiError::unavailable(
                "cannot check the session now: retry shortly",
                2,
            ));
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_is_only_ever_a_path_of_ours() {
        assert_eq!(
            safe_return_to(Some("/explorer?query=a")),
            "/explorer?query=a"
        );
        for bad in [
            "https://evil.example",
            "//evil.example/x",
            "/\\evil.example",
            "explorer",
            "/auth/logout",
            "/a\nb",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
