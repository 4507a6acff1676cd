//! State survives a restart: the rule shows firing again, no second
//! "firing" is sent, the eventual "resolved" is sent once, and the shutdown
//! itself resolves nothing.

use super::receiver::Receiver;
use super::{
    EVERY_SECOND, channel, config_file, listed_rule, send_logs, statuses, wait_rounds, with_config,
};
use crate::support::{Server, eventually, log};
use awc::http::StatusCode;
use oglogstream::domain::time::parse_rfc3339;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[actix_web::test]
async fn firing_state_survives_a_restart_and_resolves_once() {
    let hook = Receiver::start(&[]);
    let (_dir, path) = config_file(&format!(
        r#"{EVERY_SECOND}{hook}
[[alerts.rules]]
name = "restart errors"
query = "service:restart level:error"
window = "10s"
threshold = 0
channels = ["hook"]
"#,
        hook = channel("hook", "webhook", &hook.url)
    ));
    let data = tempfile::tempdir().expect("data dir");
    let mut first = Server::launch(with_config(&path).data_dir(data.path())).await;
    let sent_at = Instant::now();
    send_logs(&first, &[log("error", "restart", "boom")]).await;
    eventually("the firing message", Duration::from_secs(30), || async {
        (hook.accepted().len() == 1).then_some(())
    })
    .await;
    // Its delivery is recorded before we stop (the one window where a crash
    // could send it twice is between the receiver's 200 and this record).
    eventually(
        "the delivery to be recorded",
        Duration::from_secs(10),
        || async {
            let (_, recent) = first.get("/api/alerts/notifications").await;
            (recent["notifications"][0]["delivery"] == "delivered").then_some(())
        },
    )
    .await;
    let status = first.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert_eq!(hook.accepted().len(), 1, "a shutdown resolves nothing");
    drop(first);

    let restarted_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let second = Server::launch(with_config(&path).data_dir(data.path())).await;
    eventually(
        "the rule to be evaluated as firing after the restart",
        Duration::from_secs(20),
        || async {
            let rule = listed_rule(&second, None, "restart errors").await;
            let evaluated = rule["last_evaluation"]
                .as_str()
                .and_then(|t| parse_rfc3339(t).ok())
                .unwrap_or(0);
            (evaluated > restarted_at && rule["state"] == "firing").then_some(())
        },
    )
    .await;
    assert_eq!(
        hook.accepted().len(),
        1,
        "no repeated firing after a restart"
    );

    eventually("the resolved message", Duration::from_secs(40), || async {
        (hook.accepted().len() >= 2).then_some(())
    })
    .await;
    assert!(hook.accepted_at()[1] >= sent_at + Duration::from_secs(10));
    wait_rounds(&second, 1, 3).await;
    assert_eq!(statuses(&hook.accepted()), ["firing", "resolved"]);
    let (status, recent) = second.get("/api/alerts/notifications").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recent["notifications"].as_array().map(Vec::len), Some(2));
}
