//! `[alerts]`: how often rules are evaluated, where notification links point,
//! and the channels and rules of the config file (`[[alerts.channels]]`,
//! `[[alerts.rules]]`). Rules and channels are checked by the same code as
//! the API's (`rule.rs`); here a mistake is an exit-2 error naming the key,
//! e.g. `alerts.rules[0].query`.

use super::rule::{
    Channel, ChannelSpec, Rule, RuleContext, RuleSpec, Source, SpecError, config_rule_id,
};
use crate::domain::settings::{InvalidSetting, duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
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

fn item_error(list: &str, index: usize, name: &str, error: SpecError) -> InvalidSetting {
    let name = if name.trim().is_empty() {
        String::new()
    } else {
        format!(" ({:?})", name.trim())
    };
    InvalidSetting::new(
        format!("alerts.{list}[{index}].{}{name}", error.field),
        error.message,
    )
}

impl RawAlerts {
    /// `listen` (`host:port`) gives the default `external_url`.
    pub fn validate(&self, listen: &str) -> Result<AlertsConfig, InvalidSetting> {
        let evaluation_interval =
            duration("alerts.evaluation_interval", &self.evaluation_interval)?;
        if evaluation_interval < Duration::from_secs(1) {
            return Err(InvalidSetting::new(
                "alerts.evaluation_interval",
                "must be at least 1s",
            ));
        }
        let max_delivery_time = duration("alerts.max_delivery_time", &self.max_delivery_time)?;
        if max_delivery_time < Duration::from_secs(1) {
            return Err(InvalidSetting::new(
                "alerts.max_delivery_time",
                "must be at least 1s",
            ));
        }
        let external_url = match self.external_url.trim() {
            "" => own_address(listen),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                url.trim_end_matches('/').to_string()
            }
            url => {
                return Err(InvalidSetting::new(
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
