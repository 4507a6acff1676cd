//! `[alerts]` through the layers: rules and channels from the file.

use super::load;
use crate::cli::Cli;
use figment::Jail;
use std::time::Duration;

const VALID: &str = r#"
[alerts]
evaluation_interval = "1s"
external_url = "https://logs.example.com/"

[[alerts.channels]]
name = "ops-slack"
kind = "slack"
url = "https://hooks.slack.com/services/T/B/X"

[[alerts.channels]]
name = "pd"
kind = "pagerduty"
routing_key = "R0UT1NGKEY"

[[alerts.rules]]
name = "checkout errors"
query = "service:checkout level:>=error"
window = "5m"
threshold = 10
group_by = ["service"]
for = "0s"
repeat_interval = "4h"
channels = ["ops-slack", "pd"]
labels = { severity = "critical" }
"#;

fn with_file(contents: &str) -> Result<crate::config::Config, String> {
    let mut result = Err(String::new());
    Jail::expect_with(|jail| {
        jail.create_file("alerts.toml", contents)?;
        result = load(Cli {
            config: Some("alerts.toml".into()),
            ..Cli::default()
        });
        Ok(())
    });
    result
}

#[test]
fn rules_and_channels_from_the_file() {
    let config = with_file(VALID).unwrap();
    let alerts = config.alerts;
    assert_eq!(alerts.evaluation_interval, Duration::from_secs(1));
    assert_eq!(alerts.external_url, "https://logs.example.com");
    assert_eq!(alerts.channels.len(), 2);
    assert_eq!(alerts.rules.len(), 1);
    assert!(alerts.rules[0].id.starts_with("config-"));
    assert_eq!(alerts.rules[0].spec.labels["severity"], "critical");
}

#[test]
fn defaults_have_no_rules_and_link_to_this_server() {
    Jail::expect_with(|_| {
        let config = load(Cli {
            listen: Some("127.0.0.1:9123".into()),
            ..Cli::default()
        })
        .unwrap();
        assert_eq!(config.alerts.evaluation_interval, Duration::from_secs(30));
        assert_eq!(config.alerts.external_url, "http://127.0.0.1:9123");
        assert!(config.alerts.rules.is_empty());
        Ok(())
    });
}

#[test]
fn mistakes_name_the_key() {
    let broken = |from: &str, to: &str| with_file(&VALID.replace(from, to)).unwrap_err();
    let error = broken("level:>=error", "level:loud");
    assert!(error.contains("alerts.rules[0].query"), "{error}");
    assert!(error.contains("checkout errors"), "{error}");
    let error = broken(
        "channels = [\"ops-slack\", \"pd\"]",
        "channels = [\"nope\"]",
    );
    assert!(error.contains("alerts.rules[0].channels"), "{error}");
    let error = broken("window = \"5m\"", "window = \"500ms\"");
    assert!(error.contains("alerts.rules[0].window"), "{error}");
    let error = broken("threshold = 10", "threshold = -1");
    assert!(error.contains("alerts.rules[0].threshold"), "{error}");
    let error = broken("routing_key = \"R0UT1NGKEY\"", "");
    assert!(error.contains("alerts.channels[1].routing_key"), "{error}");
    let error = broken(
        "evaluation_interval = \"1s\"",
        "evaluation_interval = \"100ms\"",
    );
    assert!(error.contains("alerts.evaluation_interval"), "{error}");
    let error = broken("name = \"pd\"", "name = \"ops-slack\"");
    assert!(error.contains("alerts.channels[1].name"), "{error}");
    let error = broken("threshold = 10", "threshold = 10\nsurprise = 1");
    assert!(error.contains("surprise"), "{error}");
}
