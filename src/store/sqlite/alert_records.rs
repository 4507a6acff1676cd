//! [`AlertRecords`] on the embedded store: the `alert_records` table (schema
//! version 5), written on the writer connection, one transaction per call.

use super::SqliteStore;
use super::connection::{poisoned, run_blocking, sql_error};
use crate::domain::time::Micros;
use crate::store::StoreError;
use crate::store::alert_records::{AlertRecord, AlertRecords, RecordKind};
use async_trait::async_trait;
use rusqlite::Connection;
use std::sync::Arc;

/// The table as schema version 5 creates it.
pub(super) const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS alert_records (
     kind       TEXT NOT NULL,
     id         TEXT NOT NULL,
     body       TEXT NOT NULL,
     updated_us INTEGER NOT NULL,
     PRIMARY KEY (kind, id)
 ) WITHOUT ROWID;";

impl SqliteStore {
    /// Runs `work` on the writer connection, on the blocking thread pool.
    async fn on_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let writer = Arc::clone(&self.writer);
        run_blocking(move || {
            let mut writer = writer.lock().map_err(poisoned)?;
            let connection = writer
                .connection
                .as_mut()
                .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
            work(connection)
        })
        .await
    }
}

#[async_trait]
impl AlertRecords for SqliteStore {
    async fn alert_records(
        &self,
        kind: RecordKind,
        limit: Option<usize>,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let limit = limit.map_or(-1, |l| l.min(i64::MAX as usize) as i64);
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT id, body, updated_us FROM alert_records
                     WHERE kind = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(sql_error)?;
            let rows = statement
                .query_map(rusqlite::params![kind.as_str(), limit], |row| {
                    Ok(AlertRecord {
                        kind,
                        id: row.get(0)?,
                        body: Some(row.get(1)?),
                        updated: row.get(2)?,
                    })
                })
                .map_err(sql_error)?;
            rows.collect::<Result<_, _>>().map_err(sql_error)
        })
        .await
    }

    async fn put_alert_records(&self, records: &[AlertRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.on_writer(move |connection| {
            let transaction = connection.transaction().map_err(sql_error)?;
            {
                let mut upsert = transaction
                    .prepare_cached(
                        "INSERT INTO alert_records (kind, id, body, updated_us) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body,
                             updated_us = excluded.updated_us
                         WHERE excluded.updated_us >= alert_records.updated_us",
                    )
                    .map_err(sql_error)?;
                let mut delete = transaction
                    .prepare_cached(
                        "DELETE FROM alert_records WHERE kind = ?1 AND id = ?2 AND updated_us <= ?3",
                    )
                    .map_err(sql_error)?;
                for record in &records {
                    let kind = record.kind.as_str();
                    match &record.body {
                        Some(body) => upsert
                            .execute(rusqlite::params![kind, record.id, body, record.updated]),
                        None => delete.execute(rusqlite::params![kind, record.id, record.updated]),
                    }
                    .map_err(sql_error)?;
                }
            }
            transaction.commit().map_err(sql_error)
        })
        .await
    }

    async fn prune_alert_records(
        &self,
        kind: RecordKind,
        cutoff: Micros,
    ) -> Result<(), StoreError> {
        self.on_writer(move |connection| {
            connection
                .execute(
                    "DELETE FROM alert_records WHERE kind = ?1 AND updated_us < ?2",
                    rusqlite::params![kind.as_str(), cutoff],
                )
                .map_err(sql_error)?;
            Ok(())
        })
        .await
    }
}
