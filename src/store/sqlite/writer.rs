//! The single writer: a batch of logs, its rollups and search blocks in one
//! transaction; and retention's deletes, which share the writer's connection.

use super::connection::sql_error;
use super::{MINUTE, ROLLUPS, checkpoint, facet_blocks};
use crate::domain::time::Micros;
use crate::domain::{LogBatch, TenantId};
use crate::store::StoreError;
use crate::store::search_blocks::{self, OpenBlock};
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;

pub(super) struct Writer {
    pub(super) connection: Option<Connection>,
    /// Runs the checkpoints the writer connection does not (see there).
    pub(super) checkpointer: checkpoint::Checkpointer,
    /// Builds the facet blocks from stored rows, off the writer's thread.
    pub(super) facet_builder: facet_blocks::Builder,
    /// Service name -> id, so the hot path skips the dictionary lookup.
    pub(super) service_ids: HashMap<String, i64>,
    /// Tenant -> id, likewise.
    pub(super) tenant_ids: HashMap<TenantId, i64>,
    /// The search block being filled; `None` after a failed transaction,
    /// rebuilt from the database by the next insert.
    pub(super) open_block: Option<OpenBlock>,
}

/// Every log's attributes as the JSON text the `attributes` column keeps
/// (`None` for none), in the batches' order. Written before the writer is
/// taken, while another insert may hold it: it was ~10% of the writer's
/// time, and the writer is what bounds bulk ingest.
pub(super) fn attributes_json(batches: &[LogBatch]) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|batch| batch.iter())
        .map(|record| {
            // Strings and a string map always serialise.
            (!record.attributes.is_empty())
                .then(|| serde_json::to_string(&record.attributes).unwrap_or_default())
        })
        .collect()
}

impl Writer {
    /// Stores the batches; `attributes` is [`attributes_json`] of them.
    pub(super) fn insert(
        &mut self,
        batches: &[LogBatch],
        attributes: &[Option<String>],
    ) -> Result<(), StoreError> {
        let Writer {
            connection,
            service_ids,
            tenant_ids,
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
        let mut new_tenants: Vec<TenantId> = Vec::new();
        let mut minute_counts: HashMap<RollupKey, i64> = HashMap::new();
        {
            // A log whose id is stored already (a redelivered batch) is
            // skipped, and counted nowhere.
            let mut insert_log = transaction
                .prepare_cached(
                    "INSERT INTO logs (seq, id, ts, level, service_id, message, attributes,
                                       tenant_id, trace_id, span_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (tenant_id, ts, id, level, service_id) DO NOTHING",
                )
                .map_err(sql_error)?;
            let mut insert_service = transaction
                .prepare_cached(
                    "INSERT INTO services (name) VALUES (?1)
                     ON CONFLICT (name) DO UPDATE SET name = excluded.name
                     RETURNING id",
                )
                .map_err(sql_error)?;
            let mut insert_tenant = transaction
                .prepare_cached(
                    "INSERT INTO tenants (name) VALUES (?1)
                     ON CONFLICT (name) DO UPDATE SET name = excluded.name
                     RETURNING id",
                )
                .map_err(sql_error)?;
            // A batch is usually one tenant's: remembered across records.
            let mut last_tenant: Option<(TenantId, i64)> = None;
            let records = batches.iter().flat_map(|batch| batch.iter());
            for (record, attributes) in records.zip(attributes) {
                let tenant_id = match &last_tenant {
                    Some((tenant, id)) if *tenant == record.tenant => *id,
                    _ => {
                        let id = match tenant_ids.get(&record.tenant) {
                            Some(id) => *id,
                            None => {
                                let id: i64 = insert_tenant
                                    .query_row([record.tenant.as_str()], |row| row.get(0))
                                    .map_err(sql_error)?;
                                tenant_ids.insert(record.tenant.clone(), id);
                                new_tenants.push(record.tenant.clone());
                                id
                            }
                        };
                        last_tenant = Some((record.tenant.clone(), id));
                        id
                    }
                };
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
                let inserted = insert_log
                    .execute(rusqlite::params![
                        seq,
                        record.id,
                        record.timestamp,
                        level,
                        service_id,
                        record.message,
                        attributes,
                        tenant_id,
                        record.trace_id,
                        record.span_id,
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
                    .entry((tenant_id, minute, service_id, level))
                    .or_default() += 1;
            }
        }
        let rolled_up = ROLLUPS
            .iter()
            .try_for_each(|(grain, table)| {
                let mut counts: HashMap<RollupKey, i64> = HashMap::new();
                for ((tenant_id, minute, service_id, level), n) in &minute_counts {
                    let bucket = minute - minute.rem_euclid(*grain);
                    *counts
                        .entry((*tenant_id, bucket, *service_id, *level))
                        .or_default() += n;
                }
                add_counts(&transaction, table, &counts)
            })
            .and_then(|_| transaction.commit().map_err(sql_error));
        if rolled_up.is_err() {
            for name in new_services {
                service_ids.remove(&name);
            }
            for tenant in new_tenants {
                tenant_ids.remove(&tenant);
            }
        } else {
            *open_block = Some(block);
            self.checkpointer.restart_if_large(connection);
        }
        rolled_up
    }
}

/// A rollup row's key: tenant id, bucket start, service id, level code.
pub(super) type RollupKey = (i64, Micros, i64, u8);

pub(super) fn add_counts(
    transaction: &rusqlite::Transaction,
    table: &str,
    counts: &HashMap<RollupKey, i64>,
) -> Result<(), StoreError> {
    let mut upsert = transaction
        .prepare_cached(&format!(
            "INSERT INTO {table} (tenant_id, bucket, service_id, level, n) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, bucket, level, service_id) DO UPDATE SET n = n + excluded.n"
        ))
        .map_err(sql_error)?;
    for ((tenant_id, bucket, service_id, level), n) in counts {
        upsert
            .execute(rusqlite::params![tenant_id, bucket, service_id, level, n])
            .map_err(sql_error)?;
    }
    Ok(())
}

impl Writer {
    /// Deletes logs older than `cutoff` (minute-aligned) of every tenant,
    /// their rollup counts and the search and facet blocks before it.
    pub(super) fn delete_older_than(&mut self, cutoff: Micros) -> Result<u64, StoreError> {
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        let tenants = tenant_ids(connection)?;
        let mut deleted = 0u64;
        for tenant_id in tenants {
            deleted += delete_tenant_older_than(connection, tenant_id, cutoff)?;
        }
        search_blocks::forget_before(connection, cutoff).map_err(sql_error)?;
        facet_blocks::forget_before(connection, cutoff).map_err(sql_error)?;
        Ok(deleted)
    }
}

impl Writer {
    /// One tenant's logs older than `cutoff` (hour-aligned) and their
    /// rollup counts; the search and facet blocks stay (they are shared by
    /// tenants, and skip what no longer matches).
    pub(super) fn delete_tenant_older_than(
        &mut self,
        tenant: &str,
        cutoff: Micros,
    ) -> Result<u64, StoreError> {
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        let id: Option<i64> = connection
            .query_row("SELECT id FROM tenants WHERE name = ?1", [tenant], |row| {
                row.get(0)
            })
            .optional()
            .map_err(sql_error)?;
        match id {
            Some(id) => delete_tenant_older_than(connection, id, cutoff),
            None => Ok(0),
        }
    }
}

/// Every tenant's id in the dictionary.
fn tenant_ids(connection: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT id FROM tenants")
        .map_err(sql_error)?;
    let ids = statement
        .query_map([], |row| row.get(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<i64>, _>>()
        .map_err(sql_error)?;
    Ok(ids)
}

/// One tenant's logs before `cutoff` and their rollup counts: through the
/// tenant-first page index and rollup keys, so each statement reads only
/// that tenant's range.
fn delete_tenant_older_than(
    connection: &mut Connection,
    tenant_id: i64,
    cutoff: Micros,
) -> Result<u64, StoreError> {
    // Chunks keep each write transaction short, so ingestion's batches are
    // not held up behind one huge delete.
    let mut deleted = 0u64;
    loop {
        let removed = connection
            .execute(
                "DELETE FROM logs WHERE seq IN
                     (SELECT seq FROM logs WHERE tenant_id = ?1 AND ts < ?2 LIMIT 20000)",
                [tenant_id, cutoff],
            )
            .map_err(sql_error)?;
        deleted += removed as u64;
        if removed == 0 {
            break;
        }
    }
    // The cutoff is minute-aligned (age retention aligns it to the hour),
    // so the minute rollup splits exactly at it; a coarser bucket that
    // straddles it is rebuilt from the next finer grain, fine to coarse, so
    // every grain keeps agreeing with the rows.
    let mut rollups = format!(
        "BEGIN; DELETE FROM counts_minute WHERE tenant_id = {tenant_id} AND bucket < {cutoff};"
    );
    for pair in ROLLUPS.windows(2) {
        let [(_, finer), (grain, table)] = pair else {
            continue;
        };
        let start = cutoff - cutoff.rem_euclid(*grain);
        if start == cutoff {
            rollups.push_str(&format!(
                "DELETE FROM {table} WHERE tenant_id = {tenant_id} AND bucket < {cutoff};"
            ));
        } else {
            rollups.push_str(&format!(
                "DELETE FROM {table} WHERE tenant_id = {tenant_id} AND bucket <= {start};
                 INSERT INTO {table} (tenant_id, bucket, level, service_id, n)
                     SELECT {tenant_id}, {start}, level, service_id, SUM(n) FROM {finer}
                     WHERE tenant_id = {tenant_id} AND bucket >= {start} AND bucket < {end}
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
    Ok(deleted)
}
