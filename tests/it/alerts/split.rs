//! Two query instances on NATS, sharing one ClickHouse (the split topology:
//! an ingest+process instance writes, both query instances evaluate the same
//! rules from the same store): exactly one holds the `alerts` lease and
//! notifies; when it is killed with SIGKILL mid-incident, the other takes
//! over within 15 s without sending "firing" again, and sends "resolved" once.

use super::receiver::Receiver;
use super::{
    EVERY_SECOND, channel, config_file, listed_rule, metric, send_logs, statuses, wait_rounds,
};
use crate::split::deps::{ClickHouse, Nats};
use crate::support::{Launch, Server, eventually, log};
use oglogstream::domain::time::{now_micros, parse_rfc3339};
use std::path::Path;
use std::time::{Duration, Instant};

const LEADER: &str = "oglogstream_alerts_leader";

fn instance(role: &str, nats: &Nats, clickhouse: &ClickHouse, config: &Path) -> Launch {
    Launch::default()
        .arg("--role")
        .arg(role)
        .arg("--config")
        .arg(config.to_str().expect("utf-8 path"))
        .env("NATS_URL", &nats.url())
        .env("CLICKHOUSE_DSN", &clickhouse.dsn("split_alerts"))
        // nats.lease_ttl is left at its default (9 s): a takeover takes up
        // to the TTL plus a third of it (the survivor's next attempt), 12 s.
        .env("FLUSH_TIMEOUT", "50ms")
}

#[actix_web::test]
async fn one_of_two_query_instances_notifies_and_the_other_takes_over_when_it_is_killed() {
    let started = Instant::now();
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let slack = Receiver::start(&[]);
    let alertmanager = Receiver::start(&[]);
    let pagerduty = Receiver::start(&[]);
    let (_dir, path) = config_file(&format!(
        r#"{EVERY_SECOND}{slack}{alertmanager}{pagerduty}
[[alerts.rules]]
name = "split errors"
query = "service:split level:>=error"
window = "25s"
threshold = 1
channels = ["slack", "alertmanager", "pagerduty"]
"#,
        slack = channel("slack", "slack", &slack.url),
        alertmanager = channel("alertmanager", "webhook", &alertmanager.url),
        pagerduty = channel("pagerduty", "pagerduty", &pagerduty.url),
    ));
    let pipeline = Server::launch(instance("ingest,process", &nats, &clickhouse, &path)).await;
    let first = Server::launch(instance("query", &nats, &clickhouse, &path)).await;
    let second = Server::launch(instance("query", &nats, &clickhouse, &path)).await;
    eventually(
        "one instance to hold the lease",
        Duration::from_secs(30),
        || async {
            let leaders = metric(&first, LEADER).await + metric(&second, LEADER).await;
            (leaders == 1.0).then_some(())
        },
    )
    .await;
    let first_holds = metric(&first, LEADER).await == 1.0;
    let (mut holder, other) = if first_holds {
        (first, second)
    } else {
        (second, first)
    };

    send_logs(
        &pipeline,
        &[
            log("error", "split", "disk full"),
            log("fatal", "split", "disk still full"),
            log("info", "split", "not counted"),
        ],
    )
    .await;
    let receivers = [&slack, &alertmanager, &pagerduty];
    eventually(
        "one firing message per receiver",
        Duration::from_secs(30),
        || async {
            receivers
                .iter()
                .all(|r| r.accepted().len() == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        metric(&holder, LEADER).await + metric(&other, LEADER).await,
        1.0,
        "still exactly one holder"
    );
    // Both instances list the same state, from the shared store.
    assert_eq!(
        listed_rule(&other, None, "split errors").await["state"],
        "firing"
    );
    eventually(
        "the deliveries to be recorded",
        Duration::from_secs(10),
        || async {
            let (_, recent) = other.get("/api/alerts/notifications").await;
            let delivered = recent["notifications"].as_array().map_or(0, |all| {
                all.iter().filter(|n| n["delivery"] == "delivered").count()
            });
            (delivered == 3).then_some(())
        },
    )
    .await;

    // Mid-incident: the holder dies without a chance to say anything.
    holder.signal(libc::SIGKILL);
    holder.wait_exit(Duration::from_secs(10));
    let killed_at = Instant::now();
    let killed_micros = now_micros();
    eventually(
        "the other instance to take the lease over within 15 s",
        Duration::from_secs(15),
        || async { (metric(&other, LEADER).await == 1.0).then_some(()) },
    )
    .await;
    let takeover = killed_at.elapsed();
    eventually(
        "the new holder to evaluate the rule as firing",
        Duration::from_secs(10),
        || async {
            let rule = listed_rule(&other, None, "split errors").await;
            let evaluated = rule["last_evaluation"]
                .as_str()
                .and_then(|t| parse_rfc3339(t).ok())
                .unwrap_or(0);
            (evaluated > killed_micros && rule["state"] == "firing").then_some(())
        },
    )
    .await;
    for receiver in receivers {
        assert_eq!(
            receiver.accepted().len(),
            1,
            "no second firing after the takeover"
        );
    }

    eventually(
        "one resolved message per receiver",
        Duration::from_secs(60),
        || async {
            receivers
                .iter()
                .all(|r| r.accepted().len() >= 2)
                .then_some(())
        },
    )
    .await;
    wait_rounds(&other, 1, 3).await;
    assert_eq!(statuses(&slack.accepted()), ["firing", "resolved"]);
    assert_eq!(statuses(&alertmanager.accepted()), ["firing", "resolved"]);
    assert_eq!(statuses(&pagerduty.accepted()), ["trigger", "resolve"]);
    let rule = listed_rule(&other, None, "split errors").await;
    assert_eq!(rule["state"], "inactive", "{rule}");
    println!(
        "alerts split: holder SIGKILLed, the other took over after {takeover:?}; whole test {:?}",
        started.elapsed()
    );
}
