//! Deleting the logs a filter matches (retention rules), wherever they sit:
//! the rows (the trace index is an index of `logs`, so it follows), their
//! rollup counts and the facet blocks that held them, in one transaction
//! per chunk, so every derived structure agrees with the rows at each
//! commit. The search blocks stay: a block's trigram filter and id range
//! still cover what it holds (a filter may only say "maybe" more often).

use super::conditions::{Conditions, Dimensions, expression_conditions};
use super::connection::sql_error;
use super::writer::{RollupKey, Writer};
use super::{MINUTE, ROLLUPS, facet_blocks};
use crate::store::StoreError;
use crate::store::filter::LogFilter;
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior, params_from_iter};
use std::collections::{BTreeSet, HashMap};

/// Logs per transaction: short ones, so ingestion's batches are not held up
/// behind one huge delete.
const CHUNK: usize = 20_000;

impl Writer {
    pub(super) fn delete_matching(&mut self, filter: &LogFilter) -> Result<u64, StoreError> {
        let connection = self
            .connection
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        let mut deleted = 0u64;
        // Each chunk goes on from the last one's newest timestamp, so the
        // logs a rule keeps are read once, not once per chunk.
        let mut from = filter.from;
        loop {
            let (removed, newest) = delete_chunk(
                connection,
                &LogFilter {
                    from,
                    ..filter.clone()
                },
            )?;
            deleted += removed as u64;
            if removed < CHUNK {
                return Ok(deleted);
            }
            from = newest;
        }
    }
}

/// Up to [`CHUNK`] matching logs, the oldest first, with their counts and
/// facet blocks; returns how many and the newest one's timestamp.
fn delete_chunk(
    connection: &mut Connection,
    filter: &LogFilter,
) -> Result<(usize, Option<i64>), StoreError> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    let Some(dimensions) = Dimensions::resolve(&transaction, filter)? else {
        return Ok((0, None));
    };
    let mut conditions = Conditions::default();
    let (from, to) = filter.bounds();
    conditions.push(
        "ts >= ? AND ts < ?",
        [Value::Integer(from), Value::Integer(to)],
    );
    dimensions.conditions(&mut conditions, filter, "");
    expression_conditions(&transaction, &mut conditions, &filter.expr, "")?;
    if let Some(text) = &filter.text {
        conditions.push("oglog_contains(message, ?)", [Value::Text(text.clone())]);
    }
    let mut seqs = Vec::new();
    let mut newest = None;
    let mut minute_counts: HashMap<RollupKey, i64> = HashMap::new();
    {
        let mut statement = transaction
            .prepare(&format!(
                "SELECT seq, ts, tenant_id, service_id, level FROM logs INDEXED BY logs_page {}
                 ORDER BY ts LIMIT {CHUNK}",
                conditions.where_clause()
            ))
            .map_err(sql_error)?;
        let mut rows = statement
            .query(params_from_iter(conditions.params.iter()))
            .map_err(sql_error)?;
        while let Some(row) = rows.next().map_err(sql_error)? {
            let get = |i| row.get::<_, i64>(i).map_err(sql_error);
            let (seq, ts, tenant_id, service_id) = (get(0)?, get(1)?, get(2)?, get(3)?);
            let level: u8 = row.get(4).map_err(sql_error)?;
            seqs.push(seq);
            newest = Some(ts);
            let minute = ts - ts.rem_euclid(MINUTE);
            *minute_counts
                .entry((tenant_id, minute, service_id, level))
                .or_default() += 1;
        }
    }
    if seqs.is_empty() {
        return Ok((0, None));
    }
    {
        let mut delete = transaction
            .prepare_cached("DELETE FROM logs WHERE seq = ?1")
            .map_err(sql_error)?;
        for seq in &seqs {
            delete.execute([seq]).map_err(sql_error)?;
        }
    }
    for (grain, table) in ROLLUPS {
        let mut counts: HashMap<RollupKey, i64> = HashMap::new();
        for ((tenant_id, minute, service_id, level), n) in &minute_counts {
            let bucket = minute - minute.rem_euclid(grain);
            *counts
                .entry((*tenant_id, bucket, *service_id, *level))
                .or_default() += n;
        }
        subtract_counts(&transaction, table, &counts)?;
    }
    let blocks: BTreeSet<i64> = seqs
        .iter()
        .map(|seq| seq >> facet_blocks::BLOCK_SHIFT)
        .collect();
    facet_blocks::rebuild(&transaction, blocks).map_err(sql_error)?;
    transaction.commit().map_err(sql_error)?;
    Ok((seqs.len(), newest))
}

/// Takes deleted logs off a rollup's counts; a cell left at zero goes, as
/// if it had never been written.
fn subtract_counts(
    connection: &Connection,
    table: &str,
    counts: &HashMap<RollupKey, i64>,
) -> Result<(), StoreError> {
    let key = "tenant_id = ?1 AND bucket = ?2 AND service_id = ?3 AND level = ?4";
    let mut subtract = connection
        .prepare_cached(&format!("UPDATE {table} SET n = n - ?5 WHERE {key}"))
        .map_err(sql_error)?;
    let mut drop_empty = connection
        .prepare_cached(&format!("DELETE FROM {table} WHERE {key} AND n <= 0"))
        .map_err(sql_error)?;
    for ((tenant_id, bucket, service_id, level), n) in counts {
        subtract
            .execute(rusqlite::params![tenant_id, bucket, service_id, level, n])
            .map_err(sql_error)?;
        drop_empty
            .execute(rusqlite::params![tenant_id, bucket, service_id, level])
            .map_err(sql_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::domain::query::{FieldName, parse};
    use crate::domain::time::Micros;
    use crate::domain::{Level, LogRecord, TenantId};
    use crate::store::filter::{Order, Scope};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{FacetQuery, HistogramQuery, LogFilter, LogQuery, Store};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const BASE: Micros = 1_735_732_800_000_000; // 2025-01-01T12:00:00Z
    const LOGS: i64 = 3500;

    fn record(i: i64, tenant: &str) -> LogRecord {
        LogRecord {
            id: format!("{tenant}-{i:05}"),
            timestamp: BASE + i * 1_000_000,
            level: if i % 3 == 0 {
                Level::Debug
            } else {
                Level::Info
            },
            service: if i % 5 == 0 { "audit" } else { "api" }.into(),
            message: format!("message {i}"),
            attributes: [(
                "region".to_string(),
                ["eu", "us"][(i % 2) as usize].to_string(),
            )]
            .into(),
            tenant: TenantId::parse(tenant).unwrap(),
            trace_id: (i % 7 == 0).then(|| format!("{i:032x}")),
            ..Default::default()
        }
    }

    fn everything(scope: Scope) -> LogFilter {
        LogFilter {
            scope,
            ..LogFilter::default()
        }
    }

    fn tally<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for key in keys {
            *counts.entry(key.to_string()).or_default() += 1;
        }
        counts
    }

    /// A rule's deletion from the middle of built facet blocks: rows, the
    /// rollups (stats, histogram), the facets and the trace index all
    /// agree with what is left, and another tenant's logs stay.
    #[tokio::test]
    async fn deleting_by_query_keeps_counts_facets_and_traces_true() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let ours: Vec<LogRecord> = (0..LOGS).map(|i| record(i, "default")).collect();
        let theirs: Vec<LogRecord> = (0..200).map(|i| record(i, "other")).collect();
        store
            .insert(&[Arc::from(ours.clone()), Arc::from(theirs)])
            .await
            .unwrap();
        // Blocks 0..=2 built (the fourth is open): the delete must rebuild them.
        let look = rusqlite::Connection::open(store.path()).unwrap();
        let built = || -> i64 {
            look.query_row("SELECT COUNT(*) FROM facet_blocks", [], |row| row.get(0))
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while built() < 3 {
            assert!(Instant::now() < deadline, "facet blocks not built");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cutoff = BASE + 2000 * 1_000_000;
        let filter = LogFilter {
            to: Some(cutoff),
            expr: parse("level:debug")
                .unwrap()
                .and(parse("-service:audit").unwrap()),
            ..everything(Scope::default())
        };
        let gone =
            |r: &LogRecord| r.timestamp < cutoff && r.level == Level::Debug && r.service != "audit";
        let kept: Vec<&LogRecord> = ours.iter().filter(|r| !gone(r)).collect();
        let deleted = store.delete_matching(&filter).await.unwrap();
        assert_eq!(deleted as usize, ours.len() - kept.len());
        assert!(deleted > 500);

        let rows = store
            .logs(&LogQuery {
                filter: everything(Scope::default()),
                limit: 10_000,
                offset: 0,
                order: Order::Asc,
                after: None,
            })
            .await
            .unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let kept_ids: Vec<&str> = kept.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, kept_ids, "rows");

        let stats: BTreeMap<String, u64> = store
            .level_service_counts(&everything(Scope::default()))
            .await
            .unwrap()
            .into_iter()
            .map(|c| (format!("{} {}", c.level.as_str(), c.service), c.count))
            .collect();
        let pairs: Vec<String> = kept
            .iter()
            .map(|r| format!("{} {}", r.level.as_str(), r.service))
            .collect();
        assert_eq!(stats, tally(pairs.iter().map(String::as_str)), "stats");

        let interval = 5 * 60_000_000;
        let histogram: BTreeMap<String, u64> = store
            .bucket_counts(&HistogramQuery {
                filter: LogFilter {
                    from: Some(BASE),
                    to: Some(BASE + 2 * 3_600_000_000),
                    ..everything(Scope::default())
                },
                interval,
            })
            .await
            .unwrap()
            .into_iter()
            .map(|b| (format!("{} {}", b.bucket_start, b.level.as_str()), b.count))
            .collect();
        let cells: Vec<String> = kept
            .iter()
            .map(|r| {
                let bucket = r.timestamp - (r.timestamp - BASE).rem_euclid(interval);
                format!("{bucket} {}", r.level.as_str())
            })
            .collect();
        assert_eq!(
            histogram,
            tally(cells.iter().map(String::as_str)),
            "histogram"
        );

        let facets = store
            .facets(&FacetQuery {
                filter: everything(Scope::default()),
                fields: Some(vec![
                    FieldName::Level,
                    FieldName::parse("service"),
                    FieldName::parse("region"),
                ]),
                limit: 10,
            })
            .await
            .unwrap();
        assert!(!facets.approximate);
        assert_eq!(facets.total as usize, kept.len(), "facet total");
        let values = |i: usize| -> BTreeMap<String, u64> {
            facets.fields[i].values.iter().cloned().collect()
        };
        assert_eq!(values(0), tally(kept.iter().map(|r| r.level.as_str())));
        assert_eq!(values(1), tally(kept.iter().map(|r| r.service.as_str())));
        assert_eq!(
            values(2),
            tally(kept.iter().map(|r| r.attributes["region"].as_str())),
            "facets"
        );

        for record in ours.iter().filter(|r| r.trace_id.is_some()).take(40) {
            let found = store
                .logs(&LogQuery {
                    filter: LogFilter {
                        expr: parse(&format!("trace_id:{}", record.trace_id.as_ref().unwrap()))
                            .unwrap(),
                        ..everything(Scope::default())
                    },
                    limit: 10,
                    offset: 0,
                    order: Order::Asc,
                    after: None,
                })
                .await
                .unwrap();
            assert_eq!(found.len(), usize::from(!gone(record)), "{}", record.id);
        }

        let theirs: u64 = store
            .level_service_counts(&everything(Scope::tenant(
                TenantId::parse("other").unwrap(),
            )))
            .await
            .unwrap()
            .iter()
            .map(|c| c.count)
            .sum();
        assert_eq!(theirs, 200, "another tenant's logs stay");
    }

    /// More matches than one transaction takes: every chunk goes on where
    /// the last one stopped, and together they take every match.
    #[tokio::test]
    async fn a_deletion_larger_than_a_chunk_takes_every_match() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let logs: i64 = 3 * super::CHUNK as i64;
        for start in (0..logs).step_by(5000) {
            let batch: Vec<LogRecord> = (start..start + 5000)
                .map(|i| LogRecord {
                    // Seven logs share each timestamp, so a chunk may end
                    // among logs of its last timestamp.
                    timestamp: BASE + (i / 7) * 1_000_000,
                    level: if i % 3 == 0 {
                        Level::Info
                    } else {
                        Level::Debug
                    },
                    ..record(i, "default")
                })
                .collect();
            store.insert(&[Arc::from(batch)]).await.unwrap();
        }
        let started = Instant::now();
        let deleted = store
            .delete_matching(&LogFilter {
                expr: parse("level:debug").unwrap(),
                ..everything(Scope::default())
            })
            .await
            .unwrap();
        eprintln!(
            "deleted {deleted} of {logs} logs in {:?}",
            started.elapsed()
        );
        assert_eq!(deleted as i64, logs - (logs + 2) / 3);
        let counts = store
            .level_service_counts(&everything(Scope::default()))
            .await
            .unwrap();
        assert!(counts.iter().all(|c| c.level == Level::Info), "{counts:?}");
        let total: u64 = counts.iter().map(|c| c.count).sum();
        assert_eq!(total as i64, (logs + 2) / 3);
    }
}
