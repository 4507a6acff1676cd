//! `/api/alerts`: keys (read to list, admin to change, a read key on a
//! change is a 403), rules and channels created, replaced and deleted, the
//! config file's rules read-only, 400s naming the field, test messages, the
//! preview, and start-up errors naming the key.

use super::receiver::Receiver;
use super::{
    Client, EVERY_SECOND, channel, config_file, listed_rule, send_logs, statuses, with_config,
};
use crate::support::{Server, eventually, log, run_to_exit};
use awc::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const READ: &str = "read-key-0123456789abcdef";
const ADMIN: &str = "admin-key-0123456789abcdef";

fn rule_body(name: &str) -> Value {
    json!({"name": name, "query": "service:apirule level:>=warn", "window": "5s",
           "threshold": 1, "group_by": ["service", "region"], "channels": ["hook"],
           "labels": {"team": "web"}})
}

#[actix_web::test]
async fn rules_and_channels_through_the_api_need_the_right_keys() {
    let hook = Receiver::start(&[]);
    let api_hook = Receiver::start(&[]);
    let (_dir, path) = config_file(&format!(
        r#"
[security]
read_keys = ["{READ}"]
admin_keys = ["{ADMIN}"]
{EVERY_SECOND}{hook}
[[alerts.rules]]
name = "config rule"
query = "service:cfg"
window = "10s"
threshold = 100
channels = ["hook"]
"#,
        hook = channel("hook", "webhook", &hook.url),
    ));
    let server = Server::launch(with_config(&path)).await;
    let nobody = Client::new(&server, None);
    let reader = Client::new(&server, Some(READ));
    let admin = Client::new(&server, Some(ADMIN));

    // Keys: none is a 401, a read key lists, an admin key lists and changes.
    assert_eq!(nobody.get("/api/alerts").await.0, StatusCode::UNAUTHORIZED);
    let config_rule = listed_rule(&server, Some(READ), "config rule").await;
    let config_id = config_rule["id"].as_str().unwrap().to_string();
    assert_eq!(config_rule["read_only"], true);
    assert_eq!(config_rule["source"], "config");
    listed_rule(&server, Some(ADMIN), "config rule").await;
    let (status, body) = reader
        .post("/api/alerts/rules", &rule_body("api rule"))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a read key cannot change: {body}"
    );
    let (status, _) = nobody
        .post("/api/alerts/rules", &rule_body("api rule"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An invalid rule is a 400 naming the field.
    for (field, value, expected) in [
        ("query", json!("level:loud"), "query"),
        ("channels", json!(["nope"]), "channels"),
        ("window", json!("500ms"), "window"),
        ("threshold", json!(-1), "threshold"),
        ("group_by", json!(["a", "b", "c", "d"]), "group_by"),
        ("name", json!(""), "name"),
        ("name", json!("config rule"), "name"),
    ] {
        let mut body = rule_body("api rule");
        body[field] = value;
        let (status, answer) = admin.post("/api/alerts/rules", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["field"], expected, "{answer}");
        assert!(answer["error"].is_string());
    }
    let (status, answer) = admin
        .post("/api/alerts/rules", &json!("not an object"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    let (status, created) = admin
        .post("/api/alerts/rules", &rule_body("api rule"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let listed = listed_rule(&server, Some(READ), "api rule").await;
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["source"], "api");
    assert_eq!(listed["read_only"], false);
    assert_eq!(listed["group_by"], json!(["service", "region"]));
    assert_eq!(listed["labels"]["team"], "web");

    // The config file's rules are read-only; unknown ids are 404s.
    let config_path = format!("/api/alerts/rules/{config_id}");
    let (status, answer) = admin.put(&config_path, &rule_body("config rule")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["field"], "id");
    let (status, answer) = admin.delete(&config_path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["field"], "id");
    let (status, _) = admin
        .put("/api/alerts/rules/no-such-rule", &rule_body("x"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A channel made through the API, and the rule moved onto it (PUT
    // replaces the whole rule; a listed rule can be sent back as it is).
    let new_channel = json!({"name": "api-hook", "kind": "slack", "url": api_hook.url});
    let (status, answer) = admin.post("/api/alerts/channels", &new_channel).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = admin
        .post(
            "/api/alerts/channels",
            &json!({"name": "pd", "kind": "pagerduty"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["field"], "routing_key");
    let (_, all) = reader.get("/api/alerts").await;
    let listed_channel = all["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "api-hook")
        .cloned()
        .unwrap();
    assert_eq!(listed_channel["source"], "api");
    assert!(
        !listed_channel["url"].as_str().unwrap().contains("/hook"),
        "receiver URLs may hold secrets: {listed_channel}"
    );
    let mut moved = listed_rule(&server, Some(READ), "api rule").await;
    moved["channels"] = json!(["api-hook"]);
    let rule_path = format!("/api/alerts/rules/{id}");
    let (status, answer) = admin.put(&rule_path, &moved).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        listed_rule(&server, Some(READ), "api rule").await["channels"],
        json!(["api-hook"])
    );

    // The API's rule is evaluated: two warnings in region eu exceed 1.
    let mut warning = log("warn", "apirule", "slow");
    warning["attributes"] = json!({"region": "eu"});
    send_logs(&server, &[warning.clone(), warning]).await;
    eventually("the API rule to fire", Duration::from_secs(30), || async {
        (!api_hook.accepted().is_empty()).then_some(())
    })
    .await;
    let text = api_hook.accepted()[0]["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("api rule") && text.contains("region=eu"),
        "{text}"
    );
    let listed = listed_rule(&server, Some(READ), "api rule").await;
    assert_eq!(listed["state"], "firing", "{listed}");
    assert_eq!(
        listed["groups"][0]["labels"],
        json!({"region": "eu", "service": "apirule"})
    );

    // The preview counts what the rule would count.
    let (status, preview) = reader
        .get("/api/alerts/preview?query=service%3Aapirule&window=1m&group_by=region")
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["count"], 2);
    assert_eq!(preview["groups"][0]["labels"]["region"], "eu");
    let (status, preview) = reader.get("/api/alerts/preview?query=level%3Aloud").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(preview["field"], "query");

    // A test message goes out at once and says how it went.
    let (status, tested) = admin.post(&format!("{rule_path}/test"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["results"][0]["channel"], "api-hook");
    assert_eq!(tested["results"][0]["delivery"], "delivered", "{tested}");
    let test_text = api_hook.accepted().last().unwrap()["text"].to_string();
    assert!(test_text.contains("[test]"), "{test_text}");

    // A channel in use cannot go; the rule can, and its alert resolves.
    let (status, answer) = admin.delete("/api/alerts/channels/api-hook").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["field"], "name");
    assert_eq!(reader.delete(&rule_path).await.0, StatusCode::FORBIDDEN);
    assert_eq!(admin.delete(&rule_path).await.0, StatusCode::NO_CONTENT);
    assert_eq!(admin.delete(&rule_path).await.0, StatusCode::NOT_FOUND);
    let (_, all) = reader.get("/api/alerts").await;
    assert!(
        !all["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str()),
        "{all}"
    );
    eventually(
        "the deleted rule's alert to resolve",
        Duration::from_secs(30),
        || async {
            let got = statuses(&api_hook.accepted());
            (got.last().map(String::as_str) == Some("resolved")).then_some(got)
        },
    )
    .await;
    assert_eq!(
        admin.delete("/api/alerts/channels/api-hook").await.0,
        StatusCode::NO_CONTENT
    );

    let (status, recent) = reader.get("/api/alerts/notifications").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        recent["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["test"] == true && n["delivery"] == "delivered"),
        "{recent}"
    );
    assert!(hook.accepted().is_empty(), "the config rule never fired");
}

#[test]
fn a_bad_rule_in_the_config_file_stops_start_up_naming_the_key() {
    let (dir, path) = config_file(&format!(
        r#"{EVERY_SECOND}{hook}
[[alerts.rules]]
name = "loud"
query = "level:loud"
window = "5m"
threshold = 1
channels = ["hook"]
"#,
        hook = channel("hook", "webhook", "http://127.0.0.1:9/hook"),
    ));
    let args = ["--config", path.to_str().unwrap()];
    let output = run_to_exit(&args, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("alerts.rules[0].query"), "{stderr}");
    let fixed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("level:loud", "level:error")
        .replace("window = \"5m\"", "window = \"100ms\"");
    std::fs::write(&path, fixed).unwrap();
    let output = run_to_exit(&args, &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("alerts.rules[0].window"), "{stderr}");
    drop(dir);
}
