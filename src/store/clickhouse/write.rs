//! Writing logs: one native-format `INSERT` per call, and the question a
//! retry or a redelivery asks first (which of these ids are stored?), so
//! that neither stores a log twice.

use super::client::STATEMENT_TIMEOUT;
use super::pool::{Pool, ReadBudget};
use super::rows::{LogRow, One};
use super::sql::text_set;
use crate::domain::time::Micros;
use crate::domain::{LogBatch, LogRecord};
use crate::store::StoreError;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// Ids per `existing_ids` statement: keeps the statement well under the
/// server's `max_query_size` (256 KiB by default) with hex-encoded ids.
const IDS_PER_LOOKUP: usize = 1000;

/// The columns an insert writes: `read::LOG_COLUMNS` (with the tenant and
/// the trace and span ids of schema version 11, `''` for none), then the
/// attributes as the parallel arrays filters and facets read (schema
/// version 5).
pub const INSERT_COLUMNS: &str = "ts_us, id, level, service, message, attributes, tenant, trace_id, span_id, attr_keys, attr_values";

/// One `INSERT` of every batch. On one server ClickHouse makes an
/// insert of one block atomic. Through a `Distributed` table it is not:
/// a shard that is down fails the insert after the others stored their
/// part. So after any failed insert the next one (the batcher's retry of
/// the same batches) first asks which of its ids are stored already and
/// writes only the rest: a retry never duplicates, on any engine.
/// (A redelivery after a crash is deduplicated by the processor, which
/// asks the same question.)
pub async fn insert(pool: &Pool, batches: &[LogBatch]) -> Result<(), StoreError> {
    let mut rows: Vec<LogRow> = batches
        .iter()
        .flat_map(|batch| batch.iter().cloned().map(LogRow))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    if pool.insert_failed.load(Ordering::Acquire) {
        let records: Vec<&LogRecord> = rows.iter().map(|row| &row.0).collect();
        let stored = stored_ids(pool, &records).await?;
        rows.retain(|row| !stored.contains(&row.0.id));
        if rows.is_empty() {
            pool.insert_failed.store(false, Ordering::Release);
            return Ok(());
        }
    }
    // 18.16 needs the explicit column list to accept a Native block.
    let statement = format!(
        "INSERT INTO {}.logs ({INSERT_COLUMNS}) FORMAT Native",
        pool.dsn.database
    );
    let outcome = pool
        .with_client(|client| async move { client.insert_native_block(statement, rows).await })
        .await;
    pool.insert_failed
        .store(outcome.is_err(), Ordering::Release);
    outcome
}

/// The processor's question about a redelivered batch (see
/// [`Store::existing_ids`]), answered like the retry's above.
pub async fn existing_ids(
    pool: &Pool,
    batches: &[LogBatch],
) -> Result<HashSet<String>, StoreError> {
    let records: Vec<&LogRecord> = batches.iter().flat_map(|batch| batch.iter()).collect();
    stored_ids(pool, &records).await
}

/// Which of `records`' ids are stored, looked up within their time range.
async fn stored_ids(pool: &Pool, records: &[&LogRecord]) -> Result<HashSet<String>, StoreError> {
    let budget = ReadBudget::new(STATEMENT_TIMEOUT);
    let mut stored = HashSet::new();
    for chunk in records.chunks(IDS_PER_LOOKUP) {
        let (from, to) = chunk
            .iter()
            .fold((Micros::MAX, Micros::MIN), |(a, b), record| {
                (a.min(record.timestamp), b.max(record.timestamp))
            });
        let ids: Vec<&str> = chunk.iter().map(|record| record.id.as_str()).collect();
        let mut tenants: Vec<&str> = chunk.iter().map(|record| record.tenant.as_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let statement = stored_ids_statement(pool.database(), &tenants, &ids, (from, to));
        let found: Vec<One<String>> = pool.read(&budget, &statement).await?;
        stored.extend(found.into_iter().map(|One(id)| id));
    }
    Ok(stored)
}

/// Which of `ids` are stored; they are known to be logs of `tenants` in
/// `[from, to]`, which the `(tenant, ts_us, id)` key turns into a read of
/// those granules only.
fn stored_ids_statement(
    database: &str,
    tenants: &[&str],
    ids: &[&str],
    (from, to): (Micros, Micros),
) -> String {
    format!(
        "SELECT DISTINCT id FROM {database}.logs \
         WHERE tenant IN {} AND ts_us >= {from} AND ts_us <= {to} AND id IN {}",
        text_set(tenants),
        text_set(ids)
    )
}
