//! Every request's way in, in order: the guard's screening (CORS preflight,
//! rate limit), then credentials for what the route needs (`Access`): an
//! ingest key, or a principal of a high enough role from an API key, the
//! session cookie, or what the configuration leaves open. A request made
//! with the session cookie that changes state must carry the session's CSRF
//! token; a WebSocket opened with it must come from an allowed origin.
//! Refusals (`401`, `403`) and every change under `/api/` are audited.

use super::session::{CSRF_HEADER, Opened, SESSION_COOKIE, Session, Sessions, cookie, set_cookie};
use crate::domain::audit::{Actor, AuditEvent, Outcome, action};
use crate::domain::principal::{Caller, Principal};
use crate::domain::tenant::{Allowed, RequestTenants, TenantId};
use crate::domain::time::now_micros;
use crate::http::audit::{AuditLog, ChangeDetail};
use crate::http::error::{ApiError, Refusal};
use crate::security::access::{Access, changes_state};
use crate::security::guard::{Guard, KeyIdentity, Screening};
use crate::tenants::{self, ResourceTenants, TENANT_HEADER, TenantRefusal, TenantsConfig};
use actix_web::dev::{RequestHead, ServiceRequest};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::net::IpAddr;
use std::sync::Arc;

pub struct Gate {
    /// Shared with OTLP over gRPC, which applies the ingest rules too.
    pub guard: Arc<Guard>,
    /// `None` while sign-in is off.
    pub sessions: Option<Arc<Sessions>>,
    pub audit: AuditLog,
    /// `[tenants]`: off, every request acts for the default tenant.
    pub tenants: TenantsConfig,
}

/// Who a request acts as.
#[derive(Debug)]
pub enum Identified {
    Principal {
        principal: Principal,
        /// The session, when the principal came from the cookie.
        session: Option<Session>,
    },
    /// No credentials, and nothing is open to callers without them.
    Nobody,
    /// Credentials that do not hold: a key no list has, a session cookie
    /// that is not ours, expired or signed out.
    Rejected {
        /// The key's fingerprint, or the session's user.
        actor: String,
        reason: &'static str,
        /// The cookie should be deleted.
        clear_cookie: bool,
    },
    /// The coordination cannot say whether the session was revoked.
    Unverifiable(String),
}

/// A request allowed through, and what to note of its answer.
pub struct Admitted {
    pub caller: Caller,
    pub allowed_origin: Option<HeaderValue>,
    /// A change under `/api/`: its outcome is audited.
    pub audit_change: bool,
    /// A route that needs a role: a refusal its handler answers is
    /// audited (open routes, the sign-in flow's, audit their own).
    pub audit_refusal: bool,
    /// With tenancy on, the tenants the request acts for (one for ingest).
    pub tenants: Option<RequestTenants>,
    /// OTLP/HTTP with `tenants.otlp_attribute` set: each resource may name
    /// its tenant, so the handler resolves them (and a request naming none
    /// is not refused here).
    pub resource_tenants: Option<ResourceTenants>,
}

/// A request refused: the answer, and the audit event it makes.
pub struct Refused {
    pub response: HttpResponse,
    pub event: Option<AuditEvent>,
}

/// A tenant refusal in the API's shape, naming the header to fix.
pub fn tenant_error(refusal: &TenantRefusal) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        TenantRefusal::Missing => ApiError::unauthorized_because(message).with_field(TENANT_HEADER),
        TenantRefusal::Invalid(_) | TenantRefusal::Several => {
            ApiError::bad_request(Some(TENANT_HEADER.to_string()), message)
        }
        TenantRefusal::NotAllowed(_) => ApiError::forbidden_field(TENANT_HEADER, message),
    }
}

fn now_secs() -> i64 {
    now_micros() / 1_000_000
}

impl Gate {
    /// Whether sign-in is configured.
    pub fn sign_in(&self) -> bool {
        self.sessions.is_some()
    }

    /// Who the request acts as: an API key first (explicit beats ambient),
    /// then the session cookie, then what is open without credentials.
    pub async fn identify(&self, head: &RequestHead) -> Identified {
        match self.guard.identify_key(head) {
            KeyIdentity::Valid(principal) => {
                return Identified::Principal {
                    principal,
                    session: None,
                };
            }
            // A key where none is needed (no keys configured, say) changes
            // nothing, as before roles; where one is, it is refused.
            KeyIdentity::Invalid(fingerprint) => {
                return match self.guard.keys.anonymous_role() {
                    Some(role) => Identified::Principal {
                        principal: Principal::anonymous(role),
                        session: None,
                    },
                    None => Identified::Rejected {
                        actor: fingerprint,
                        reason: "invalid API key",
                        clear_cookie: false,
                    },
                };
            }
            KeyIdentity::None => {}
        }
        if let Some(sessions) = &self.sessions
            && let Some(value) = cookie(head.headers(), SESSION_COOKIE)
        {
            return match sessions.open(&value, now_secs()) {
                Opened::Invalid => Identified::Rejected {
                    actor: "none".into(),
                    reason: "invalid session cookie",
                    clear_cookie: true,
                },
                Opened::Expired(session) => Identified::Rejected {
                    actor: session.name,
                    reason: "session expired",
                    clear_cookie: true,
                },
                Opened::Valid(session) => match sessions.is_revoked(&session).await {
                    Ok(true) => Identified::Rejected {
                        actor: session.name,
                        reason: "session signed out",
                        clear_cookie: true,
                    },
                    Ok(false) => Identified::Principal {
                        principal: session.principal(),
                        session: Some(session),
                    },
                    Err(error) => Identified::Unverifiable(error.to_string()),
                },
            };
        }
        match self.guard.keys.anonymous_role() {
            Some(role) => Identified::Principal {
                principal: Principal::anonymous(role),
                session: None,
            },
            None => Identified::Nobody,
        }
    }

    fn unauthorized(&self) -> ApiError {
        if self.sign_in() {
            ApiError::unauthorized_because("sign in (/auth/login) or send a valid API key")
        } else {
            ApiError::unauthorized()
        }
    }

    pub async fn admit(&self, request: &ServiceRequest) -> Result<Admitted, Refused> {
        let screened = match self.guard.screen(request) {
            Screening::Respond(response) => {
                return Err(Refused {
                    response,
                    event: None,
                });
            }
            Screening::Proceed(screened) => screened,
        };
        let head = request.head();
        let origin = &screened.allowed_origin;
        let client_ip = screened.client_ip;
        let refused = |error: ApiError, actor: Actor, action: &str, reason: String| {
            let status = error.status_code().as_u16();
            let mut event = request_event(head, action, Outcome::Denied, actor, client_ip);
            event.status = Some(status);
            event.reason = Some(reason);
            Refused {
                response: self.guard.refusal(error, origin),
                event: Some(event),
            }
        };
        let (needed, what) = match screened.access {
            Access::Open => {
                return Ok(Admitted {
                    caller: Caller {
                        principal: None,
                        client_ip,
                    },
                    allowed_origin: screened.allowed_origin,
                    audit_change: false,
                    audit_refusal: false,
                    tenants: None,
                    resource_tenants: None,
                });
            }
            Access::Ingest => {
                return match self.guard.ingest_allows(head) {
                    Ok(allowed) => {
                        let refused_tenant = |refusal: TenantRefusal| {
                            refused(
                                tenant_error(&refusal),
                                Actor::unidentified("ingest key"),
                                action::FORBIDDEN,
                                refusal.to_string(),
                            )
                        };
                        let (tenants, resource_tenants) =
                            match self.otlp_resource_tenants(head, &allowed) {
                                Some(deferred) => {
                                    let deferred = deferred.map_err(refused_tenant)?;
                                    let tenants =
                                        deferred.fallback.clone().map(|t| RequestTenants(vec![t]));
                                    (tenants, Some(deferred))
                                }
                                None => (
                                    self.request_tenants(head, &allowed, tenants::Access::Write)
                                        .map_err(refused_tenant)?,
                                    None,
                                ),
                            };
                        Ok(Admitted {
                            caller: Caller {
                                principal: None,
                                client_ip,
                            },
                            allowed_origin: screened.allowed_origin,
                            audit_change: false,
                            audit_refusal: false,
                            tenants,
                            resource_tenants,
                        })
                    }
                    Err(presented) => Err(refused(
                        ApiError::unauthorized(),
                        Actor::unidentified(presented),
                        action::UNAUTHORIZED,
                        "missing or invalid ingest key".into(),
                    )),
                };
            }
            Access::Role { role, what } => (role, what),
        };
        let (principal, session) = match self.identify(head).await {
            Identified::Principal { principal, session } => (principal, session),
            Identified::Nobody => {
                return Err(refused(
                    self.unauthorized(),
                    Actor::unidentified("none"),
                    action::UNAUTHORIZED,
                    "no credentials".into(),
                ));
            }
            Identified::Rejected {
                actor,
                reason,
                clear_cookie,
            } => {
                let mut refusal = refused(
                    self.unauthorized(),
                    Actor::unidentified(actor),
                    action::UNAUTHORIZED,
                    reason.into(),
                );
                if clear_cookie {
                    let secure = self.is_secure(request);
                    if let Ok(value) =
                        HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", 0, secure))
                    {
                        refusal
                            .response
                            .headers_mut()
                            .append(header::SET_COOKIE, value);
                    }
                }
                return Err(refusal);
            }
            Identified::Unverifiable(error) => {
                tracing::warn!(%error, "cannot check whether a session was signed out");
                return Err(Refused {
                    response: self.guard.refusal(
                        ApiError::unavailable("cannot check the session now: retry shortly", 2),
                        origin,
                    ),
                    event: None,
                });
            }
        };
        let actor = Actor::of(&principal);
        if !principal.may(needed) {
            return Err(refused(
                ApiError::forbidden_field(
                    what,
                    format!(
                        "this needs the {needed} role ({what}); {} is a {}",
                        principal.name, principal.role
                    ),
                ),
                actor,
                action::FORBIDDEN,
                what.to_string(),
            ));
        }
        if let Some(session) = &session {
            if changes_state(request.method()) && !self.csrf_holds(head, session) {
                return Err(refused(
                    ApiError::forbidden_field(
                        "X-CSRF-Token",
                        "a change made with the session cookie needs the session's CSRF token in X-CSRF-Token (GET /auth/me gives it)",
                    ),
                    actor,
                    action::FORBIDDEN,
                    "missing or wrong CSRF token".into(),
                ));
            }
            // A page elsewhere must not open a live tail with the user's cookie.
            if request.path().starts_with("/ws/")
                && head.headers().contains_key(header::ORIGIN)
                && screened.allowed_origin.is_none()
            {
                return Err(refused(
                    ApiError::forbidden_field(
                        "Origin",
                        "this origin may not use the session: add it to security.cors_allowed_origins",
                    ),
                    actor,
                    action::FORBIDDEN,
                    "WebSocket from a foreign origin".into(),
                ));
            }
        }
        // `/metrics` and the list of tenants are the deployment's, not a
        // tenant's: scrapers and the dashboard's switcher name none.
        let tenants = if matches!(request.path(), "/metrics" | "/api/tenants") {
            Ok(None)
        } else {
            self.read_tenants(head, &principal)
        };
        let tenants = match tenants {
            Ok(tenants) => tenants,
            Err(refusal) => {
                return Err(refused(
                    tenant_error(&refusal),
                    actor,
                    action::FORBIDDEN,
                    refusal.to_string(),
                ));
            }
        };
        Ok(Admitted {
            tenants,
            resource_tenants: None,
            audit_change: changes_state(request.method()) && request.path().starts_with("/api/"),
            audit_refusal: true,
            caller: Caller {
                principal: Some(principal),
                client_ip,
            },
            allowed_origin: screened.allowed_origin,
        })
    }

    /// For `POST /v1/logs` with `tenants.otlp_attribute` set: the request's
    /// tenant if it names one, and what the handler needs to resolve each
    /// resource's (`None` for other paths or without the attribute).
    fn otlp_resource_tenants(
        &self,
        head: &RequestHead,
        allowed: &Allowed,
    ) -> Option<Result<ResourceTenants, TenantRefusal>> {
        if head.uri.path() != "/v1/logs" {
            return None;
        }
        let header = head
            .headers()
            .get(TENANT_HEADER)
            .and_then(|value| value.to_str().ok());
        tenants::resolve_by_resource(&self.tenants, allowed, header)
    }

    /// The tenants a request acts for: `None` with tenancy off (nothing is
    /// left on the request: the default tenant is implied).
    fn request_tenants(
        &self,
        head: &RequestHead,
        allowed: &Allowed,
        access: tenants::Access,
    ) -> Result<Option<RequestTenants>, TenantRefusal> {
        if !self.tenants.enabled {
            return Ok(None);
        }
        if matches!(allowed, Allowed::Only(ids) if ids.is_empty()) {
            return Err(TenantRefusal::NotAllowed(
                "any: the sign-in grants no tenant".into(),
            ));
        }
        let header = head
            .headers()
            .get(TENANT_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
            .or_else(|| websocket_tenant(head));
        tenants::resolve(&self.tenants, allowed, header.as_deref(), access)
            .map(|ids| Some(RequestTenants(ids)))
    }

    /// The tenants a signed-in user's or a key's reads act for (`None`
    /// with tenancy off): the request's `X-Scope-OrgID` within what the
    /// principal may read. For the gate and for `/auth/me`, which tells the
    /// dashboard whose logs it shows.
    pub fn read_tenants(
        &self,
        head: &RequestHead,
        principal: &Principal,
    ) -> Result<Option<RequestTenants>, TenantRefusal> {
        let allowed = match &principal.tenants {
            None => Allowed::Any,
            Some(names) => Allowed::Only(
                names
                    .iter()
                    .filter_map(|name| TenantId::parse(name).ok())
                    .collect(),
            ),
        };
        self.request_tenants(head, &allowed, tenants::Access::Read)
    }

    fn csrf_holds(&self, head: &RequestHead, session: &Session) -> bool {
        let Some(sessions) = &self.sessions else {
            return false;
        };
        head.headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|token| sessions.csrf_token_is_valid(session, token))
    }

    pub fn is_secure(&self, request: &ServiceRequest) -> bool {
        self.guard.is_secure(
            request.head(),
            request.peer_addr().map(|a| a.ip()),
            request.app_config().secure(),
        )
    }

    /// The audit event a handled request makes, if any: a refusal by the
    /// handler, or a change (with what the handler said of it).
    pub fn after(
        &self,
        admitted: &Admitted,
        method: &Method,
        path: &str,
        status: StatusCode,
        response: &HttpResponse<impl Sized>,
    ) -> Option<AuditEvent> {
        let actor = match &admitted.caller.principal {
            Some(principal) => Actor::of(principal),
            None => Actor::unidentified("none"),
        };
        let refusal = admitted.audit_refusal
            && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        if !refusal && !admitted.audit_change {
            return None;
        }
        let detail = response.extensions().get::<ChangeDetail>().cloned();
        let (action, outcome) = if refusal {
            let action = if status == StatusCode::UNAUTHORIZED {
                action::UNAUTHORIZED
            } else {
                action::FORBIDDEN
            };
            (action.to_string(), Outcome::Denied)
        } else {
            let outcome = if status.is_success() {
                Outcome::Success
            } else {
                Outcome::Failure
            };
            let action = detail
                .as_ref()
                .map(|d| d.action.clone())
                .unwrap_or_else(|| action::CHANGE.to_string());
            (action, outcome)
        };
        let mut event = AuditEvent::new(action, outcome, actor);
        event.client_ip = admitted.caller.client_ip;
        event.method = Some(method.to_string());
        event.path = Some(path.to_string());
        event.request_id = crate::http::telemetry::current_request_id();
        event.status = Some(status.as_u16());
        event.target = detail.and_then(|d| d.target);
        event.reason = response
            .extensions()
            .get::<Refusal>()
            .map(|refusal| match &refusal.field {
                Some(field) => format!("{field}: {}", refusal.error),
                None => refusal.error.clone(),
            });
        Some(event)
    }
}

fn request_event(
    head: &RequestHead,
    action: &str,
    outcome: Outcome,
    actor: Actor,
    client_ip: Option<IpAddr>,
) -> AuditEvent {
    let mut event = AuditEvent::new(action, outcome, actor);
    event.client_ip = client_ip;
    event.method = Some(head.method.to_string());
    event.path = Some(head.uri.path().to_string());
    event.request_id = crate::http::telemetry::current_request_id();
    event
}

/// Browsers cannot set headers on a WebSocket: a live tail (the dashboard's
/// `/ws/live`, Loki's `tail`) may name its tenants in the `tenant` query
/// parameter instead, as it names its key in `api_key`.
fn websocket_tenant(head: &RequestHead) -> Option<String> {
    let path = head.uri.path();
    if !(path.starts_with("/ws/") || path == "/loki/api/v1/tail") {
        return None;
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(head.uri.query().unwrap_or("")).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(name, _)| name == "tenant")
        .map(|(_, tenant)| tenant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::coordination::{
        Acquired, Coordination, CoordinationError, Lease, MemoryCoordination, Versioned,
    };
    use crate::bus::memory::MemoryBus;
    use crate::domain::principal::{AccessRole, Credential};
    use crate::metrics::Metrics;
    use crate::security::auth::{KeyRoles, KeySet};
    use crate::security::client_ip::IpNet;
    use crate::security::cors::CorsPolicy;
    use async_trait::async_trait;
    use std::time::Duration;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const EDITOR_KEY: &str = "editor-key-0123456789";

    /// Coordination whose broker cannot be reached.
    struct Down;

    #[async_trait]
    impl Coordination for Down {
        fn lease_ttl(&self) -> Duration {
            Duration::from_secs(9)
        }
        async fn acquire(&self, _: &str, _: &str) -> Result<Acquired, CoordinationError> {
            Err(CoordinationError::Unavailable("down".into()))
        }
        async fn renew(&self, _: &Lease) -> Result<Lease, CoordinationError> {
            Err(CoordinationError::Unavailable("down".into()))
        }
        async fn release(&self, _: &Lease) -> Result<(), CoordinationError> {
            Err(CoordinationError::Unavailable("down".into()))
        }
        async fn load(&self, _: &str) -> Result<Option<Versioned>, CoordinationError> {
            Err(CoordinationError::Unavailable("down".into()))
        }
        async fn store(&self, _: &str, _: &[u8], _: Option<u64>) -> Result<u64, CoordinationError> {
            Err(CoordinationError::Unavailable("down".into()))
        }
        async fn remember(&self, _: &str, _: &str, _: Duration) -> Result<(), CoordinationError> {
            Err(CoordinationError::Unavailable("down".into()))
        }
        async fn remembers(&self, _: &str, _: &str) -> Result<bool, CoordinationError> {
            Err(CoordinationError::Unavailable("down".into()))
        }
    }

    fn gate(coordination: Arc<dyn Coordination>) -> Gate {
        let metrics = Arc::new(Metrics::default());
        let bus = Arc::new(MemoryBus::new(100, Duration::from_secs(9)));
        let (audit, _task) = AuditLog::start(bus, Arc::clone(&metrics));
        Gate {
            guard: Arc::new(Guard {
                cors: CorsPolicy::default(),
                ingest_keys: KeySet::default(),
                keys: KeyRoles {
                    editor: KeySet::parse(&[EDITOR_KEY]).unwrap(),
                    sign_in: true,
                    ..KeyRoles::default()
                },
                ingest_limit: None,
                query_limit: None,
                trusted_proxies: Vec::<IpNet>::new(),
                metrics,
                ingest_needs_client_certificate: false,
            }),
            tenants: TenantsConfig::default(),
            sessions: Some(Arc::new(Sessions::new(
                SECRET,
                Duration::from_secs(3600),
                coordination,
            ))),
            audit,
        }
    }

    fn cookie_for(gate: &Gate, exp: i64) -> String {
        let session = Session {
            sid: "sid-1".into(),
            sub: "u1".into(),
            name: "victor".into(),
            role: AccessRole::Viewer,
            tenants: None,
            exp,
            id_token: None,
        };
        let sealed = gate.sessions.as_ref().unwrap().seal(&session).unwrap();
        format!("{SESSION_COOKIE}={sealed}")
    }

    async fn identify(gate: &Gate, headers: &[(&str, String)]) -> Identified {
        let mut request = actix_web::test::TestRequest::get().uri("/api/logs");
        for (name, value) in headers {
            request = request.insert_header((*name, value.clone()));
        }
        gate.identify(request.to_http_request().head()).await
    }

    #[actix_web::test]
    async fn a_key_beats_the_cookie_and_bad_cookies_are_refused_and_deleted() {
        let gate = gate(Arc::new(MemoryCoordination::new(Duration::from_secs(9))));
        let far = now_secs() + 3600;
        let cookie = cookie_for(&gate, far);
        match identify(&gate, &[("Cookie", cookie.clone())]).await {
            Identified::Principal { principal, session } => {
                assert_eq!(
                    (principal.name.as_str(), principal.role),
                    ("victor", AccessRole::Viewer)
                );
                assert_eq!(principal.credential, Credential::Session);
                assert!(session.is_some());
            }
            other => panic!("{other:?}"),
        }
        // Both: the key decides (and no CSRF token is asked of it).
        let both = [
            ("Cookie", cookie.clone()),
            ("Authorization", format!("Bearer {EDITOR_KEY}")),
        ];
        match identify(&gate, &both).await {
            Identified::Principal { principal, session } => {
                assert_eq!(principal.role, AccessRole::Editor);
                assert!(session.is_none());
            }
            other => panic!("{other:?}"),
        }
        let expired = cookie_for(&gate, now_secs() - 1);
        assert!(matches!(
            identify(&gate, &[("Cookie", expired)]).await,
            Identified::Rejected {
                reason: "session expired",
                clear_cookie: true,
                ..
            }
        ));
        let forged = format!(
            "{SESSION_COOKIE}=AAAA{}",
            &cookie[SESSION_COOKIE.len() + 5..]
        );
        assert!(matches!(
            identify(&gate, &[("Cookie", forged)]).await,
            Identified::Rejected {
                reason: "invalid session cookie",
                clear_cookie: true,
                ..
            }
        ));
        assert!(matches!(identify(&gate, &[]).await, Identified::Nobody));
        assert!(matches!(
            identify(&gate, &[("X-API-Key", "wrong-key-0123456789".into())]).await,
            Identified::Rejected {
                reason: "invalid API key",
                clear_cookie: false,
                ..
            }
        ));
    }

    #[actix_web::test]
    async fn a_session_is_not_trusted_while_revocations_cannot_be_read() {
        let gate = gate(Arc::new(Down));
        let cookie = cookie_for(&gate, now_secs() + 3600);
        assert!(matches!(
            identify(&gate, &[("Cookie", cookie.clone())]).await,
            Identified::Unverifiable(_)
        ));
        let request = actix_web::test::TestRequest::get()
            .uri("/api/logs")
            .insert_header(("Cookie", cookie))
            .to_srv_request();
        let refused = gate.admit(&request).await.err().expect("refused");
        assert_eq!(refused.response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
