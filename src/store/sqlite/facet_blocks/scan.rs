//! Counting the matching logs of the built blocks, in a shuffled order so
//! that stopping after `enough` matches leaves a fair sample.

use super::codec::{BLOCK_SHIFT, Block};
use super::counts::{Counts, Wanted};
use super::filter::{BlockFilter, Dictionaries};
use crate::domain::time::Micros;
use crate::store::StoreError;
use crate::store::facets::Tally;
use crate::store::filter::LogFilter;
use crate::store::sqlite::connection::sql_error;
use rusqlite::{Connection, OptionalExtension};

/// What a block scan did.
pub struct Scan {
    pub counts: Counts,
    /// Counts cover this share of the candidate blocks' logs; below 1, they
    /// came from a sample and should be scaled.
    pub fraction: f64,
    /// The first `seq` no built block covers: read rows from there.
    pub tail_from: i64,
}

/// Counts the logs of built blocks that match `filter`. `None` when the
/// filter needs the message or the id. Blocks are visited in a shuffled
/// order; once `enough` logs have matched, the rest is left out (a sample).
pub fn scan(
    connection: &Connection,
    filter: &LogFilter,
    dictionaries: &Dictionaries,
    wanted: &Wanted,
    enough: u64,
) -> Result<Option<Scan>, StoreError> {
    let Some(block_filter) = BlockFilter::of(filter, dictionaries) else {
        return Ok(None);
    };
    let last_built: Option<i64> = connection
        .query_row("SELECT MAX(block) FROM facet_blocks", [], |row| row.get(0))
        .map_err(sql_error)?;
    let tail_from = last_built.map_or(0, |block| (block + 1) << BLOCK_SHIFT);
    // Rows retention deleted are still in their block: start at the oldest
    // log still stored.
    let oldest = oldest_of(connection, &block_filter.tenants)?;
    let Some(oldest) = oldest else {
        return Ok(Some(Scan {
            counts: Counts::default(),
            fraction: 1.0,
            tail_from,
        }));
    };
    let block_filter = BlockFilter {
        from: block_filter.from.max(oldest),
        ..block_filter
    };
    let mut candidates: Vec<(i64, i64)> = {
        let mut statement = connection
            .prepare_cached(
                "SELECT block, rows FROM facet_blocks INDEXED BY facet_blocks_time
                 WHERE max_ts >= ?1 AND min_ts < ?2",
            )
            .map_err(sql_error)?;
        let rows = statement
            .query_map([block_filter.from, block_filter.to], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)?
    };
    let candidate_rows: i64 = candidates.iter().map(|(_, rows)| rows).sum();
    // A fixed shuffle: any prefix is a fair sample of the blocks.
    candidates.sort_by_key(|(block, _)| (*block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut counts = Counts::default();
    let mut read_rows: i64 = 0;
    let mut data = connection
        .prepare_cached("SELECT data FROM facet_blocks WHERE block = ?1")
        .map_err(sql_error)?;
    let mut decided: Vec<Vec<bool>> = Vec::new();
    let mut per_entry: Vec<u32> = Vec::new();
    // Per key id (ids are small and dense): logs having the key, and the
    // tally of its values when wanted.
    let key_slots = dictionaries
        .key_names
        .keys()
        .copied()
        .max()
        .map_or(0, |id| id.max(0) as usize + 1);
    let mut key_totals: Vec<u64> = vec![0; key_slots];
    let mut key_tallies: Vec<Option<Tally>> = (0..key_slots).map(|_| None).collect();
    let wanted_ids: Vec<bool> = (0..key_slots)
        .map(|id| {
            dictionaries
                .key_names
                .get(&(id as i64))
                .is_some_and(|name| wanted.wants(name))
        })
        .collect();
    for (block, rows) in &candidates {
        if counts.total >= enough && read_rows < candidate_rows {
            break;
        }
        read_rows += rows;
        let mut statement_rows = data.query([block]).map_err(sql_error)?;
        let Some(row) = statement_rows.next().map_err(sql_error)? else {
            continue;
        };
        let bytes = row
            .get_ref(0)
            .map_err(sql_error)?
            .as_blob()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let Some(decoded) = Block::decode(bytes) else {
            return Err(StoreError::Internal(format!(
                "facet block {block} is damaged"
            )));
        };
        decided.clear();
        block_filter.expr.decide(&decoded, &mut decided);
        per_entry.clear();
        per_entry.resize(decoded.dictionary.len(), 0);
        let complete = decoded.for_each_row(|row| {
            if !block_filter.row_matches(row, &decided) {
                return;
            }
            counts.total += 1;
            if let Some(slot) = counts.levels.get_mut(row.level as usize) {
                *slot += 1;
            }
            *counts.services.entry(row.service).or_default() += 1;
            for &at in row.pairs {
                per_entry[at as usize] += 1;
            }
        });
        if complete.is_none() {
            return Err(StoreError::Internal(format!(
                "facet block {block} is damaged"
            )));
        }
        // Keys and values from the per-entry counts: one hash operation per
        // distinct value of the block, not per log.
        for (at, &n) in per_entry.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let (key_id, value) = decoded.dictionary[at];
            let Some(slot) = usize::try_from(key_id)
                .ok()
                .filter(|slot| *slot < key_slots)
            else {
                continue;
            };
            key_totals[slot] += u64::from(n);
            if wanted_ids[slot] {
                key_tallies[slot]
                    .get_or_insert_with(Tally::default)
                    .add_bytes(value, u64::from(n));
            }
        }
    }
    for (slot, (total, tally)) in key_totals.into_iter().zip(key_tallies).enumerate() {
        let Some(name) = dictionaries.key_names.get(&(slot as i64)) else {
            continue;
        };
        if total > 0 {
            counts.keys.insert(name.clone(), total);
        }
        if let Some(tally) = tally {
            counts.values.insert(name.clone(), tally);
        }
    }
    let fraction = if candidate_rows == 0 || read_rows >= candidate_rows {
        1.0
    } else {
        read_rows as f64 / candidate_rows as f64
    };
    Ok(Some(Scan {
        counts,
        fraction,
        tail_from,
    }))
}

/// The oldest log of these tenants: a seek per tenant on the tenant-first
/// page index.
pub fn oldest_of(connection: &Connection, tenants: &[i64]) -> Result<Option<Micros>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT ts FROM logs INDEXED BY logs_page WHERE tenant_id = ?1 ORDER BY ts LIMIT 1",
        )
        .map_err(sql_error)?;
    let mut oldest: Option<Micros> = None;
    for tenant in tenants {
        let first: Option<Micros> = statement
            .query_row([tenant], |row| row.get(0))
            .optional()
            .map_err(sql_error)?;
        oldest = match (oldest, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(oldest)
}

#[cfg(test)]
mod tests {
    use super::super::filter::dictionaries;
    use super::*;
    use crate::domain::{Level, LogBatch, LogRecord};
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;
    use std::time::Duration;

    /// Past `enough` matching logs a scan stops: a sample of whole blocks,
    /// which scaled estimates the whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scan_samples_past_enough_and_scales() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let batch: LogBatch = (0..40 * 1024)
            .map(|n: i64| LogRecord {
                id: format!("id-{n:06}"),
                timestamp: 1_735_689_600_000_000 + n,
                level: Level::ALL[n as usize % 5],
                service: "api".into(),
                message: "m".into(),
                attributes: [(
                    "region".to_string(),
                    ["eu", "us"][n as usize % 2].to_string(),
                )]
                .into(),
                ..Default::default()
            })
            .collect();
        store.insert(&[batch]).await.unwrap();
        let connection = Connection::open(dir.path().join("oglogstream.db")).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while connection
            .query_row("SELECT COUNT(*) FROM facet_blocks", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap()
            < 39
        {
            assert!(std::time::Instant::now() < deadline, "builder too slow");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let dictionaries = dictionaries(&connection).unwrap();
        let filter = LogFilter::default();
        let exact = scan(
            &connection,
            &filter,
            &dictionaries,
            &Wanted::Every,
            u64::MAX,
        )
        .unwrap()
        .unwrap();
        let in_blocks: u64 = connection
            .query_row("SELECT SUM(rows) FROM facet_blocks", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap() as u64;
        assert_eq!((exact.counts.total, exact.fraction), (in_blocks, 1.0));
        let sampled = scan(&connection, &filter, &dictionaries, &Wanted::Every, 5_000)
            .unwrap()
            .unwrap();
        assert!(sampled.fraction < 0.5, "{}", sampled.fraction);
        let mut counts = sampled.counts;
        counts.scale(sampled.fraction);
        assert_eq!(
            counts.total, in_blocks,
            "every log matches: scaling is exact"
        );
        let eu = counts.values["region"].counts_of("eu");
        assert!((18_000..22_000).contains(&eu), "{eu}");
        store.close().await;
    }
}
