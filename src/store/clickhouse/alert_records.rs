//! [`AlertRecords`] on ClickHouse: `alert_records`, a `ReplacingMergeTree`
//! keyed by `(kind, id)`. Every write is an insert of new versions (a delete
//! is a version with `deleted = 1`); reads take each id's latest version with
//! `argMax`, which is exact whether or not the background merges that drop
//! old versions have run yet. One call is one insert of one block, which
//! ClickHouse applies whole or not at all. The table itself is made by a
//! migration (`schema.rs`, version 10).

use super::client::{collect, run};
use super::pool::Pool;
use super::rows::{int, string, take};
use super::sql::text_literal;
use crate::domain::time::Micros;
use crate::store::StoreError;
use crate::store::alert_records::{AlertRecord, RecordKind};
use klickhouse::{KlickhouseError, Row, Type, Value};
use std::borrow::Cow;

fn latest(database: &str, kind: RecordKind, limit: Option<usize>) -> String {
    let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
    format!(
        "SELECT id, latest_body, latest_updated FROM (
            SELECT id, argMax(body, updated_us) AS latest_body,
                   max(updated_us) AS latest_updated,
                   argMax(deleted, updated_us) AS latest_deleted
            FROM {database}.alert_records WHERE kind = {kind} GROUP BY id
        ) WHERE latest_deleted = 0 ORDER BY id DESC{limit}",
        kind = text_literal(kind.as_str())
    )
}

struct RecordRow {
    kind: RecordKind,
    id: String,
    body: String,
    updated: Micros,
    deleted: bool,
}

impl Row for RecordRow {
    const COLUMN_COUNT: Option<usize> = Some(3);

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    /// Read rows are `(id, body, updated_us)` of one kind, set by the caller.
    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        let mut values = map.into_iter();
        Ok(RecordRow {
            kind: RecordKind::Rule,
            id: string(take(&mut values)?)?,
            body: string(take(&mut values)?)?,
            updated: i64::try_from(int(take(&mut values)?)?)
                .map_err(|_| KlickhouseError::DeserializeError("updated_us out of range".into()))?,
            deleted: false,
        })
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        Ok(vec![
            (
                Cow::Borrowed("kind"),
                Value::String(self.kind.as_str().as_bytes().to_vec()),
            ),
            (Cow::Borrowed("id"), Value::String(self.id.into_bytes())),
            (Cow::Borrowed("body"), Value::String(self.body.into_bytes())),
            (Cow::Borrowed("updated_us"), Value::Int64(self.updated)),
            (Cow::Borrowed("deleted"), Value::UInt8(self.deleted.into())),
        ])
    }
}

pub async fn alert_records(
    pool: &Pool,
    kind: RecordKind,
    limit: Option<usize>,
) -> Result<Vec<AlertRecord>, StoreError> {
    let statement = latest(pool.database(), kind, limit);
    let rows = pool
        .with_client(|client| async move { collect::<RecordRow>(&client, statement).await })
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| AlertRecord {
            kind,
            id: row.id,
            body: Some(row.body),
            updated: row.updated,
        })
        .collect())
}

pub async fn put_alert_records(pool: &Pool, records: &[AlertRecord]) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let rows: Vec<RecordRow> = records
        .iter()
        .map(|record| RecordRow {
            kind: record.kind,
            id: record.id.clone(),
            body: record.body.clone().unwrap_or_default(),
            updated: record.updated,
            deleted: record.body.is_none(),
        })
        .collect();
    let statement = format!(
        "INSERT INTO {}.alert_records (kind, id, body, updated_us, deleted) FORMAT Native",
        pool.database()
    );
    pool.with_client(|client| async move { client.insert_native_block(statement, rows).await })
        .await
}

/// A mutation, which ClickHouse applies in the background. Mutations
/// belong to the local tables: on a cluster every host prunes its own.
pub async fn prune_alert_records(
    pool: &Pool,
    kind: RecordKind,
    cutoff: Micros,
) -> Result<(), StoreError> {
    let statement = format!(
        "ALTER TABLE {}.{} DELETE WHERE kind = {} AND updated_us < {cutoff}",
        pool.database(),
        pool.layout().local("alert_records"),
        text_literal(kind.as_str())
    );
    for client in pool.host_clients().await? {
        run(&client, client.execute(statement.clone())).await?;
    }
    Ok(())
}
