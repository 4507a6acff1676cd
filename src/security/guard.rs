//! One middleware applying the security rules in order: CORS preflights are
//! answered first (they carry no credentials), then the client's rate limit
//! (before keys, so guessing keys is rate limited too), then the client
//! certificate ingest needs under mutual TLS, then API keys. Every answer,
//! refusals included, gets the CORS headers its origin deserves.

use super::Access;
use super::auth::KeySet;
use super::client_ip::{IpNet, client_ip};
use super::cors::{ALLOWED_HEADERS, ALLOWED_METHODS, CorsPolicy, EXPOSED_HEADERS};
use super::rate_limit::RateLimiter;
use crate::http::error::ApiError;
use crate::http::tls::ClientCertificate;
use crate::metrics::{Metrics, Protocol, Rejection};
use actix_web::HttpResponse;
use actix_web::ResponseError;
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

pub struct Guard {
    pub cors: CorsPolicy,
    pub ingest_keys: KeySet,
    pub read_keys: KeySet,
    pub admin_keys: KeySet,
    pub ingest_limit: Option<RateLimiter>,
    pub query_limit: Option<RateLimiter>,
    pub trusted_proxies: Vec<IpNet>,
    pub metrics: Arc<Metrics>,
    /// `server.tls_client_ca` with `tls_client_auth = "ingest"`: the ingest
    /// paths need a client certificate (machines), the rest do not
    /// (browsers).
    pub ingest_needs_client_certificate: bool,
}

pub enum Decision {
    /// Answer now with this response (preflight, 401, 403, 429).
    Respond(HttpResponse),
    /// Go on to the handler; add CORS headers for this origin to its answer.
    Continue { allowed_origin: Option<HeaderValue> },
}

impl Guard {
    pub fn check(&self, request: &ServiceRequest) -> Decision {
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
            return Decision::Respond(match &allowed_origin {
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
        let limiter = match access {
            Access::Ingest => self.ingest_limit.as_ref(),
            Access::Read | Access::Admin => self.query_limit.as_ref(),
            Access::Open => None,
        };
        let peer = request.peer_addr().map(|address| address.ip());
        let forwarded = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        if let Some(seconds) = self.over_limit(limiter, peer, forwarded) {
            self.count_ingest_refusal(request.path(), Rejection::RateLimited);
            return self.refuse(ApiError::rate_limited(seconds), &allowed_origin);
        }

        if access == Access::Ingest
            && self.ingest_needs_client_certificate
            && request.conn_data::<ClientCertificate>().is_none()
        {
            self.count_ingest_refusal(request.path(), Rejection::Unauthorized);
            return self.refuse(
                ApiError::forbidden(
                    "ingest needs a client certificate signed by server.tls_client_ca",
                ),
                &allowed_origin,
            );
        }

        let presented = presented_keys(request);
        let allows = |keys: &KeySet| allows(keys, &presented);
        let allowed = match access {
            Access::Open => return Decision::Continue { allowed_origin },
            Access::Ingest => allows(&self.ingest_keys),
            // An admin key reads too.
            Access::Read => {
                allows(&self.read_keys) || (!self.admin_keys.is_open() && allows(&self.admin_keys))
            }
            Access::Admin if self.admin_keys.is_open() => allows(&self.read_keys),
            Access::Admin if allows(&self.admin_keys) => true,
            Access::Admin => {
                if !presented.is_empty() && !self.read_keys.is_open() && allows(&self.read_keys) {
                    return self.refuse(
                        ApiError::forbidden(
                            "this key may read but not change: use a key from security.admin_keys",
                        ),
                        &allowed_origin,
                    );
                }
                false
            }
        };
        if !allowed {
            self.count_ingest_refusal(request.path(), Rejection::Unauthorized);
            return self.refuse(ApiError::unauthorized(), &allowed_origin);
        }
        Decision::Continue { allowed_origin }
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
    ) -> Result<(), ApiError> {
        if let Some(seconds) = self.over_limit(self.ingest_limit.as_ref(), peer, forwarded) {
            self.metrics.reject(protocol, Rejection::RateLimited, 1);
            return Err(ApiError::rate_limited(seconds));
        }
        if !allows(&self.ingest_keys, &keys_presented(authorization, api_key)) {
            self.metrics.reject(protocol, Rejection::Unauthorized, 1);
            return Err(ApiError::unauthorized());
        }
        Ok(())
    }

    /// Seconds to wait when the client is over `limiter`'s rate.
    fn over_limit(
        &self,
        limiter: Option<&RateLimiter>,
        peer: Option<IpAddr>,
        forwarded: Option<&str>,
    ) -> Option<u32> {
        // No limit, nothing to work out (most deployments, every request).
        let limiter = limiter?;
        let client = client_ip(peer, forwarded, &self.trusted_proxies)?;
        let wait = limiter.check(client, Instant::now()).err()?;
        Some(wait.as_secs_f64().ceil().max(1.0) as u32)
    }

    fn count_ingest_refusal(&self, path: &str, reason: Rejection) {
        if let Some(protocol) = Protocol::of_path(path) {
            self.metrics.reject(protocol, reason, 1);
        }
    }

    fn refuse(&self, error: ApiError, allowed_origin: &Option<HeaderValue>) -> Decision {
        let mut response = error.error_response();
        if let Some(origin) = allowed_origin {
            add_cors_headers(response.headers_mut(), origin);
        }
        Decision::Respond(response)
    }
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
fn presented_keys(request: &ServiceRequest) -> Vec<String> {
    let headers = request.headers();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let keys = keys_presented(header(header::AUTHORIZATION.as_str()), header("x-api-key"));
    if !keys.is_empty() {
        return keys;
    }
    if request.path().starts_with("/ws/") || request.path() == "/loki/api/v1/tail" {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
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

/// No key presented asks whether `keys` are open; otherwise any key may match.
fn allows(keys: &KeySet, presented: &[String]) -> bool {
    if presented.is_empty() {
        keys.allows(None)
    } else {
        presented.iter().any(|key| keys.allows(Some(key)))
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
