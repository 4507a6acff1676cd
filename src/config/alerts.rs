//! `[alerts]`: how often rules are evaluated, where notification links point,
//! and the channels and rules of the config file (`[[alerts.channels]]`,
//! `[[alerts.rules]]`). Rules and channels are checked by the same code as
//! the API's (`alerts::rule`); here a mistake is an exit-2 error naming the
//! key, e.g. `alerts.rules[0].query`.

use super::{ConfigError, duration, invalid};
use crate::alerts::rule::{
    Channel, ChannelSpec, Rule, RuleContext, RuleSpec, Source, SpecError, config_rule_id,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    pub evaluation_interval: String,
    pub external_url: String,
    pub max_delivery_time: String,
    pub channels: Vec<ChannelSpec>,
    pub rules: Vec<RuleSpec>,
}

impl Default for RawAlerts {
    fn default() -> Self {
        RawAlerts {
            evaluation_interval: "30s".into(),
            external_url: String::new(),
            max_delivery_time: "10m".into(),
            channels: Vec::new(),
            rules: Vec::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AlertsConfig {
    /// Every rule is evaluated this often.
    pub evaluation_interval: Duration,
    /// The dashboard's address as receivers should link to it.
    pub external_url: String,
    /// A notification not delivered this long after it was made is given up.
    pub max_delivery_time: Duration,
    pub channels: Vec<Channel>,
    pub rules: Vec<Rule>,
}

fn item_error(list: &str, index: usize, name: &str, error: SpecError) -> ConfigError {
    let name = if name.trim().is_empty() {
        String::new()
    } else {
        format!(" ({:?})", name.trim())
    };
    ConfigError(format!(
        "alerts.{list}[{index}].{}{name}: {}",
        error.field, error.message
    ))
}

impl RawAlerts {
    /// `listen` (`host:port`) gives the default `external_url`.
    pub(super) fn validate(&self, listen: &str) -> Result<AlertsConfig, ConfigError> {
        let evaluation_interval =
            duration("alerts.evaluation_interval", &self.evaluation_interval)?;
        if evaluation_interval < Duration::from_secs(1) {
            return Err(invalid("alerts.evaluation_interval", "must be at least 1s"));
        }
        let max_delivery_time = duration("alerts.max_delivery_time", &self.max_delivery_time)?;
        if max_delivery_time < Duration::from_secs(1) {
            return Err(invalid("alerts.max_delivery_time", "must be at least 1s"));
        }
        let external_url = match self.external_url.trim() {
            "" => own_address(listen),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_string()
            }
            url => {
                return Err(invalid(
                    "alerts.external_url",
                    format!("{url:?}: use the dashboard's http:// or https:// address"),
                ));
            }
        };
        let mut channels: Vec<Channel> = Vec::new();
        for (index, spec) in self.channels.iter().enumerate() {
            let channel = spec
                .validate(Source::Config)
                .map_err(|e| item_error("channels", index, &spec.name, e))?;
            if channels.iter().any(|c| c.name == channel.name) {
                return Err(item_error(
                    "channels",
                    index,
                    &spec.name,
                    SpecError::new("name", "another channel has this name"),
                ));
            }
            channels.push(channel);
        }
        let context = RuleContext {
            channels: &channels,
            evaluation_interval,
        };
        let mut rules: Vec<Rule> = Vec::new();
        for (index, spec) in self.rules.iter().enumerate() {
            let rule = spec
                .validate(&config_rule_id(&spec.name), Source::Config, &context)
                .map_err(|e| item_error("rules", index, &spec.name, e))?;
            if rules.iter().any(|r| r.id == rule.id) {
                return Err(item_error(
                    "rules",
                    index,
                    &spec.name,
                    SpecError::new("name", "another rule has this name"),
                ));
            }
            rules.push(rule);
        }
        Ok(AlertsConfig {
            evaluation_interval,
            external_url,
            max_delivery_time,
            channels,
            rules,
        })
    }
}

/// `http://<host>:<port>` of this server; a wildcard listen address becomes
/// the machine's host name, which other machines can resolve more often
/// than not.
fn own_address(listen: &str) -> String {
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, "8080"));
    let host = match host {
        "0.0.0.0" | "[::]" | "::" => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "localhost".into()),
        other => other.to_string(),
    };
    format!("http://{host}:{port}")
}

#[cfg(test)]
// figment's Jail API returns its large error type from every closure.
#[allow(clippy::result_large_err)]
mod tests {
    use super::super::tests::load;
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
}
