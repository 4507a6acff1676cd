//! The OpenID Connect provider as we talk to it: discovery
//! (`/.well-known/openid-configuration`), the authorization URL with PKCE,
//! the code exchange, the ID token's verification against its JWKS, the
//! userinfo endpoint and RP-initiated sign-out. HTTP through awc over
//! rustls (ring) trusting the system's roots; awc is not `Send`, so a
//! client is made per call on the worker's thread, sharing one TLS config.

use super::jose::{self, Algorithm, Expected, JwkSet};
use super::jwks::{KeyCache, VerifyError};
use super::settings::{OidcConfig, provider_url};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Discovery is read again after this long (endpoints and algorithms change rarely).
const METADATA_MAX_AGE: Duration = Duration::from_secs(3600);
/// At most one JWKS fetch for an unknown key per this long.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Clock skew tolerated between us and the provider.
const LEEWAY_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider cannot be reached or answers with a failure of its own.
    #[error("the sign-in provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused (a bad or used code, a client it does not know).
    #[error("the sign-in provider refused: {0}")]
    Refused(String),
    /// Its answer is not what OpenID Connect says it must be.
    #[error("the sign-in provider's answer is invalid: {0}")]
    Invalid(String),
    /// The ID token failed verification.
    #[error("the ID token is not valid: {0}")]
    Token(String),
}

/// What discovery tells us.
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

impl Metadata {
    /// Checks a discovery document against the configured issuer: the issuer
    /// must match exactly (OpenID Connect Discovery 4.3) and every endpoint
    /// must be https (or loopback http), so no token travels in the clear.
    pub fn parse(body: &[u8], issuer: &str) -> Result<Metadata, ProviderError> {
        let metadata: Metadata = serde_json::from_slice(body)
            .map_err(|e| ProviderError::Invalid(format!("discovery document: {e}")))?;
        if metadata.issuer != issuer {
            return Err(ProviderError::Invalid(format!(
                "discovery names the issuer {:?}, not the configured {issuer:?}",
                metadata.issuer
            )));
        }
        let endpoints = [
            (
                "authorization_endpoint",
                Some(&metadata.authorization_endpoint),
            ),
            ("token_endpoint", Some(&metadata.token_endpoint)),
            ("jwks_uri", Some(&metadata.jwks_uri)),
            ("userinfo_endpoint", metadata.userinfo_endpoint.as_ref()),
            (
                "end_session_endpoint",
                metadata.end_session_endpoint.as_ref(),
            ),
        ];
        for (name, url) in endpoints {
            if let Some(url) = url {
                provider_url(name, url).map_err(|e| ProviderError::Invalid(e.to_string()))?;
            }
        }
        Ok(metadata)
    }

    /// The algorithms we accept for ID tokens: ours that the provider says
    /// it signs with (RS256 when it says nothing, the OpenID default).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        if self.id_token_signing_alg_values_supported.is_empty() {
            return vec![Algorithm::RS256];
        }
        self.id_token_signing_alg_values_supported
            .iter()
            .filter_map(|name| Algorithm::parse(name))
            .collect()
    }
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct Tokens {
    pub id_token: Option<String>,
    pub access_token: Option<String>,
}

pub struct Provider {
    pub config: OidcConfig,
    metadata: Mutex<Option<(Arc<Metadata>, Instant)>>,
    keys: KeyCache,
}

/// `base64url(SHA-256(verifier))`: PKCE's S256 challenge.
pub fn pkce_challenge(verifier: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn with_query(endpoint: &str, pairs: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{separator}{query}")
}

impl Provider {
    pub fn new(config: OidcConfig) -> Provider {
        Provider {
            config,
            metadata: Mutex::new(None),
            keys: KeyCache::new(JWKS_MIN_REFETCH),
        }
    }

    /// Discovery, cached for an hour; a failure is not cached.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, ProviderError> {
        let mut cached = self.metadata.lock().await;
        if let Some((metadata, at)) = cached.as_ref()
            && at.elapsed() < METADATA_MAX_AGE
        {
            return Ok(Arc::clone(metadata));
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let body = get(&url, None).await?;
        let metadata = Arc::new(Metadata::parse(&body, &self.config.issuer)?);
        *cached = Some((Arc::clone(&metadata), Instant::now()));
        Ok(metadata)
    }

    /// Where the browser goes to sign in.
    pub fn authorization_url(
        &self,
        metadata: &Metadata,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> String {
        let scope = self.config.scopes.join(" ");
        let challenge = pkce_challenge(verifier);
        with_query(
            &metadata.authorization_endpoint,
            &[
                ("response_type", "code"),
                ("client_id", &self.config.client_id),
                ("redirect_uri", &self.config.redirect_url),
                ("scope", &scope),
                ("state", state),
                ("nonce", nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
    }

    /// Where the browser goes to end its session at the provider, when it
    /// offers that.
    pub fn end_session_url(
        &self,
        metadata: &Metadata,
        id_token_hint: Option<&str>,
    ) -> Option<String> {
        let endpoint = metadata.end_session_endpoint.as_deref()?;
        let mut pairs = vec![
            ("client_id", self.config.client_id.as_str()),
            (
                "post_logout_redirect_uri",
                self.config.post_logout_redirect_url.as_str(),
            ),
        ];
        if let Some(hint) = id_token_hint {
            pairs.push(("id_token_hint", hint));
        }
        Some(with_query(endpoint, &pairs))
    }

    /// The authorization code for tokens (with the PKCE verifier).
    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<Tokens, ProviderError> {
        let metadata = self.metadata().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_url.as_str()),
            ("code_verifier", verifier),
        ];
        let secret = self.config.client_secret.as_ref().map(|s| s.expose());
        // client_secret_basic unless the provider takes only client_secret_post.
        let post_only = metadata
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|methods| {
                methods.iter().any(|m| m == "client_secret_post")
                    && !methods.iter().any(|m| m == "client_secret_basic")
            });
        let mut authorization = None;
        match secret {
            Some(secret) if post_only => {
                form.push(("client_id", &self.config.client_id));
                form.push(("client_secret", secret));
            }
            Some(secret) => {
                // RFC 6749 2.3.1: both form-encoded before Basic's base64.
                let encode = |text: &str| {
                    serde_urlencoded::to_string([("", text)])
                        .map(|pair| pair[1..].to_string())
                        .unwrap_or_default()
                };
                let credentials = format!("{}:{}", encode(&self.config.client_id), encode(secret));
                authorization = Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(credentials)
                ));
            }
            None => form.push(("client_id", &self.config.client_id)),
        }
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| ProviderError::Invalid(format!("token request: {e}")))?;
        let client = http_client();
        let mut request = client
            .post(&metadata.token_endpoint)
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("Accept", "application/json"));
        if let Some(authorization) = authorization {
            request = request.insert_header(("Authorization", authorization));
        }
        let mut response = request
            .send_body(body)
            .await
            .map_err(|e| ProviderError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let bytes = response
            .body()
            .limit(MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| ProviderError::Unavailable(format!("token endpoint: {e}")))?;
        if status.is_client_error() {
            return Err(ProviderError::Refused(oauth_error(&bytes)));
        }
        if !status.is_success() {
            return Err(ProviderError::Unavailable(format!(
                "token endpoint answered {status}"
            )));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ProviderError::Invalid(format!("token response: {e}")))
    }

    /// The ID token's signature (against the provider's JWKS, following a
    /// key rotation) and claims; its claims.
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
        now_secs: i64,
    ) -> Result<Map<String, Value>, ProviderError> {
        let metadata = self.metadata().await?;
        let algorithms = metadata.algorithms();
        let jwks_uri = metadata.jwks_uri.clone();
        let fetch = || {
            let jwks_uri = jwks_uri.clone();
            async move {
                let body = get(&jwks_uri, None).await.map_err(|e| e.to_string())?;
                JwkSet::parse(&body).map_err(|e| e.to_string())
            }
        };
        let claims =
            self.keys
                .verify(token, &algorithms, fetch)
                .await
                .map_err(|error| match error {
                    VerifyError::Fetch(reason) => ProviderError::Unavailable(reason),
                    VerifyError::Token(error) => ProviderError::Token(error.to_string()),
                })?;
        jose::check_claims(
            &claims,
            &Expected {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce,
                now: now_secs,
                leeway: LEEWAY_SECS,
            },
        )
        .map_err(|e| ProviderError::Token(e.to_string()))?;
        Ok(claims)
    }

    /// The userinfo endpoint's claims, for providers that keep groups out of
    /// the ID token. Its `sub` must be the ID token's (Core 5.3.2).
    pub async fn userinfo(
        &self,
        access_token: &str,
        subject: &str,
    ) -> Result<Option<Map<String, Value>>, ProviderError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.userinfo_endpoint.as_deref() else {
            return Ok(None);
        };
        let body = get(endpoint, Some(access_token)).await?;
        let claims: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Invalid(format!("userinfo is not a JSON object: {e}")))?;
        if claims.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err(ProviderError::Invalid(
                "userinfo is about another subject than the ID token".into(),
            ));
        }
        Ok(Some(claims))
    }
}

/// `error: error_description` of an OAuth error answer.
fn oauth_error(body: &[u8]) -> String {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = value["error"].as_str().unwrap_or("invalid_request");
    match value["error_description"].as_str() {
        Some(description) => format!("{error}: {description}"),
        None => error.to_string(),
    }
}

async fn get(url: &str, bearer: Option<&str>) -> Result<Vec<u8>, ProviderError> {
    let client = http_client();
    let mut request = client
        .get(url)
        .insert_header(("Accept", "application/json"));
    if let Some(token) = bearer {
        request = request.insert_header(("Authorization", format!("Bearer {token}")));
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| ProviderError::Unavailable(format!("{url}: {e}")))?;
    if !response.status().is_success() {
        return Err(ProviderError::Unavailable(format!(
            "{url} answered {}",
            response.status()
        )));
    }
    let body = response
        .body()
        .limit(MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| ProviderError::Unavailable(format!("{url}: {e}")))?;
    Ok(body.to_vec())
}

/// The TLS settings every provider call shares: loading the system's roots
/// once, not per sign-in.
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            match rustls_native_certs::load_native_certs() {
                Ok(certificates) => {
                    roots.add_parsable_certificates(certificates);
                }
                Err(error) => {
                    tracing::warn!(%error, "no system root certificates: an https sign-in provider will fail")
                }
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            match rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
            {
                Ok(builder) => {
                    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
                    config.alpn_protocols = vec![b"http/1.1".to_vec()];
                    Some(Arc::new(config))
                }
                Err(error) => {
                    tracing::warn!(%error, "tls unavailable: an https sign-in provider will fail");
                    None
                }
            }
        })
        .clone()
}

fn http_client() -> awc::Client {
    let connector = match tls_config() {
        Some(config) => awc::Connector::new().rustls_0_23(config),
        None => awc::Connector::new(),
    };
    awc::Client::builder()
        .connector(connector.timeout(Duration::from_secs(5)))
        .timeout(REQUEST_TIMEOUT)
        .disable_redirects()
        .add_default_header((
            "User-Agent",
            concat!("oglogstream/", env!("CARGO_PKG_VERSION")),
        ))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document(issuer: &str) -> Vec<u8> {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "end_session_endpoint": format!("{issuer}/logout"),
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn discovery_must_name_our_issuer_and_safe_endpoints() {
        let issuer = "https://id.example.com/realms/main";
        let metadata = Metadata::parse(&document(issuer), issuer).unwrap();
        assert_eq!(
            metadata.algorithms(),
            vec![Algorithm::RS256, Algorithm::ES256]
        );
        let error = Metadata::parse(&document(issuer), "https://id.example.com").unwrap_err();
        assert!(error.to_string().contains("not the configured"), "{error}");
        let mut plain: Value = serde_json::from_slice(&document(issuer)).unwrap();
        plain["token_endpoint"] = json!("http://id.example.com/token");
        let error = Metadata::parse(plain.to_string().as_bytes(), issuer).unwrap_err();
        assert!(error.to_string().contains("token_endpoint"), "{error}");
        assert!(Metadata::parse(b"[]", issuer).is_err());
    }

    #[test]
    fn urls_for_the_browser() {
        let issuer = "https://id.example.com";
        let metadata = Metadata::parse(&document(issuer), issuer).unwrap();
        let config = super::super::settings::RawAuth {
            session_secret: "0123456789abcdef0123456789abcdef".into(),
            oidc: super::super::settings::RawOidc {
                issuer: issuer.into(),
                client_id: "ogl".into(),
                redirect_url: "https://logs.example.com/auth/callback".into(),
                scopes: vec!["openid".into(), "groups".into()],
                roles: super::super::settings::RawRoles {
                    viewer: vec!["devs".into()],
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        }
        .validate()
        .unwrap()
        .oidc
        .unwrap();
        let provider = Provider::new(config);
        let url = provider.authorization_url(&metadata, "st", "no", "verifier");
        assert!(url.starts_with("https://id.example.com/auth?response_type=code&client_id=ogl&redirect_uri=https%3A%2F%2Flogs.example.com%2Fauth%2Fcallback&scope=openid+groups&state=st&nonce=no&code_challenge="), "{url}");
        assert!(url.ends_with("&code_challenge_method=S256"));
        // RFC 7636 appendix B's example.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let logout = provider.end_session_url(&metadata, Some("tok")).unwrap();
        assert_eq!(
            logout,
            "https://id.example.com/logout?client_id=ogl&post_logout_redirect_uri=https%3A%2F%2Flogs.example.com%2F&id_token_hint=tok"
        );
    }
}
