//! Sign-in, roles and the audit log (issue 23) against the real binary and
//! a real OpenID Connect provider: the npm package oidc-provider
//! (`tests/clients/oidc_provider.mjs`), started per test on a loopback port
//! with its own clients, users and groups. `Browser` plays the browser's
//! part without one: it follows the redirects, keeps each origin's cookies
//! and fills in the provider's login form (the browser test in `web/e2e`
//! does the same in Chromium).

mod audit;
mod reserved;
mod revocation;
mod roles;
mod signin;
mod visibility;

use crate::support::{Launch, Server, eventually, free_port};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const SESSION_SECRET: &str = "test-session-secret-0123456789abcdef";
pub const CLIENT_ID: &str = "oglogstream";
pub const CLIENT_SECRET: &str = "test-client-secret-0123456789";
pub const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
pub const READ_KEY: &str = "read-key-0123456789abcdef";
pub const EDITOR_KEY: &str = "editor-key-0123456789abcdef";

/// The provider's users: `login -> groups` (and tenants for paula).
pub fn users() -> Value {
    json!({
        "alice": {"groups": ["sre"], "email": "alice@example.test"},
        "victor": {"groups": ["devs"]},
        "paula": {"groups": ["platform", "devs"], "tenants": ["acme", "globex"]},
        "mallory": {"groups": ["marketing"]},
    })
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// `oidc_provider.mjs` on a free loopback port, killed on drop.
pub struct OidcProvider {
    child: Option<Child>,
    pub port: u16,
    options: Value,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl OidcProvider {
    /// A provider whose one client is ours, redirecting to `callbacks`
    /// (`http://127.0.0.1:<port>/auth/callback` of each server), signing
    /// with a key of `kty` (`RSA`: RS256, `EC`: ES256).
    pub async fn start(server_ports: &[u16], kty: &str, claims_in_id_token: bool) -> OidcProvider {
        assert!(
            clients_dir().join("node_modules/oidc-provider").is_dir(),
            "tests/clients/node_modules is missing oidc-provider: run scripts/install-test-deps.sh (`make test` does)"
        );
        let alg = if kty == "EC" { "ES256" } else { "RS256" };
        let options = json!({
            "port": free_port(),
            "keys": [{"kty": kty, "kid": format!("{kty}-1")}],
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": server_ports.iter().map(|p| format!("http://127.0.0.1:{p}/auth/callback")).collect::<Vec<_>>(),
                "post_logout_redirect_uris": server_ports.iter().map(|p| format!("http://127.0.0.1:{p}/")).collect::<Vec<_>>(),
                "id_token_signed_response_alg": alg,
            }],
            "users": users(),
            "claims_in_id_token": claims_in_id_token,
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let mut provider = OidcProvider {
            child: None,
            port: options["port"].as_u64().expect("port") as u16,
            log: dir.path().join("provider.log"),
            options,
            _dir: dir,
        };
        provider.spawn().await;
        provider
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).expect("provider log");
        let child = Command::new("node")
            .arg("oidc_provider.mjs")
            .arg(self.options.to_string())
            .current_dir(clients_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start node oidc_provider.mjs");
        self.child = Some(child);
        let url = format!("{}/.well-known/openid-configuration", self.issuer());
        let client = awc::Client::default();
        eventually(
            "the OpenID provider to answer",
            Duration::from_secs(30),
            || {
                let request = client.get(&url).send();
                async move {
                    request
                        .await
                        .ok()
                        .filter(|r| r.status().is_success())
                        .map(|_| ())
                }
            },
        )
        .await;
    }

    /// Stops it and starts it again on the same port with a new signing
    /// key (`kid`): the provider has rotated its keys (and forgotten its
    /// sessions).
    pub async fn rotate_keys(&mut self, kid: &str) {
        self.stop();
        let kty = self.options["keys"][0]["kty"].clone();
        self.options["keys"] = json!([{"kty": kty, "kid": kid}]);
        self.spawn().await;
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The configuration of a server signing in with `provider`, listening on
/// `port`, plus `extra` TOML (with an admin key to read the audit log).
pub fn config(provider: &OidcProvider, port: u16, extra: &str) -> String {
    format!(
        r#"
[auth]
session_secret = "{SESSION_SECRET}"
session_ttl = "1h"

[auth.oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_url = "http://127.0.0.1:{port}/auth/callback"
scopes = ["openid", "profile", "email", "groups", "tenants"]
tenants_claim = "tenants"
roles = {{ viewer = ["devs"], editor = ["sre"], admin = ["platform"] }}

[security]
admin_keys = ["{ADMIN_KEY}"]
{extra}
"#,
        issuer = provider.issuer()
    )
}

/// A server signing in with `provider`, and its configuration file.
pub struct SignInServer {
    pub server: Server,
    _config: tempfile::TempDir,
}

impl std::ops::Deref for SignInServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

pub async fn start_server(
    provider: &OidcProvider,
    port: u16,
    extra: &str,
    launch: Launch,
) -> SignInServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("oglogstream.toml");
    std::fs::write(&path, config(provider, port, extra)).expect("write config");
    let server = Server::launch(
        launch
            .port(port)
            .arg("--config")
            .arg(path.to_str().expect("utf-8 path"))
            .env("FLUSH_TIMEOUT", "50ms"),
    )
    .await;
    SignInServer {
        server,
        _config: dir,
    }
}

/// A provider and one server signing in with it.
pub async fn start(
    kty: &str,
    claims_in_id_token: bool,
    extra: &str,
) -> (OidcProvider, SignInServer) {
    let port = free_port();
    let provider = OidcProvider::start(&[port], kty, claims_in_id_token).await;
    let server = start_server(&provider, port, extra, Launch::default()).await;
    (provider, server)
}

/// An HTTP answer as the browser sees it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    /// The `Set-Cookie` headers, as sent.
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Page {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A browser without a browser: redirects followed by hand, cookies kept per
/// origin (`127.0.0.1:<port>`).
pub struct Browser {
    client: awc::Client,
    cookies: HashMap<String, BTreeMap<String, String>>,
}

fn origin_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or_default().to_string()
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("http://{}{location}", origin_of(base))
    }
}

fn unescape(html: &str) -> String {
    html.replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            client: awc::Client::builder()
                .disable_redirects()
                .timeout(Duration::from_secs(30))
                .finish(),
            cookies: HashMap::new(),
        }
    }

    /// The cookie `name` of the origin of `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.cookies.get(&origin_of(url))?.get(name).cloned()
    }

    pub fn set_cookie(&mut self, url: &str, name: &str, value: &str) {
        self.cookies
            .entry(origin_of(url))
            .or_default()
            .insert(name.into(), value.into());
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let jar = self.cookies.get(&origin_of(url))?;
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    async fn send(
        &mut self,
        url: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = match form {
            Some(_) => self.client.post(url),
            None => self.client.get(url),
        };
        if let Some(cookies) = self.cookie_header(url) {
            request = request.insert_header(("Cookie", cookies));
        }
        for header in headers {
            request = request.insert_header(*header);
        }
        let sent = match form {
            Some(form) => request.send_form(&form),
            None => request.send(),
        };
        let mut response = sent.await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let jar = self.cookies.entry(origin_of(url)).or_default();
        let mut set_cookies = Vec::new();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            set_cookies.push(text.to_string());
            let Some((name, rest)) = text.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or_default();
            let lower = text.to_ascii_lowercase();
            if value.is_empty()
                || lower.contains("max-age=0")
                || lower.contains("expires=thu, 01 jan 1970")
            {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| absolute(url, l));
        let body = response.body().limit(1 << 20).await.expect("body");
        Page {
            status: response.status(),
            location,
            set_cookies,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.send(url, None, &[]).await
    }

    /// `GET` with headers of our own (a proxy's, say).
    pub async fn get_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Page {
        self.send(url, None, headers).await
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        self.send(url, Some(form), &[]).await
    }

    /// From `/auth/login` to the callback URL the provider sends the
    /// browser back to, logging in as `user` on the provider's page.
    /// `tamper` may change the URL to the provider first.
    pub async fn through_provider(
        &mut self,
        server: &Server,
        user: &str,
        tamper: impl Fn(String) -> String,
    ) -> String {
        let start = self
            .get(&server.url("/auth/login?return_to=%2Fexplorer"))
            .await;
        assert_eq!(start.status, StatusCode::FOUND, "{}", start.body);
        let mut url = tamper(start.location.expect("a redirect to the provider"));
        let callback = server.url("/auth/callback");
        for _ in 0..10 {
            if url.starts_with(&callback) {
                return url;
            }
            let page = self.get(&url).await;
            if let Some(location) = page.location {
                url = location;
                continue;
            }
            assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
            assert!(
                page.body.contains("name=\"login\""),
                "not the login page: {}",
                page.body
            );
            let action = page
                .body
                .split("action=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(unescape)
                .expect("the login form's action");
            let submitted = self
                .send(
                    &absolute(&url, &action),
                    Some(&[("prompt", "login"), ("login", user), ("password", "any")]),
                    &[],
                )
                .await;
            url = submitted.location.unwrap_or_else(|| {
                panic!(
                    "the login form answered {}: {}",
                    submitted.status, submitted.body
                )
            });
        }
        panic!("no way back to {callback} from {url}");
    }

    /// Signs in as `user`; the callback's answer.
    pub async fn sign_in_answer(&mut self, server: &Server, user: &str) -> Page {
        let callback = self.through_provider(server, user, |url| url).await;
        self.get(&callback).await
    }

    /// Signs in as `user`, which must succeed, and asks `/auth/me`.
    pub async fn sign_in(&mut self, server: &Server, user: &str) -> Session {
        let answer = self.sign_in_answer(server, user).await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "sign-in of {user}: {}",
            answer.body
        );
        assert_eq!(
            answer.location.as_deref(),
            Some(server.url("/explorer").as_str())
        );
        let cookie = self
            .cookie(&server.url("/"), "oglogstream_session")
            .expect("a session cookie");
        let me = self.get(&server.url("/auth/me")).await.json();
        assert_eq!(me["signed_in"], true, "{me}");
        Session {
            cookie,
            csrf: me["csrf_token"].as_str().expect("a CSRF token").to_string(),
            me,
        }
    }
}

/// A signed-in session, to send with requests of our own.
#[derive(Clone, Debug)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub me: Value,
}

impl Session {
    /// `method path` with the session cookie (and the CSRF token if `csrf`).
    pub async fn call(
        &self,
        server: &Server,
        method: &str,
        path: &str,
        body: Option<&Value>,
        csrf: bool,
    ) -> (StatusCode, Value) {
        let method = awc::http::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = server
            .client
            .request(method, server.url(path))
            .insert_header(("Cookie", format!("oglogstream_session={}", self.cookie)));
        if csrf {
            request = request.insert_header(("X-CSRF-Token", self.csrf.clone()));
        }
        let mut response = match body {
            Some(body) => {
                request
                    .insert_header(("Content-Type", "application/json"))
                    .send_body(body.to_string())
                    .await
            }
            None => request.send().await,
        }
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        let bytes = response.body().limit(1 << 24).await.expect("body");
        (
            response.status(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

/// `GET path` with an API key.
pub async fn get_with_key(server: &Server, key: &str, path: &str) -> (StatusCode, Value) {
    get_as(server, Some(key), path).await
}

/// `GET path` with an API key, or without.
pub async fn get_as(server: &Server, key: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut request = server.client.get(server.url(path));
    if let Some(key) = key {
        request = request.insert_header(("X-API-Key", key));
    }
    let mut response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let bytes = response.body().limit(1 << 24).await.expect("body");
    (
        response.status(),
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
    )
}

/// The audit log's records, oldest first, as an admin (key) reads them.
pub async fn audit_records(server: &Server, admin_key: Option<&str>) -> Vec<Value> {
    let (status, rows) = get_as(
        server,
        admin_key,
        "/api/logs?query=service%3A%22oglogstream.audit%22&order=asc&limit=1000",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    rows.as_array().cloned().unwrap_or_default()
}

/// Waits until the audit log holds `count` records; returns them.
pub async fn wait_for_audit(server: &Server, admin_key: Option<&str>, count: usize) -> Vec<Value> {
    eventually(
        &format!("{count} audit records"),
        Duration::from_secs(20),
        || async {
            let records = audit_records(server, admin_key).await;
            (records.len() >= count).then_some(records)
        },
    )
    .await
}

/// `(action, outcome, actor)` of an audit record.
pub fn summary(record: &Value) -> (String, String, String) {
    let attribute = |key: &str| {
        record["attributes"][key]
            .as_str()
            .unwrap_or("-")
            .to_string()
    };
    (
        attribute("audit.action"),
        attribute("audit.outcome"),
        attribute("audit.actor"),
    )
}
