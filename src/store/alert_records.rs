//! Small records kept in the same store as the logs, so they survive a
//! restart and every query instance sees the same: alerting's (rules and
//! channels made through the API, each rule's evaluation state, recent
//! notifications with their delivery status) and the query role's saved
//! views.
//!
//! The store holds each record as an opaque JSON document under `(kind,
//! id)`; what the documents mean is their owner's business (`alerts/` for
//! alerting's kinds, `query/views.rs` and `domain::view` for views). The
//! names keep "alert" from when alerting was the only user. Implemented by
//! both stores (`sqlite/alert_records.rs`, `clickhouse/alert_records.rs`)
//! and checked by one contract test.

use super::StoreError;
use crate::domain::time::Micros;
use async_trait::async_trait;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Rule,
    Channel,
    State,
    Notification,
    /// A saved view of the Explorer (`domain::view::View`).
    View,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Rule,
        RecordKind::Channel,
        RecordKind::State,
        RecordKind::Notification,
        RecordKind::View,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Rule => "rule",
            RecordKind::Channel => "channel",
            RecordKind::State => "state",
            RecordKind::Notification => "notification",
            RecordKind::View => "view",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRecord {
    pub kind: RecordKind,
    pub id: String,
    /// The JSON document; `None` deletes the record.
    pub body: Option<String>,
    /// When it was written: of two writes of one record, the later one wins.
    pub updated: Micros,
}

/// Contract (both stores; `tests/it` runs it against each):
/// - `put_alert_records` is all-or-nothing: after a failure none of the
///   records was written, after `Ok` every later read sees all of them.
///   This is what lets the evaluator save a rule's new state together with
///   the notifications it calls for, so a crash cannot keep one without the
///   other.
/// - a record replaces the one with the same kind and id when its `updated`
///   is not older; a record without a body deletes it.
/// - `alert_records` lists the live records of a kind by id, highest first
///   (notification ids are time-ordered: newest first), at most `limit`.
#[async_trait]
pub trait AlertRecords: Send + Sync {
    async fn alert_records(
        &self,
        kind: RecordKind,
        limit: Option<usize>,
    ) -> Result<Vec<AlertRecord>, StoreError>;

    async fn put_alert_records(&self, records: &[AlertRecord]) -> Result<(), StoreError>;

    /// Removes records of `kind` last written before `cutoff` (old
    /// notifications), so the table stays small.
    async fn prune_alert_records(&self, kind: RecordKind, cutoff: Micros)
    -> Result<(), StoreError>;
}
