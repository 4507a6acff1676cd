//! Alert rules and channels as people write them (TOML in `[alerts]`, JSON
//! in the API: the same fields) and their validation into the form the
//! evaluator and the notifier use. Pure: the same checks give the config's
//! exit-2 error and the API's `400`, both naming the field.

use crate::domain::TenantId;
use crate::domain::query::{self, Expr, FieldName, TextField};
use crate::domain::settings::parse_duration;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// At most this many `group_by` keys per rule.
pub const MAX_GROUP_KEYS: usize = 3;
/// At most this many groups per rule are evaluated (the largest counts).
pub const MAX_GROUPS: usize = 100;
/// The longest window a rule may count over: a week (rollups keep it cheap).
pub const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_NAME_CHARS: usize = 200;
const MAX_LABELS: usize = 32;
/// PagerDuty's Events API v2 endpoint, the default `url` of a pagerduty channel.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// What is wrong with a rule or a channel, and which field holds it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    pub field: String,
    pub message: String,
}

impl SpecError {
    pub fn new(field: &str, message: impl Into<String>) -> SpecError {
        SpecError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// Where a rule or a channel comes from: the config file's are read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Config,
    Api,
}

/// A rule as written. Durations stay text so they are shown back as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    pub query: String,
    pub window: String,
    pub threshold: f64,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default = "zero_duration", rename = "for")]
    pub for_duration: String,
    #[serde(default)]
    pub repeat_interval: Option<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Whose logs the rule counts (with tenancy on); the default tenant
    /// when absent. Through the API, the request's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

fn zero_duration() -> String {
    "0s".into()
}

/// What a group of a rule's logs is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GroupKey {
    Level,
    Service,
    Attribute(String),
}

impl GroupKey {
    /// `level`, `service`, or any other name as an attribute (`@level` for an
    /// attribute named like a field, as in queries).
    pub fn parse(name: &str) -> Result<GroupKey, String> {
        let name = name.trim();
        if name.is_empty() || name == "@" {
            return Err("a group_by key must not be empty".into());
        }
        match FieldName::parse_reference(name) {
            FieldName::Level => Ok(GroupKey::Level),
            FieldName::Text(TextField::Service) => Ok(GroupKey::Service),
            FieldName::Text(TextField::Attribute(key)) if key.len() <= 128 => {
                Ok(GroupKey::Attribute(key))
            }
            FieldName::Text(TextField::Attribute(_)) => {
                Err("attribute keys are at most 128 bytes".into())
            }
            FieldName::Text(
                TextField::Message | TextField::Id | TextField::TraceId | TextField::SpanId,
            ) => Err(format!(
                "cannot group by {name}: use level, service or an attribute key"
            )),
        }
    }

    /// The label a group's value goes under: `level`, `service`, the
    /// attribute's key.
    pub fn label(&self) -> &str {
        match self {
            GroupKey::Level => "level",
            GroupKey::Service => "service",
            GroupKey::Attribute(key) => key,
        }
    }

    /// As a query names it, for links to the explorer.
    pub fn field(&self) -> FieldName {
        match self {
            GroupKey::Level => FieldName::Level,
            GroupKey::Service => FieldName::Text(TextField::Service),
            GroupKey::Attribute(key) => FieldName::Text(TextField::Attribute(key.clone())),
        }
    }
}

/// A validated rule: what the evaluator runs.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: String,
    pub source: Source,
    pub spec: RuleSpec,
    pub expr: Expr,
    pub window: Duration,
    pub threshold: f64,
    pub group_by: Vec<GroupKey>,
    pub for_duration: Duration,
    pub repeat_interval: Option<Duration>,
    pub tenant: TenantId,
}

/// What a rule is checked against: the channels it may name and the
/// evaluation interval its window may not be shorter than.
pub struct RuleContext<'a> {
    pub channels: &'a [Channel],
    pub evaluation_interval: Duration,
}

fn duration_field(field: &str, text: &str) -> Result<Duration, SpecError> {
    parse_duration(text).ok_or_else(|| {
        SpecError::new(
            field,
            format!("expected a duration such as 30s, 5m or 4h, got {text:?}"),
        )
    })
}

impl RuleSpec {
    pub fn validate(
        &self,
        id: &str,
        source: Source,
        context: &RuleContext,
    ) -> Result<Rule, SpecError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(SpecError::new(
                "name",
                format!("a rule needs a name of 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        let expr = query::parse(&self.query)
            .map_err(|error| SpecError::new("query", format!("invalid query: {error}")))?;
        let window = duration_field("window", &self.window)?;
        if window < context.evaluation_interval {
            return Err(SpecError::new(
                "window",
                format!(
                    "the window ({}) must be at least the evaluation interval ({:?})",
                    self.window, context.evaluation_interval
                ),
            ));
        }
        if window > MAX_WINDOW {
            return Err(SpecError::new("window", "the window is at most 168h"));
        }
        if !self.threshold.is_finite() || self.threshold < 0.0 {
            return Err(SpecError::new(
                "threshold",
                "the threshold is a count: 0 or more (the rule fires above it)",
            ));
        }
        if self.group_by.len() > MAX_GROUP_KEYS {
            return Err(SpecError::new(
                "group_by",
                format!("at most {MAX_GROUP_KEYS} group_by keys"),
            ));
        }
        let mut group_by = Vec::new();
        for name in &self.group_by {
            let key = GroupKey::parse(name).map_err(|e| SpecError::new("group_by", e))?;
            if group_by.iter().any(|k: &GroupKey| k.label() == key.label()) {
                return Err(SpecError::new(
                    "group_by",
                    format!("{name:?} is listed twice (as a field or an attribute)"),
                ));
            }
            group_by.push(key);
        }
        let for_duration = duration_field("for", &self.for_duration)?;
        let repeat_interval = match &self.repeat_interval {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => {
                let interval = duration_field("repeat_interval", text)?;
                if interval < Duration::from_secs(1) {
                    return Err(SpecError::new(
                        "repeat_interval",
                        "repeat at most once a second (1s or more)",
                    ));
                }
                Some(interval)
            }
        };
        for channel in &self.channels {
            if !context.channels.iter().any(|c| &c.name == channel) {
                let known: Vec<&str> = context.channels.iter().map(|c| c.name.as_str()).collect();
                return Err(SpecError::new(
                    "channels",
                    format!(
                        "unknown channel {channel:?}: define it first (known: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        if self.labels.len() > MAX_LABELS {
            return Err(SpecError::new(
                "labels",
                format!("at most {MAX_LABELS} labels"),
            ));
        }
        if let Some(bad) = self.labels.keys().find(|key| !is_label_name(key)) {
            return Err(SpecError::new(
                "labels",
                format!(
                    "label name {bad:?}: use letters, digits and '_', not starting with a digit"
                ),
            ));
        }
        let tenant = match &self.tenant {
            None => TenantId::default(),
            Some(text) => TenantId::parse(text)
                .map_err(|error| SpecError::new("tenant", error.to_string()))?,
        };
        Ok(Rule {
            tenant,
            id: id.to_string(),
            source,
            spec: RuleSpec {
                name: name.to_string(),
                ..self.clone()
            },
            expr,
            window,
            threshold: self.threshold,
            group_by,
            for_duration,
            repeat_interval,
        })
    }

    /// A rule that only counts (no channels, never fires by itself): what
    /// the preview and tests evaluate. Checked like any rule.
    pub fn counting_only(
        query: &str,
        window: &str,
        group_by: Vec<String>,
    ) -> Result<Rule, SpecError> {
        RuleSpec {
            name: "preview".into(),
            query: query.to_string(),
            window: window.to_string(),
            threshold: 0.0,
            group_by,
            for_duration: zero_duration(),
            repeat_interval: None,
            channels: Vec::new(),
            labels: BTreeMap::new(),
            tenant: None,
        }
        .validate(
            "preview",
            Source::Api,
            &RuleContext {
                channels: &[],
                evaluation_interval: Duration::ZERO,
            },
        )
    }

    /// Reads the API's JSON: every field checked on its own, so a wrong type
    /// names its field. Fields the API adds when listing rules (`id`,
    /// `state`, ...) are ignored, so a listed rule can be sent back as it is.
    pub fn from_json(body: &Value) -> Result<RuleSpec, SpecError> {
        let mut fields = object(body)?;
        for shown in [
            "id",
            "source",
            "read_only",
            "state",
            "last_value",
            "last_evaluation",
            "groups",
            "error",
        ] {
            fields.remove(shown);
        }
        let spec = RuleSpec {
            name: required(&mut fields, "name")?,
            query: optional(&mut fields, "query")?.unwrap_or_default(),
            window: required(&mut fields, "window")?,
            threshold: required(&mut fields, "threshold")?,
            group_by: optional(&mut fields, "group_by")?.unwrap_or_default(),
            for_duration: optional(&mut fields, "for")?.unwrap_or_else(zero_duration),
            repeat_interval: optional(&mut fields, "repeat_interval")?,
            channels: optional(&mut fields, "channels")?.unwrap_or_default(),
            labels: optional(&mut fields, "labels")?.unwrap_or_default(),
            tenant: optional(&mut fields, "tenant")?,
        };
        no_other_fields(fields)?;
        Ok(spec)
    }
}

/// Prometheus's label names, so Alertmanager-style receivers accept them.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn object(body: &Value) -> Result<Map<String, Value>, SpecError> {
    match body {
        Value::Object(fields) => Ok(fields.clone()),
        _ => Err(SpecError::new("body", "expected a JSON object")),
    }
}

fn optional<T: serde::de::DeserializeOwned>(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<T>, SpecError> {
    match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| SpecError::new(name, format!("{name}: {e}"))),
    }
}

fn required<T: serde::de::DeserializeOwned>(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<T, SpecError> {
    optional(fields, name)?.ok_or_else(|| SpecError::new(name, format!("{name} is required")))
}

fn no_other_fields(fields: Map<String, Value>) -> Result<(), SpecError> {
    match fields.keys().next() {
        Some(unknown) => Err(SpecError::new(
            unknown,
            format!("unknown field {unknown:?}"),
        )),
        None => Ok(()),
    }
}

/// Where notifications go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Slack,
    Webhook,
    PagerDuty,
}

impl ChannelKind {
    pub fn parse(text: &str) -> Option<ChannelKind> {
        match text {
            "slack" => Some(ChannelKind::Slack),
            "webhook" => Some(ChannelKind::Webhook),
            "pagerduty" => Some(ChannelKind::PagerDuty),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
            ChannelKind::PagerDuty => "pagerduty",
        }
    }
}

/// A channel as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub routing_key: String,
}

/// A validated channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub url: String,
    /// PagerDuty's integration key.
    pub routing_key: String,
    pub source: Source,
}

impl ChannelSpec {
    pub fn validate(&self, source: Source) -> Result<Channel, SpecError> {
        let name = self.name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(SpecError::new(
                "name",
                "a channel name is 1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        let kind = ChannelKind::parse(self.kind.trim()).ok_or_else(|| {
            SpecError::new(
                "kind",
                format!(
                    "unknown channel kind {:?}: use slack, webhook or pagerduty",
                    self.kind
                ),
            )
        })?;
        let url = match (kind, self.url.trim()) {
            (ChannelKind::PagerDuty, "") => PAGERDUTY_EVENTS_URL.to_string(),
            (_, "") => return Err(SpecError::new("url", "the receiver's URL is required")),
            (_, url) => url.to_string(),
        };
        check_url(&url).map_err(|e| SpecError::new("url", e))?;
        let routing_key = self.routing_key.trim().to_string();
        if kind == ChannelKind::PagerDuty && routing_key.is_empty() {
            return Err(SpecError::new(
                "routing_key",
                "a pagerduty channel needs the integration's routing_key",
            ));
        }
        Ok(Channel {
            name: name.to_string(),
            kind,
            url,
            routing_key,
            source,
        })
    }

    /// Reads the API's JSON, naming the field at fault.
    pub fn from_json(body: &Value) -> Result<ChannelSpec, SpecError> {
        let mut fields = object(body)?;
        for shown in ["source", "read_only"] {
            fields.remove(shown);
        }
        let spec = ChannelSpec {
            name: required(&mut fields, "name")?,
            kind: required(&mut fields, "kind")?,
            url: optional(&mut fields, "url")?.unwrap_or_default(),
            routing_key: optional(&mut fields, "routing_key")?.unwrap_or_default(),
        };
        no_other_fields(fields)?;
        Ok(spec)
    }
}

/// `http://` or `https://` with a host: what the notifier can send to.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?}: use an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{url:?} has no host"));
    }
    if url.parse::<actix_web::http::Uri>().is_err() {
        return Err(format!("{url:?} is not a valid URL"));
    }
    Ok(())
}

impl Channel {
    /// The URL without what may be a secret (Slack's webhook path is its
    /// token): scheme and host only.
    pub fn redacted_url(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        if rest.len() > host.len() {
            format!("{scheme}://{host}/…")
        } else {
            format!("{scheme}://{host}")
        }
    }
}

/// A stable id for a rule of the config file, from its name: the same on
/// every instance and after every restart.
pub fn config_rule_id(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.trim().as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("config-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn channels() -> Vec<Channel> {
        vec![
            ChannelSpec {
                name: "ops-slack".into(),
                kind: "slack".into(),
                url: "https://hooks.slack.com/services/T/B/secret".into(),
                routing_key: String::new(),
            }
            .validate(Source::Config)
            .unwrap(),
        ]
    }

    fn spec(body: Value) -> Result<Rule, SpecError> {
        let channels = channels();
        let context = RuleContext {
            channels: &channels,
            evaluation_interval: Duration::from_secs(30),
        };
        RuleSpec::from_json(&body)?.validate("r1", Source::Api, &context)
    }

    fn base() -> Value {
        json!({"name": "checkout errors", "query": "service:checkout level:>=error",
               "window": "5m", "threshold": 10, "channels": ["ops-slack"]})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut body = base();
        body[field] = value;
        body
    }

    #[test]
    fn a_full_rule_validates() {
        let rule = spec(
            json!({"name": " checkout errors ", "query": "service:check* level:>=error",
            "window": "5m", "threshold": 10, "group_by": ["service", "region", "@host"],
            "for": "30s", "repeat_interval": "4h", "channels": ["ops-slack"],
            "labels": {"severity": "critical"}, "id": "ignored", "state": "firing"}),
        )
        .unwrap();
        assert_eq!(rule.spec.name, "checkout errors");
        assert_eq!(rule.window, Duration::from_secs(300));
        assert_eq!(rule.for_duration, Duration::from_secs(30));
        assert_eq!(rule.repeat_interval, Some(Duration::from_secs(4 * 3600)));
        assert_eq!(
            rule.group_by,
            vec![
                GroupKey::Service,
                GroupKey::Attribute("region".into()),
                GroupKey::Attribute("host".into())
            ]
        );
        let minimal = spec(base()).unwrap();
        assert_eq!(minimal.for_duration, Duration::ZERO);
        assert_eq!(minimal.repeat_interval, None);
    }

    #[test]
    fn each_mistake_names_its_field() {
        let field = |body: Value| spec(body).unwrap_err().field;
        assert_eq!(field(with("query", json!("level:loud"))), "query");
        assert_eq!(field(with("channels", json!(["nope"]))), "channels");
        assert_eq!(field(with("window", json!("10s"))), "window");
        assert_eq!(field(with("window", json!("soon"))), "window");
        assert_eq!(field(with("threshold", json!(-1))), "threshold");
        assert_eq!(field(with("threshold", json!("ten"))), "threshold");
        assert_eq!(field(with("name", json!(""))), "name");
        assert_eq!(field(with("for", json!("5 parsecs"))), "for");
        assert_eq!(
            field(with("repeat_interval", json!("0s"))),
            "repeat_interval"
        );
        assert_eq!(
            field(with("group_by", json!(["a", "b", "c", "d"]))),
            "group_by"
        );
        assert_eq!(field(with("group_by", json!(["message"]))), "group_by");
        assert_eq!(
            field(with("group_by", json!(["service", "service"]))),
            "group_by"
        );
        assert_eq!(
            field(with("group_by", json!(["level", "@level"]))),
            "group_by"
        );
        assert_eq!(field(with("labels", json!({"bad-name": "x"}))), "labels");
        assert_eq!(field(with("surprise", json!(1))), "surprise");
        assert_eq!(field(json!({"query": "x"})), "name");
        assert_eq!(field(json!([1])), "body");
        let error = spec(with("query", json!("level:loud"))).unwrap_err();
        assert!(error.message.contains("loud"), "{error}");
    }

    #[test]
    fn channels_validate_and_redact() {
        let slack = &channels()[0];
        assert_eq!(slack.redacted_url(), "https://hooks.slack.com/…");
        let pagerduty = ChannelSpec::from_json(
            &json!({"name": "pd", "kind": "pagerduty", "routing_key": "abc"}),
        )
        .unwrap()
        .validate(Source::Api)
        .unwrap();
        assert_eq!(pagerduty.url, PAGERDUTY_EVENTS_URL);
        let field = |body: Value| {
            ChannelSpec::from_json(&body)
                .and_then(|spec| spec.validate(Source::Api))
                .unwrap_err()
                .field
        };
        assert_eq!(
            field(json!({"name": "pd", "kind": "pagerduty"})),
            "routing_key"
        );
        assert_eq!(
            field(json!({"name": "x", "kind": "email", "url": "http://a"})),
            "kind"
        );
        assert_eq!(field(json!({"name": "x", "kind": "slack"})), "url");
        assert_eq!(
            field(json!({"name": "x", "kind": "slack", "url": "ftp://a"})),
            "url"
        );
        assert_eq!(
            field(json!({"name": "x y", "kind": "slack", "url": "http://a"})),
            "name"
        );
    }

    #[test]
    fn config_ids_are_stable_and_distinct() {
        assert_eq!(config_rule_id("a"), config_rule_id(" a "));
        assert_ne!(config_rule_id("a"), config_rule_id("b"));
        assert!(config_rule_id("a").starts_with("config-"));
    }
}
