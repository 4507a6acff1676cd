//! The sign-in flow through a real provider: roles from groups (from the
//! ID token or from userinfo), RS256 and ES256, the cookie's attributes,
//! state, nonce, PKCE, replayed codes and mix-ups refused, a key rotation
//! followed once the refetch interval allows, CSRF on changes, and a
//! sign-out that revokes the session and ends the provider's.

use super::{Browser, EDITOR_KEY, READ_KEY, start};
use crate::support::eventually;
use awc::http::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[actix_web::test]
async fn users_sign_in_through_the_provider_with_the_role_their_groups_grant() {
    // Groups and tenants from userinfo (oidc-provider keeps scope claims out
    // of the ID token by default), RS256.
    let (provider, server) = start("RSA", false, "").await;
    let mut browser = Browser::new();
    let answer = browser.sign_in_answer(&server, "alice").await;
    assert_eq!(
        answer.status,
        StatusCode::SEE_OTHER,
        "{}\nserver:\n{}\nprovider:\n{}",
        answer.body,
        server.logs(),
        provider.logs()
    );
    let session_cookie = answer
        .set_cookies
        .iter()
        .find(|c| c.starts_with("oglogstream_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(
        !session_cookie.contains("Secure"),
        "plain HTTP: {session_cookie}"
    );
    assert!(
        answer
            .set_cookies
            .iter()
            .any(|c| c.starts_with("oglogstream_login=;")),
        "the sign-in's state is deleted: {:?}",
        answer.set_cookies
    );
    let me = browser.get(&server.url("/auth/me")).await.json();
    assert_eq!(me["name"], "alice");
    assert_eq!(me["role"], "editor");
    assert_eq!(me["credential"], "session");
    assert_eq!(
        me["tenants"],
        json!([]),
        "a tenants claim is configured; alice has none"
    );
    assert_eq!(me["permissions"]["alerts.write"], true);
    assert_eq!(me["permissions"]["audit.read"], false);
    assert!(
        me["csrf_token"].as_str().is_some_and(|t| t.len() > 20),
        "{me}"
    );

    let paula = Browser::new().sign_in(&server, "paula").await;
    assert_eq!(paula.me["role"], "admin");
    assert_eq!(paula.me["tenants"], json!(["acme", "globex"]));
    let victor = Browser::new().sign_in(&server, "victor").await;
    assert_eq!(victor.me["role"], "viewer");
    assert_eq!(victor.me["permissions"]["alerts.write"], false);
    let (status, _) = victor.call(&server, "GET", "/api/logs", None, false).await;
    assert_eq!(status, StatusCode::OK);

    // Verified by the provider, but no group of theirs grants a role.
    let refused = Browser::new().sign_in_answer(&server, "mallory").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.json()["field"], "roles");

    // Without a session or key: 401, saying how to get in.
    let (status, body) = server.get("/api/logs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"].as_str().unwrap().contains("/auth/login"),
        "{body}"
    );
    let (status, body) = server.get("/auth/me").await;
    assert_eq!(
        (status, &body["signed_in"]),
        (StatusCode::OK, &json!(false))
    );
    assert_eq!(body["sign_in"], true);
    drop(provider);
}

#[actix_web::test]
async fn es256_tokens_carrying_their_groups_sign_in_too() {
    let (_provider, server) = start("EC", true, "").await;
    let paula = Browser::new().sign_in(&server, "paula").await;
    assert_eq!(paula.me["role"], "admin");
    assert_eq!(paula.me["tenants"], json!(["acme", "globex"]));
}

/// `name=value` replaced in a URL's query.
fn replace_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').expect("a query");
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key == name => format!("{key}={value}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

#[actix_web::test]
async fn a_wrong_state_nonce_verifier_issuer_or_a_replayed_code_is_refused() {
    let (_provider, server) = start("RSA", false, "").await;
    let cases = [
        ("state", "forged-state", StatusCode::BAD_REQUEST, "state"),
        (
            "nonce",
            "forged-nonce",
            StatusCode::UNAUTHORIZED,
            "id_token",
        ),
        // The provider refuses to exchange the code: the verifier we hold
        // does not match the challenge it was given.
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            StatusCode::UNAUTHORIZED,
            "code",
        ),
    ];
    for (param, value, status, field) in cases {
        let mut browser = Browser::new();
        let callback = browser
            .through_provider(&server, "alice", |url| replace_param(&url, param, value))
            .await;
        let answer = browser.get(&callback).await;
        assert_eq!(answer.status, status, "{param}: {}", answer.body);
        assert_eq!(answer.json()["field"], field, "{param}: {}", answer.body);
        if param == "nonce" {
            assert!(answer.body.contains("nonce"), "{}", answer.body);
        }
        assert!(
            browser
                .cookie(&server.url("/"), "oglogstream_session")
                .is_none()
        );
    }

    // A callback the provider sent to someone else's browser: no sign-in
    // of ours is in progress here.
    let mut alice = Browser::new();
    let callback = alice.through_provider(&server, "alice", |url| url).await;
    let stranger = Browser::new().get(&callback).await;
    assert_eq!(
        stranger.status,
        StatusCode::BAD_REQUEST,
        "{}",
        stranger.body
    );
    assert_eq!(stranger.json()["field"], "state");
    // Another provider's answer (RFC 9207's iss) is refused.
    let mixed_up = alice
        .get(&replace_param(
            &callback,
            "iss",
            "https%3A%2F%2Fevil.example",
        ))
        .await;
    assert_eq!(mixed_up.json()["field"], "iss", "{}", mixed_up.body);

    // The same code twice: the second time with the sign-in's cookie put
    // back, the provider refuses the used code.
    let mut bob = Browser::new();
    let callback = bob.through_provider(&server, "alice", |url| url).await;
    let login_cookie = bob
        .cookie(&server.url("/"), "oglogstream_login")
        .expect("login cookie");
    assert_eq!(bob.get(&callback).await.status, StatusCode::SEE_OTHER);
    bob.set_cookie(&server.url("/"), "oglogstream_login", &login_cookie);
    let replay = bob.get(&callback).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.body);
    assert_eq!(replay.json()["field"], "code");
}

#[actix_web::test]
async fn a_rotated_signing_key_is_fetched_once_the_refetch_interval_allows() {
    let (mut provider, server) = start("RSA", true, "").await;
    let first_fetch = Instant::now();
    Browser::new().sign_in(&server, "alice").await;
    provider.rotate_keys("RSA-2").await;
    // Signed with a key the cached JWKS does not hold, and the keys were
    // fetched less than 10 s ago: refused, not fetched again.
    let early = Browser::new().sign_in_answer(&server, "alice").await;
    if first_fetch.elapsed() < Duration::from_secs(9) {
        assert_eq!(early.status, StatusCode::UNAUTHORIZED, "{}", early.body);
        assert_eq!(early.json()["field"], "id_token");
        assert!(early.body.contains("no key"), "{}", early.body);
    }
    // Then fetched again: the new key signs people in.
    let session = eventually(
        "a sign-in with the new key",
        Duration::from_secs(30),
        || async {
            let mut browser = Browser::new();
            let answer = browser.sign_in_answer(&server, "alice").await;
            (answer.status == StatusCode::SEE_OTHER).then_some(answer)
        },
    )
    .await;
    assert!(
        first_fetch.elapsed() >= Duration::from_secs(9),
        "not before the interval"
    );
    assert!(
        session
            .set_cookies
            .iter()
            .any(|c| c.starts_with("oglogstream_session="))
    );
}

#[actix_web::test]
async fn changes_with_the_cookie_need_the_csrf_token_and_sign_out_ends_both_sessions() {
    let (provider, server) = start(
        "RSA",
        false,
        &format!("editor_keys = [\"{EDITOR_KEY}\"]\ntrusted_proxies = [\"127.0.0.1\"]"),
    )
    .await;
    let mut alice_browser = Browser::new();
    let alice = alice_browser.sign_in(&server, "alice").await;
    let victor = Browser::new().sign_in(&server, "victor").await;
    let channel =
        |name: &str| json!({"name": name, "kind": "webhook", "url": "http://127.0.0.1:9/hook"});

    let (status, body) = alice
        .call(
            &server,
            "POST",
            "/api/alerts/channels",
            Some(&channel("a")),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["field"], "X-CSRF-Token");
    // Another session's token is no good either.
    let stolen = super::Session {
        csrf: victor.csrf.clone(),
        ..alice.clone()
    };
    let (status, _) = stolen
        .call(
            &server,
            "POST",
            "/api/alerts/channels",
            Some(&channel("a")),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = alice
        .call(
            &server,
            "POST",
            "/api/alerts/channels",
            Some(&channel("a")),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A viewer's session is refused the editor's action, naming it.
    let (status, body) = victor
        .call(
            &server,
            "POST",
            "/api/alerts/channels",
            Some(&channel("v")),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["field"], "alerts.write");
    // A live tail opened with the cookie from another site's page is refused.
    let live = |origin: String| {
        server
            .client
            .ws(server.ws_url("/ws/live"))
            .header("Cookie", format!("oglogstream_session={}", alice.cookie))
            .header("Origin", origin)
            .connect()
    };
    match live("http://evil.example".into()).await {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
            assert_eq!(status, StatusCode::FORBIDDEN)
        }
        other => panic!(
            "a foreign origin's WebSocket: {:?}",
            other.map(|(r, _)| r.status())
        ),
    }
    let (response, _) = live(format!("http://127.0.0.1:{}", server.port))
        .await
        .expect("the dashboard's own origin opens the live tail");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    // Behind a trusted proxy that terminates TLS, cookies are Secure.
    let mut browser = Browser::new();
    let plain = browser.get(&server.url("/auth/login")).await;
    assert!(
        !plain.set_cookies[0].contains("Secure"),
        "{:?}",
        plain.set_cookies
    );
    let proxied = browser
        .get_with(
            &server.url("/auth/login"),
            &[("X-Forwarded-Proto", "https")],
        )
        .await;
    assert!(
        proxied.set_cookies[0].ends_with("; Secure"),
        "{:?}",
        proxied.set_cookies
    );

    // A key needs no CSRF token: there is no cookie to ride on.
    let mut response = server
        .client
        .post(server.url("/api/alerts/channels"))
        .insert_header(("Authorization", format!("Bearer {EDITOR_KEY}")))
        .insert_header(("Content-Type", "application/json"))
        .send_body(channel("k").to_string())
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        response.body().await
    );

    // Sign-out: refused without the token, then the session is revoked and
    // the browser is sent to end the provider's session too.
    let (status, _) = alice
        .call(&server, "POST", "/auth/logout", None, false)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = alice.call(&server, "GET", "/api/logs", None, false).await;
    assert_eq!(status, StatusCode::OK, "still signed in");
    let (status, body) = alice
        .call(&server, "POST", "/auth/logout", None, true)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let redirect = body["redirect"].as_str().unwrap();
    assert!(
        redirect.starts_with(&format!("{}/session/end?", provider.issuer())),
        "{redirect}"
    );
    assert!(redirect.contains("id_token_hint="), "{redirect}");
    assert!(
        redirect.contains(&format!(
            "post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A{}%2F",
            server.port
        )),
        "{redirect}"
    );
    let (status, _) = alice.call(&server, "GET", "/api/logs", None, false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the cookie is revoked");
    // /auth/me says nobody is signed in (so the dashboard signs in again).
    let (status, me) = alice.call(&server, "GET", "/auth/me", None, false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["signed_in"], false, "{me}");
    assert_eq!(me["reason"], "session signed out");
    // At the provider, alice confirms; it ends her session there and sends
    // the browser back to the dashboard.
    let page = alice_browser.get(redirect).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("sign-out"), "{}", page.body);
    let field = |name: &str| {
        page.body
            .split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in {}", page.body))
            .to_string()
    };
    let action = page
        .body
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-out form");
    let confirmed = alice_browser
        .post_form(action, &[("xsrf", &field("xsrf")), ("logout", "yes")])
        .await;
    assert_eq!(
        confirmed.location.as_deref(),
        Some(server.url("/").as_str()),
        "{}",
        confirmed.body
    );
}

#[actix_web::test]
async fn with_the_provider_away_sign_in_answers_503_and_keys_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oglogstream.toml");
    let port = crate::support::free_port();
    std::fs::write(
        &path,
        format!(
            r#"
[auth]
session_secret = "{secret}"
[auth.oidc]
issuer = "http://127.0.0.1:{away}"
client_id = "oglogstream"
redirect_url = "http://127.0.0.1:{port}/auth/callback"
roles = {{ viewer = ["devs"] }}
[security]
read_keys = ["{READ_KEY}"]
"#,
            secret = super::SESSION_SECRET,
            away = crate::support::free_port(),
        ),
    )
    .unwrap();
    let server = crate::support::Server::launch(
        crate::support::Launch::default()
            .port(port)
            .arg("--config")
            .arg(path.to_str().unwrap()),
    )
    .await;
    let answer = Browser::new().get(&server.url("/auth/login")).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert!(answer.body.contains("unavailable"), "{}", answer.body);
    let (status, _) = super::get_with_key(&server, READ_KEY, "/api/stats").await;
    assert_eq!(status, StatusCode::OK, "keys do not need the provider");
}
