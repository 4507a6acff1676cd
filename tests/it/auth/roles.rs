//! Keys and roles beside sign-in: each key list grants its role, a request
//! its role does not allow gets `403` naming what was refused, no
//! credentials get `401`; without any configuration everything stays open.

use super::{ADMIN_KEY, EDITOR_KEY, READ_KEY, get_with_key, start};
use crate::support::Server;
use awc::http::StatusCode;
use serde_json::{Value, json};

async fn post_with_key(
    server: &Server,
    key: Option<&str>,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let mut request = server
        .client
        .post(server.url(path))
        .insert_header(("Content-Type", "application/json"));
    if let Some(key) = key {
        request = request.insert_header(("X-API-Key", key));
    }
    let mut response = request.send_body(body.to_string()).await.unwrap();
    let bytes = response.body().await.unwrap();
    (
        response.status(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn channel(name: &str) -> Value {
    json!({"name": name, "kind": "webhook", "url": "http://127.0.0.1:9/hook"})
}

#[actix_web::test]
async fn keys_map_onto_roles_beside_sign_in() {
    let (_provider, server) = start(
        "RSA",
        false,
        &format!("read_keys = [\"{READ_KEY}\"]\neditor_keys = [\"{EDITOR_KEY}\"]"),
    )
    .await;
    for key in [READ_KEY, EDITOR_KEY, ADMIN_KEY] {
        let (status, body) = get_with_key(&server, key, "/api/stats").await;
        assert_eq!(status, StatusCode::OK, "{key}: {body}");
    }
    let (status, me) = get_with_key(&server, READ_KEY, "/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["credential"], "key");
    assert!(
        me["name"].as_str().unwrap().starts_with("key:sha256:"),
        "{me}"
    );
    assert!(!me.to_string().contains(READ_KEY), "never the key itself");
    assert_eq!(me["csrf_token"], Value::Null);

    let (status, body) = post_with_key(
        &server,
        Some(READ_KEY),
        "/api/alerts/channels",
        &channel("r"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["field"], "alerts.write");
    assert!(body["error"].as_str().unwrap().contains("editor"), "{body}");
    let (status, body) = post_with_key(
        &server,
        Some(EDITOR_KEY),
        "/api/alerts/channels",
        &channel("e"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = post_with_key(
        &server,
        Some(ADMIN_KEY),
        "/api/alerts/channels",
        &channel("a"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // A change no rule names needs admin: an editor is refused before the
    // router says there is no such route.
    let (status, body) =
        post_with_key(&server, Some(EDITOR_KEY), "/api/no-such-thing", &json!({})).await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::FORBIDDEN, &json!("admin"))
    );
    let (status, _) =
        post_with_key(&server, Some(ADMIN_KEY), "/api/no-such-thing", &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // No credentials at all, or a wrong key: 401, even for reads (sign-in
    // closes what keys alone left open).
    let (status, _) = server.get("/api/stats").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get_with_key(&server, "wrong-key-0123456789abcdef", "/api/stats").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post_with_key(&server, None, "/api/alerts/channels", &channel("n")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Health and the dashboard's files stay open.
    assert_eq!(server.get("/health").await.0, StatusCode::OK);
}

#[actix_web::test]
async fn without_configuration_everything_stays_open() {
    let server = Server::start().await;
    let (status, me) = server.get("/auth/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "admin");
    assert_eq!(me["credential"], "anonymous");
    assert_eq!(me["sign_in"], false);
    let (status, _) = post_with_key(&server, None, "/api/alerts/channels", &channel("open")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server.get("/auth/login").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["field"], "auth.oidc");
}
