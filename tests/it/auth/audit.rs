//! The audit log holds exactly the events a test caused: sign-ins, a failed
//! sign-in, sign-outs, every 401 and 403, every change (and a failed one),
//! each with who (never a key, only its fingerprint), from where, the
//! outcome; nothing else.

use super::{
    ADMIN_KEY, Browser, CLIENT_SECRET, SESSION_SECRET, get_with_key, start, summary, wait_for_audit,
};
use awc::http::StatusCode;
use oglogstream::security::auth::fingerprint;
use serde_json::json;

#[actix_web::test]
async fn the_audit_log_holds_exactly_the_events_the_test_caused() {
    let (_provider, server) = start("RSA", false, "").await;
    let wrong_key = "wrong-key-0123456789abcdef";

    assert_eq!(server.get("/api/logs").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get_with_key(&server, wrong_key, "/api/logs").await.0,
        StatusCode::UNAUTHORIZED
    );
    let victor = Browser::new().sign_in(&server, "victor").await;
    let channel = json!({"name": "audited", "kind": "webhook", "url": "http://127.0.0.1:9/hook"});
    let (status, _) = victor
        .call(
            &server,
            "POST",
            "/api/alerts/channels",
            Some(&channel),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let alice = Browser::new().sign_in(&server, "alice").await;
    let (status, _) = alice
        .call(
            &server,
            "POST",
            "/api/alerts/channels",
            Some(&channel),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = alice
        .call(
            &server,
            "POST",
            "/api/alerts/channels",
            Some(&channel),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = alice
        .call(
            &server,
            "POST",
            "/api/alerts/rules",
            Some(&json!({"name": ""})),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let refused = Browser::new().sign_in_answer(&server, "mallory").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let (status, _) = alice
        .call(&server, "POST", "/auth/logout", None, true)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = alice.call(&server, "GET", "/api/logs", None, false).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let wrong = fingerprint(wrong_key);
    let mut expected: Vec<(&str, &str, &str)> = vec![
        ("unauthorized", "denied", "none"),
        ("unauthorized", "denied", &wrong),
        ("sign_in", "success", "victor"),
        ("forbidden", "denied", "victor"),
        ("sign_in", "success", "alice"),
        ("forbidden", "denied", "alice"),
        ("alert_channel.create", "success", "alice"),
        ("change", "failure", "alice"),
        ("sign_in_failed", "failure", "mallory"),
        ("sign_out", "success", "alice"),
        ("unauthorized", "denied", "alice"),
    ];
    let as_tuples = |records: &[serde_json::Value]| -> Vec<(String, String, String)> {
        records.iter().map(summary).collect()
    };
    let owned = |expected: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        expected
            .iter()
            .map(|(a, o, w)| (a.to_string(), o.to_string(), w.to_string()))
            .collect()
    };
    let records = wait_for_audit(&server, Some(ADMIN_KEY), expected.len()).await;
    assert_eq!(as_tuples(&records), owned(&expected), "{records:#?}");

    // What each record says besides.
    let attribute = |index: usize, key: &str| records[index]["attributes"][key].clone();
    for (index, record) in records.iter().enumerate() {
        assert_eq!(record["service"], "oglogstream.audit");
        assert_eq!(attribute(index, "audit.client_ip"), "127.0.0.1", "{record}");
        assert!(attribute(index, "audit.request_id").is_string(), "{record}");
        let level = if summary(record).1 == "success" {
            "info"
        } else {
            "warn"
        };
        assert_eq!(record["level"], level, "{record}");
    }
    assert_eq!(attribute(3, "audit.reason"), "alerts.write");
    assert_eq!(attribute(3, "audit.status"), "403");
    assert_eq!(attribute(3, "audit.role"), "viewer");
    assert_eq!(attribute(3, "audit.credential"), "session");
    assert_eq!(attribute(3, "audit.path"), "/api/alerts/channels");
    assert_eq!(attribute(5, "audit.reason"), "missing or wrong CSRF token");
    assert_eq!(attribute(6, "audit.target"), "audited");
    assert_eq!(attribute(6, "audit.status"), "201");
    assert_eq!(
        records[6]["message"],
        "alert_channel.create by alice on audited: success"
    );
    assert_eq!(attribute(7, "audit.status"), "400");
    assert_eq!(
        attribute(8, "audit.reason"),
        "no role for the user's groups"
    );
    assert_eq!(attribute(10, "audit.reason"), "session signed out");
    assert_eq!(attribute(1, "audit.credential"), "none");
    // No secret anywhere: keys appear only as fingerprints.
    let text = serde_json::to_string(&records).unwrap();
    for secret in [
        wrong_key,
        ADMIN_KEY,
        CLIENT_SECRET,
        SESSION_SECRET,
        &alice.cookie,
        &alice.csrf,
    ] {
        assert!(!text.contains(secret), "{secret} leaked into the audit log");
    }

    // One more change, by a key: it is the next record, so nothing else
    // was audited in between.
    let mut response = server
        .client
        .delete(server.url("/api/alerts/channels/audited"))
        .insert_header(("X-API-Key", ADMIN_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NO_CONTENT,
        "{:?}",
        response.body().await
    );
    let admin = fingerprint(ADMIN_KEY);
    expected.push(("alert_channel.delete", "success", &admin));
    let records = wait_for_audit(&server, Some(ADMIN_KEY), expected.len()).await;
    assert_eq!(as_tuples(&records), owned(&expected), "{records:#?}");
    assert_eq!(records[11]["attributes"]["audit.credential"], "key");
    assert_eq!(records[11]["attributes"]["audit.role"], "admin");
}
