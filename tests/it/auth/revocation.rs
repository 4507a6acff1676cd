//! Signing out holds everywhere: two instances behind the same NATS (as
//! behind HAProxy) share the session secret, so a session signed in on one
//! is good on the other, and once signed out on one, its cookie is refused
//! by both (the revocation is in JetStream KV).

use super::{Browser, OidcProvider, start_server};
use crate::split::deps::Nats;
use crate::support::{Launch, free_port};
use awc::http::StatusCode;

#[actix_web::test]
async fn a_signed_out_session_is_refused_by_every_instance_on_the_bus() {
    let nats = Nats::start().await;
    let (first_port, second_port) = (free_port(), free_port());
    let provider = OidcProvider::start(&[first_port, second_port], "RSA", false).await;
    let on_nats = || Launch::default().env("NATS_URL", &nats.url());
    let first = start_server(&provider, first_port, "", on_nats()).await;
    let second = start_server(&provider, second_port, "", on_nats()).await;

    let alice = Browser::new().sign_in(&first, "alice").await;
    let (status, _) = alice.call(&second, "GET", "/api/stats", None, false).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the other instance opens the session"
    );
    let (status, me) = alice.call(&second, "GET", "/auth/me", None, false).await;
    assert_eq!(
        (status, &me["name"]),
        (StatusCode::OK, &serde_json::json!("alice"))
    );

    let (status, body) = alice.call(&first, "POST", "/auth/logout", None, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The revocation is written before the sign-out answers: no waiting.
    for server in [&first, &second] {
        let (status, body) = alice.call(server, "GET", "/api/stats", None, false).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Another session of the same user is not affected.
    let again = Browser::new().sign_in(&second, "alice").await;
    let (status, _) = again.call(&first, "GET", "/api/stats", None, false).await;
    assert_eq!(status, StatusCode::OK);
}
