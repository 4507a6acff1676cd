//! The request checks that need no session: CORS preflights (answered
//! first: they carry no credentials), the client's rate limit (before keys,
//! so guessing keys is rate limited too), the client certificate ingest
//! needs under mutual TLS, ingest keys, and which role a presented API key
//! grants. The sign-in layer (`auth::gate`) runs these,
//! then sessions and the role each route needs ([`Access`]). Every answer,
//! refusals included, gets the CORS headers its origin deserves.

use super::access::Access;
use super::auth::{KeyRoles, KeySet, fingerprint};
use super::client_ip::{IpNet, client_ip};
use super::cors::{ALLOWED_HEADERS, ALLOWED_METHODS, CorsPolicy, EXPOSED_HEADERS};
use super::rate_limit::RateLimiter;
use crate::domain::principal::{Credential, Principal};
use crate::domain::tenant::Allowed;
use crate::http::error::ApiError;
use crate::http::tls::ClientCertificate;
use crate::metrics::{Metrics, Protocol, Rejection};
use actix_web::HttpResponse;
use actix_web::ResponseError;
use actix_web::dev::{RequestHead, ServiceRequest};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

pub struct Guard {
    pub cors: CorsPolicy,
    pub ingest_keys: KeySet,
    pub keys: KeyRoles,
    pub ingest_limit: Option<RateLimiter>,
    pub query_limit: Option<RateLimiter>,
    pub trusted_proxies: Vec<IpNet>,
    pub metrics: Arc<Metrics>,
    /// `server.tls_client_ca` with `tls_client_auth = "ingest"`: the ingest
    /// paths need a client certificate (machines), the rest do not
    /// (browsers).
    pub ingest_needs_client_certificate: bool,
}

pub enum Screening {
    /// Answer now with this response (a preflight, or 429).
    Respond(HttpResponse),
    /// Go on to credentials.
    Proceed(Screened),
}

/// What the screening learnt, for the checks after it.
#[derive(Clone, Debug)]
pub struct Screened {
    pub access: Access,
    /// The `Access-Control-Allow-Origin` this request's answer gets.
    pub allowed_origin: Option<HeaderValue>,
    pub client_ip: Option<IpAddr>,
}

/// The API keys a request presents, as the roles' lists see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyIdentity {
    /// No key at all.
    None,
    Valid(Principal),
    /// A key no list holds: its fingerprint, for the audit log.
    Invalid(String),
}

impl Guard {
    pub fn screen(&self, request: &ServiceRequest) -> Screening {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        // The host is only asked for when there is an origin to compare:
        // `connection_info` parses and allocates, and most requests (shippers,
        // /log) carry no Origin.
        let allowed_origin = origin
            .filter(|origin| {
                let info = request.connection_info();
                self.cors.allows(origin, Some(info.host()))
            })
            .and_then(|origin| HeaderValue::from_str(origin).ok());

        if request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Screening::Respond(match &allowed_origin {
                Some(origin) => {
                    let mut response = HttpResponse::NoContent().finish();
                    add_cors_headers(response.headers_mut(), origin);
                    let headers = response.headers_mut();
                    headers.insert(
                        header::ACCESS_CONTROL_ALLOW_METHODS,
                        HeaderValue::from_static(ALLOWED_METHODS),
                    );
                    headers.insert(
                        header::ACCESS_CONTROL_ALLOW_HEADERS,
                        HeaderValue::from_static(ALLOWED_HEADERS),
                    );
                    headers.insert(
                        header::ACCESS_CONTROL_MAX_AGE,
                        HeaderValue::from_static("600"),
                    );
                    response
                }
                None => ApiError::forbidden(
                    "this origin is not allowed: add it to cors.allowed_origins",
                )
                .error_response(),
            });
        }

        let access = Access::of(request.method(), request.path());
        let client_ip = self.client_ip(request.head(), request.peer_addr().map(|a| a.ip()));
        let limiter = match access {
            Access::Ingest => self.ingest_limit.as_ref(),
            access if access.counts_as_query(request.path()) => self.query_limit.as_ref(),
            _ => None,
        };
        if let Some(seconds) = over_limit(limiter, client_ip) {
            self.count_ingest_refusal(request.path(), Rejection::RateLimited);
            return Screening::Respond(
                self.refusal(ApiError::rate_limited(seconds), &allowed_origin),
            );
        }
        if access == Access::Ingest
            && self.ingest_needs_client_certificate
            && request.conn_data::<ClientCertificate>().is_none()
        {
            self.count_ingest_refusal(request.path(), Rejection::Unauthorized);
            return Screening::Respond(self.refusal(
                ApiError::forbidden(
                    "ingest needs a client certificate signed by server.tls_client_ca",
                ),
                &allowed_origin,
            ));
        }
        Screening::Proceed(Screened {
            access,
            allowed_origin,
            client_ip,
        })
    }

    /// The client behind trusted proxies.
    pub fn client_ip(&self, head: &RequestHead, peer: Option<IpAddr>) -> Option<IpAddr> {
        let forwarded = head
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        client_ip(peer, forwarded, &self.trusted_proxies)
    }

    /// Whether the client reached us over TLS: our own listener's, or a
    /// trusted proxy's (`X-Forwarded-Proto: https` from one of them; anyone
    /// else's header is ignored).
    pub fn is_secure(&self, head: &RequestHead, peer: Option<IpAddr>, own_tls: bool) -> bool {
        if own_tls {
            return true;
        }
        let from_proxy = peer.is_some_and(|peer| {
            let peer = match peer {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
                v4 => v4,
            };
            self.trusted_proxies.iter().any(|net| net.contains(peer))
        });
        from_proxy
            && head
                .headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
    }

    /// Whether the request may ingest, and for which tenants its key may
    /// write: `Err` holds what it presented (a key's fingerprint, or `none`)
    /// for the audit log.
    pub fn ingest_allows(&self, head: &RequestHead) -> Result<Allowed, String> {
        if self.ingest_keys.is_open() {
            return Ok(Allowed::Any);
        }
        let presented = presented_keys(head);
        if let Some(allowed) = presented
            .iter()
            .find_map(|key| self.ingest_keys.tenants_of(key))
        {
            return Ok(allowed);
        }
        self.count_ingest_refusal(head.uri.path(), Rejection::Unauthorized);
        Err(presented
            .first()
            .map(|key| fingerprint(key))
            .unwrap_or_else(|| "none".into()))
    }

    /// The ingest paths' rules for a caller that is no HTTP request (OTLP
    /// over gRPC): the ingest rate limit, then the ingest keys, from
    /// `authorization` or `x-api-key` as HTTP reads them. Refusals are
    /// counted under `protocol`, as the middleware counts its own.
    pub fn admit_ingest(
        &self,
        protocol: Protocol,
        peer: Option<IpAddr>,
        forwarded: Option<&str>,
        authorization: Option<&str>,
        api_key: Option<&str>,
    ) -> Result<Allowed, ApiError> {
        let client = client_ip(peer, forwarded, &self.trusted_proxies);
        if let Some(seconds) = over_limit(self.ingest_limit.as_ref(), client) {
            self.metrics.reject(protocol, Rejection::RateLimited, 1);
            return Err(ApiError::rate_limited(seconds));
        }
        if self.ingest_keys.is_open() {
            return Ok(Allowed::Any);
        }
        let presented = keys_presented(authorization, api_key);
        match presented
            .iter()
            .find_map(|key| self.ingest_keys.tenants_of(key))
        {
            Some(allowed) => Ok(allowed),
            None => {
                self.metrics.reject(protocol, Rejection::Unauthorized, 1);
                Err(ApiError::unauthorized())
            }
        }
    }

    /// The highest role any presented key grants.
    pub fn identify_key(&self, head: &RequestHead) -> KeyIdentity {
        let presented = presented_keys(head);
        let Some(first) = presented.first() else {
            return KeyIdentity::None;
        };
        presented
            .iter()
            .filter_map(|key| Some((self.keys.role_of(key)?, key)))
            .max_by_key(|(role, _)| *role)
            .map(|(role, key)| {
                KeyIdentity::Valid(Principal {
                    name: fingerprint(key),
                    role,
                    credential: Credential::Key,
                    tenants: match self.keys.tenants_of(key) {
                        Allowed::Any => None,
                        Allowed::Only(ids) => Some(ids.iter().map(|id| id.to_string()).collect()),
                    },
                })
            })
            .unwrap_or_else(|| KeyIdentity::Invalid(fingerprint(first)))
    }

    fn count_ingest_refusal(&self, path: &str, reason: Rejection) {
        if let Some(protocol) = Protocol::of_path(path) {
            self.metrics.reject(protocol, reason, 1);
        }
    }

    /// A refusal's answer with the CORS headers its origin deserves.
    pub fn refusal(&self, error: ApiError, allowed_origin: &Option<HeaderValue>) -> HttpResponse {
        let mut response = error.error_response();
        if let Some(origin) = allowed_origin {
            add_cors_headers(response.headers_mut(), origin);
        }
        response
    }
}

/// Seconds to wait when `client` is over `limiter`'s rate.
fn over_limit(limiter: Option<&RateLimiter>, client: Option<IpAddr>) -> Option<u32> {
    // No limit, nothing to work out (most deployments, every request).
    let limiter = limiter?;
    let wait = limiter.check(client?, Instant::now()).err()?;
    Some(wait.as_secs_f64().ceil().max(1.0) as u32)
}

pub fn add_cors_headers(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
}

/// The keys a request presents (usually one), in the forms clients send:
/// `Authorization: Bearer <key>`, `X-API-Key: <key>`, HTTP Basic with the key
/// as the password (Loki and Elasticsearch clients, whose settings have a
/// user and a password), `Authorization: ApiKey <key>` (Elasticsearch
/// clients; also `ApiKey base64(id:key)`, what they send for an `(id, key)`
/// pair), or (browsers cannot set headers on a WebSocket) the `api_key`
/// query parameter of `/ws/*` and of Loki's `tail`.
fn presented_keys(head: &RequestHead) -> Vec<String> {
    let headers = head.headers();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let keys = keys_presented(header(header::AUTHORIZATION.as_str()), header("x-api-key"));
    if !keys.is_empty() {
        return keys;
    }
    let path = head.uri.path();
    if path.starts_with("/ws/") || path == "/loki/api/v1/tail" {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(head.uri.query().unwrap_or("")).unwrap_or_default();
        return pairs
            .into_iter()
            .filter(|(name, _)| name == "api_key")
            .map(|(_, key)| key)
            .take(1)
            .collect();
    }
    Vec::new()
}

/// The keys in an `Authorization` value or else an `X-API-Key` value (HTTP
/// headers, or gRPC metadata of the same names).
fn keys_presented(authorization: Option<&str>, api_key: Option<&str>) -> Vec<String> {
    match (authorization, api_key) {
        (Some(value), _) => keys_from_authorization(value),
        (None, Some(value)) => vec![value.trim().to_string()],
        (None, None) => Vec::new(),
    }
}

fn keys_from_authorization(value: &str) -> Vec<String> {
    use base64::Engine;
    let Some((scheme, credentials)) = value.trim().split_once(' ') else {
        return Vec::new();
    };
    let credentials = credentials.trim();
    // `user:password` (Basic) or `id:key` (ApiKey): the part after the colon.
    let decoded_secret = || {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        text.split_once(':').map(|(_, secret)| secret.to_string())
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        vec![credentials.to_string()]
    } else if scheme.eq_ignore_ascii_case("basic") {
        decoded_secret().into_iter().collect()
    } else if scheme.eq_ignore_ascii_case("apikey") {
        // An Elasticsearch client sends `base64(id:key)` for an (id, key)
        // pair and a string as given; a key may itself look like base64.
        std::iter::once(credentials.to_string())
            .chain(decoded_secret())
            .collect()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::keys_from_authorization;
    use super::*;

    fn guard(trusted: &[&str]) -> Guard {
        Guard {
            cors: CorsPolicy::default(),
            ingest_keys: KeySet::default(),
            keys: KeyRoles::default(),
            ingest_limit: None,
            query_limit: None,
            trusted_proxies: trusted.iter().map(|t| IpNet::parse(t).unwrap()).collect(),
            metrics: Arc::new(Metrics::default()),
            ingest_needs_client_certificate: false,
        }
    }

    #[test]
    fn tls_is_believed_from_our_listener_or_a_trusted_proxy_only() {
        let proxied = actix_web::test::TestRequest::default()
            .insert_header(("X-Forwarded-Proto", "https"))
            .to_http_request();
        let plain = actix_web::test::TestRequest::default().to_http_request();
        let proxy: Option<IpAddr> = Some("10.0.0.5".parse().unwrap());
        let stranger: Option<IpAddr> = Some("203.0.113.9".parse().unwrap());
        let guard = guard(&["10.0.0.0/8"]);
        assert!(guard.is_secure(proxied.head(), proxy, false));
        assert!(
            !guard.is_secure(proxied.head(), stranger, false),
            "anyone can send the header"
        );
        assert!(!guard.is_secure(plain.head(), proxy, false));
        assert!(
            guard.is_secure(plain.head(), stranger, true),
            "our own TLS listener"
        );
        let mapped: Option<IpAddr> = Some("::ffff:10.0.0.5".parse().unwrap());
        assert!(guard.is_secure(proxied.head(), mapped, false));
    }

    #[test]
    fn keys_in_every_authorization_form() {
        let key = "ingest-key-0123456789";
        for header in [
            format!("Bearer {key}"),
            format!("bearer  {key} "),
            // base64("loki:ingest-key-0123456789")
            "Basic bG9raTppbmdlc3Qta2V5LTAxMjM0NTY3ODk=".to_string(),
            format!("ApiKey {key}"),
            // base64("my-id:ingest-key-0123456789")
            "ApiKey bXktaWQ6aW5nZXN0LWtleS0wMTIzNDU2Nzg5".to_string(),
        ] {
            let keys = keys_from_authorization(&header);
            assert!(keys.iter().any(|k| k == key), "{header}: {keys:?}");
        }
        assert!(keys_from_authorization("Basic !!!").is_empty());
        assert!(keys_from_authorization("Digest abc").is_empty());
        assert!(keys_from_authorization("Bearer").is_empty());
    }
}
