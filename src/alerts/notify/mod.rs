//! Notifications: what one message to one channel says (`Notification`,
//! persisted before it is sent, so an instance that takes over sends what its
//! predecessor could not), the body each kind of receiver expects
//! (`payload.rs`, pure), and delivery with retries, one queue per channel
//! (`deliver.rs`) over an HTTPS-capable client (`client.rs`).

pub mod client;
pub mod deliver;
pub mod payload;

use super::state::{Change, Labels};
use crate::domain::time::Micros;
use serde::{Deserialize, Serialize};

/// Whether an alert is firing or resolved, as receivers name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not yet acknowledged by the receiver (queued, or being retried).
    Pending,
    Delivered,
    /// Given up: the receiver refused it, or kept failing for too long.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was delivered or given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<Micros>,
}

impl Delivery {
    pub fn pending() -> Delivery {
        Delivery {
            state: DeliveryState::Pending,
            attempts: 0,
            last_error: None,
            finished: None,
        }
    }
}

/// One message about one group of one rule, to one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Time-ordered (UUIDv7-shaped), so ids sort by creation.
    pub id: String,
    pub created: Micros,
    pub rule_id: String,
    pub rule_name: String,
    pub channel: String,
    pub status: Status,
    /// What caused it: fired, repeated, resolved; `None` for a test message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The group's values by `group_by` key.
    pub group: Labels,
    /// The rule's own labels (`severity`, ...).
    pub rule_labels: Labels,
    pub value: u64,
    pub threshold: f64,
    /// The rule's window as written (`5m`) and the query it counts.
    pub window: String,
    pub query: String,
    /// The explorer link's query (the rule's query and the group's values).
    pub explorer_query: String,
    /// The counted range `[from, to)`, for the explorer link.
    pub from: Micros,
    pub to: Micros,
    pub starts_at: Micros,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Micros>,
    pub delivery: Delivery,
}

impl Notification {
    pub fn is_test(&self) -> bool {
        self.change.is_none()
    }

    /// `checkout errors` or `checkout errors (service=checkout)`.
    pub fn title(&self) -> String {
        if self.group.is_empty() {
            self.rule_name.clone()
        } else {
            format!("{} ({})", self.rule_name, group_text(&self.group))
        }
    }
}

/// `service=checkout, region=eu`.
pub fn group_text(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}
