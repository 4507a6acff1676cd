//! The single writer: a batch of logs, its rollups and search blocks in one
//! transaction; and retention's deletes, which share the writer's connection.

use super::connection::sql_error;
use super::{MINUTE, ROLLUPS, checkpoint, facet_blocks};
use crate::domain::LogBatch;
use crate::domain::time::Micros;
use crate::store::StoreError;
use crate::store::search_blocks::{self, OpenBlock};
use rusqlite::Connection;
use std::collections::HashMap;

pub(super) struct Writer {
    pub(super) connection: Option<Connection>,
    /// Runs the checkpoints the writer connection does not (see there).
    pub(super) checkpointer: checkpoint::Checkpointer,
    /// Builds the facet blocks from stored rows, off the writer's thread.
    pub(super) facet_builder: facet_blocks::Builder,
    /// Reused for every log's attributes JSON: one allocation per writer,
    /// not one per log.
    pub(super) json: Vec<u8>,
    /// Service name -> id, so the hot path skips the dictionary lookup.
    pub(super) service_ids: HashMap<String, i64>,
    /// The search block being filled; `None` after a failed transaction,
    /// rebuilt from the database by the next insert.
    pub(super) open_block: Option<OpenBlock>,
}

impl Writer {
    pub(super) fn insert(&mut self, batches: &[LogBatch]) -> Result<(), StoreError> {
        let Writer {
            connection,
            json,
            service_ids,
            open_block,
            ..
        } = self;
        let connection = connection
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        let transaction = connection.transaction().map_err(sql_error)?;
        // Taken for the transaction: if it fails, the block state is dropped
        // with it and rebuilt from what the database kept.
        let mut block = match open_block.take() {
            Some(block) => block,
            None => OpenBlock::load(&transaction).map_err(sql_error)?,
        };
        // Ids added in a transaction that rolls back must not stay cached.
        let mut new_services: Vec<String> = Vec::new();
        let mut minute_counts: HashMap<(Micros, i64, u8), i64> = HashMap::new();
        {
            // A log whose id is stored already (a redelivered batch) is
            // skipped, and counted nowhere.
            let mut insert_log = transaction
                .prepare_cached(
                    "INSERT INTO logs (seq, id, ts, level, service_id, message, attributes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (ts, id, level, service_id) DO NOTHING",
                )
                .map_err(sql_error)?;
            let mut insert_service = transaction
                .prepare_cached(
                    "INSERT INTO services (name) VALUES (?1)
                     ON CONFLICT (name) DO UPDATE SET name = excluded.name
                     RETURNING id",
                )
                .map_err(sql_error)?;
            for record in batches.iter().flat_map(|batch| batch.iter()) {
                let service_id = match service_ids.get(&record.service) {
                    Some(id) => *id,
                    None => {
                        let id: i64 = insert_service
                            .query_row([&record.service], |row| row.get(0))
                            .map_err(sql_error)?;
                        service_ids.insert(record.service.clone(), id);
                        new_services.push(record.service.clone());
                        id
                    }
                };
                let level = record.level.code();
                let seq = block.take_seq();
                let attributes = if record.attributes.is_empty() {
                    None
                } else {
                    json.clear();
                    // Strings and a string map always serialise, as UTF-8.
                    let _ = serde_json::to_writer(&mut *json, &record.attributes);
                    std::str::from_utf8(json).ok()
                };
                let inserted = insert_log
                    .execute(rusqlite::params![
                        seq,
                        record.id,
                        record.timestamp,
                        level,
                        service_id,
                        record.message,
                        attributes,
                    ])
                    .map_err(sql_error)?;
                if inserted == 0 {
                    continue;
                }
                block
                    .add_row(
                        &transaction,
                        seq,
                        record.timestamp,
                        &record.id,
                        &record.message,
                    )
                    .map_err(sql_error)?;
                let minute = record.timestamp - record.timestamp.rem_euclid(MINUTE);
                *minute_counts
                    .entry((minute, service_id, level))
                    .or_default() += 1;
            }
        }
        let rolled_up = ROLLUPS
            .iter()
            .try_for_each(|(grain, table)| {
                let mut counts: HashMap<(Micros, i64, u8), i64> = HashMap::new();
                for ((minute, service_id, level), n) in &minute_counts {
                    let bucket = minute - minute.rem_euclid(*grain);
                    *counts.entry((bucket, *service_id, *level)).or_default() += n;
                }
                add_counts(&transaction, table, &counts)
            })
            .and_then(|_| transaction.commit().map_err(sql_error));
        if rolled_up.is_err() {
            for name in new_services {
                service_ids.remove(&name);
            }
        } else {
            *open_block = Some(block);
        }
        rolled_up
    }
}

pub(super) fn add_counts(
    transaction: &rusqlite::Transaction,
    table: &str,
    counts: &HashMap<(Micros, i64, u8), i64>,
) -> Result<(), StoreError> {
    let mut upsert = transaction
        .prepare_cached(&format!(
            "INSERT INTO {table} (bucket, service_id, level, n) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (bucket, level, service_id) DO UPDATE SET n = n + excluded.n"
        ))
        .map_err(sql_error)?;
    for ((bucket, service_id, level), n) in counts {
        upsert
            .execute(rusqlite::params![bucket, service_id, level, n])
            .map_err(sql_error)?;
    }
    Ok(())
}

impl Writer {
    /// Deletes logs older than `cutoff` (minute-aligned), their rollup
    /// counts and the search and facet blocks before it.
    pub(super) fn delete_older_than(&mut self, cutoff: Micros) -> Result<u64, StoreError> {
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        // Chunks keep each write transaction short, so ingestion's batches
        // are not held up behind one huge delete.
        let mut deleted = 0u64;
        loop {
            let removed = connection
                .execute(
                    "DELETE FROM logs WHERE seq IN (SELECT seq FROM logs WHERE ts < ?1 LIMIT 20000)",
                    [cutoff],
                )
                .map_err(sql_error)?;
            deleted += removed as u64;
            if removed == 0 {
                break;
            }
        }
        // The cutoff is minute-aligned (age retention aligns it to the
        // hour), so the minute rollup splits exactly at it; a coarser
        // bucket that straddles it is rebuilt from the next finer grain,
        // fine to coarse, so every grain keeps agreeing with the rows.
        let mut rollups = format!("BEGIN; DELETE FROM counts_minute WHERE bucket < {cutoff};");
        for pair in ROLLUPS.windows(2) {
            let [(_, finer), (grain, table)] = pair else {
                continue;
            };
            let start = cutoff - cutoff.rem_euclid(*grain);
            if start == cutoff {
                rollups.push_str(&format!("DELETE FROM {table} WHERE bucket < {cutoff};"));
            } else {
                rollups.push_str(&format!(
                    "DELETE FROM {table} WHERE bucket <= {start};
                     INSERT INTO {table} (bucket, level, service_id, n)
                         SELECT {start}, level, service_id, SUM(n) FROM {finer}
                         WHERE bucket >= {start} AND bucket < {end}
                         GROUP BY level, service_id;",
                    end = start + grain
                ));
            }
        }
        rollups.push_str("COMMIT;");
        if let Err(error) = connection.execute_batch(&rollups) {
            // Not left open: the writer's next transaction would fail.
            let _ = connection.execute_batch("ROLLBACK");
            return Err(sql_error(error));
        }
        search_blocks::forget_before(connection, cutoff).map_err(sql_error)?;
        facet_blocks::forget_before(connection, cutoff).map_err(sql_error)?;
        Ok(deleted)
    }
}
