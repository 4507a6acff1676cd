//! Alerting: rules over the query language that count matching logs in a
//! sliding window and notify Slack, Alertmanager-style webhooks and
//! PagerDuty when a count crosses its threshold, and again when it falls
//! back, once per change however many query instances run.
//!
//! - `rule.rs`: rules and channels as written, validated (pure).
//! - `state.rs`: a rule's groups moving between inactive, pending and
//!   firing; which notifications a change calls for (pure).
//! - `counting.rs`: a rule's count per group over `[now - window, now)`.
//! - `evaluator.rs`: the loop run by the holder of the `alerts` lease
//!   (`lease.rs`): count, advance, save state and notifications together,
//!   then hand notifications to the notifier.
//! - `notify/`: message bodies per receiver kind and delivery with retries.
//! - `api.rs`: `/api/alerts/*`.
//!
//! Persistence goes through the store's [`AlertRecords`]: rules and channels
//! made through the API, each rule's state, and notifications (written
//! pending before they are sent: an outbox). The config file's rules and
//! channels live in [`AlertsConfig`] and are read-only.

pub mod api;
pub mod counting;
pub mod evaluator;
pub mod lease;
pub mod notify;
pub mod rule;
mod settings;
pub mod state;

pub use settings::{AlertsConfig, RawAlerts};

use crate::domain::id::IdGenerator;
use crate::domain::query::quote;
use crate::domain::time::now_micros;
use crate::metrics::Metrics;
use crate::store::alert_records::{AlertRecord, AlertRecords, RecordKind};
use crate::store::{Store, StoreError};
use notify::deliver::Notifier;
use rule::{Channel, ChannelSpec, GroupKey, Rule, RuleContext, RuleSpec, Source, SpecError};
use serde::{Deserialize, Serialize};
use state::{Labels, RuleState};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything alerting shares between the API and the evaluator.
pub struct Alerts {
    pub config: AlertsConfig,
    pub store: Arc<dyn Store>,
    pub records: Arc<dyn AlertRecords>,
    pub notifier: Notifier,
    pub metrics: Arc<Metrics>,
    pub ids: IdGenerator,
    /// How long one rule's count may take (`query.timeout`).
    pub read_timeout: std::time::Duration,
}

/// A rule as listed: valid and evaluated, or stored but no longer valid
/// (its channel was removed from the config file, say), shown with why.
pub struct Entry {
    pub id: String,
    pub source: Source,
    pub spec: RuleSpec,
    pub rule: Result<Rule, SpecError>,
}

/// A rule's persisted state, with the rule as it was evaluated: enough to
/// resolve its alerts after the rule is deleted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoredState {
    #[serde(flatten)]
    pub state: RuleState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleSpec>,
}

fn corrupt(kind: RecordKind, id: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!(
        "{} record {id:?} is unreadable: {error}",
        kind.as_str()
    ))
}

impl Alerts {
    /// The config file's channels, then the API's.
    pub async fn channels(&self) -> Result<Vec<Channel>, StoreError> {
        let mut channels = self.config.channels.clone();
        for record in self
            .records
            .alert_records(RecordKind::Channel, None)
            .await?
        {
            let Some(body) = &record.body else { continue };
            match serde_json::from_str::<ChannelSpec>(body)
                .map_err(|e| e.to_string())
                .and_then(|spec| spec.validate(Source::Api).map_err(|e| e.to_string()))
            {
                // A config channel of the same name wins.
                Ok(channel) if !channels.iter().any(|c| c.name == channel.name) => {
                    channels.push(channel)
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(channel = %record.id, %error, "skipping an unusable stored channel")
                }
            }
        }
        Ok(channels)
    }

    /// The config file's rules, then the API's (oldest first).
    pub async fn entries(&self, channels: &[Channel]) -> Result<Vec<Entry>, StoreError> {
        let mut entries: Vec<Entry> = self
            .config
            .rules
            .iter()
            .map(|rule| Entry {
                id: rule.id.clone(),
                source: Source::Config,
                spec: rule.spec.clone(),
                rule: Ok(rule.clone()),
            })
            .collect();
        let context = RuleContext {
            channels,
            evaluation_interval: self.config.evaluation_interval,
        };
        let mut stored = self.records.alert_records(RecordKind::Rule, None).await?;
        stored.reverse();
        for record in stored {
            let Some(body) = &record.body else { continue };
            let spec: RuleSpec =
                serde_json::from_str(body).map_err(|e| corrupt(RecordKind::Rule, &record.id, e))?;
            entries.push(Entry {
                rule: spec.validate(&record.id, Source::Api, &context),
                id: record.id,
                source: Source::Api,
                spec,
            });
        }
        Ok(entries)
    }

    /// Every rule's last persisted state, by rule id.
    pub async fn states(&self) -> Result<HashMap<String, StoredState>, StoreError> {
        let mut states = HashMap::new();
        for record in self.records.alert_records(RecordKind::State, None).await? {
            let Some(body) = &record.body else { continue };
            let state: StoredState = serde_json::from_str(body)
                .map_err(|e| corrupt(RecordKind::State, &record.id, e))?;
            states.insert(record.id, state);
        }
        Ok(states)
    }

    /// Recent notifications, newest first.
    pub async fn notifications(
        &self,
        limit: usize,
    ) -> Result<Vec<notify::Notification>, StoreError> {
        let records = self
            .records
            .alert_records(RecordKind::Notification, Some(limit))
            .await?;
        records
            .iter()
            .filter_map(|record| Some((record, record.body.as_deref()?)))
            .map(|(record, body)| {
                serde_json::from_str(body)
                    .map_err(|e| corrupt(RecordKind::Notification, &record.id, e))
            })
            .collect()
    }

    pub fn new_id(&self) -> String {
        self.ids.next((now_micros() / 1000) as u64)
    }
}

/// Builds the record that saves `state` for `rule_id`.
pub fn state_record(rule_id: &str, state: &StoredState, now: i64) -> AlertRecord {
    AlertRecord {
        kind: RecordKind::State,
        id: rule_id.to_string(),
        body: serde_json::to_string(state).ok(),
        updated: now,
    }
}

/// The explorer's query for one group of a rule: the rule's query and the
/// group's values (`(service:checkout level:>=error) service:"checkout"`).
pub fn explorer_query(query: &str, group_by: &[GroupKey], labels: &Labels) -> String {
    let mut terms = Vec::new();
    if !query.trim().is_empty() {
        terms.push(format!("({})", query.trim()));
    }
    for key in group_by {
        let Some(value) = labels.get(key.label()) else {
            continue;
        };
        let field = key.field().display();
        terms.push(match (key, value.as_str()) {
            (GroupKey::Level, level) => format!("level:{level}"),
            (GroupKey::Attribute(_), "") => format!("-{field}:*"),
            (_, value) => format!("{field}:{}", quote(value)),
        });
    }
    terms.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::query;

    #[test]
    fn explorer_queries_parse_and_select_the_group() {
        let group_by = vec![
            GroupKey::Service,
            GroupKey::Level,
            GroupKey::Attribute("region".into()),
        ];
        let labels = Labels::from([
            ("service".into(), "check\"out".into()),
            ("level".into(), "error".into()),
            ("region".into(), "".into()),
        ]);
        let text = explorer_query("service:check* level:>=error", &group_by, &labels);
        assert!(
            text.starts_with("(service:check* level:>=error) service:"),
            "{text}"
        );
        assert!(text.contains("-region:*"), "{text}");
        assert!(query::parse(&text).is_ok(), "{text}");
        assert_eq!(explorer_query("", &[], &Labels::new()), "");
    }
}
