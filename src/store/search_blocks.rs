//! A skip index for `q` on the embedded store: search blocks.
//!
//! A substring search cannot use a B-tree, and scanning rows runs at about
//! 2M rows/s: a word that few logs hold took 0.4 s on 10M logs, a word no
//! log holds 5 s. An FTS5 trigram index answered fast but made every insert
//! 18 times slower. This index costs the writer one pass over each message.
//!
//! Logs are grouped by `seq` into blocks of `BLOCK_ROWS` consecutive rows.
//! Each completed block has a row in `message_blocks`: its time range and a
//! Bloom filter of the byte trigrams of its lowercased messages. A search
//! reads those rows, keeps the blocks whose filter holds every trigram of
//! the needle, and scans only those. The newest blocks are scanned first,
//! and the scan stops once no block left can hold a row newer than the page
//! it has. The filter can say yes wrongly but never no wrongly: a message
//! that contains the needle holds all its trigrams. So a block left out
//! cannot hold a match.
//!
//! The writer keeps the open block (the one the newest rows go to) in memory
//! and writes its row when the block is full, in the same transaction as the
//! row that opens the next one. Searches scan the open block in full. After
//! a restart, the writer rebuilds the open block from its rows. `seq` is
//! assigned by the writer and never goes back, even when retention deletes
//! the newest rows, so a stored filter always covers every row of its block.

use super::filter::{LogQuery, Order};
use crate::domain::time::Micros;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params_from_iter};

/// log2 of the rows per block. 1024 rows keep the filter sharp enough to
/// skip blocks for a word in 0.01% of logs (about 10% of blocks hold one).
const BLOCK_SHIFT: u32 = 10;
const BLOCK_ROWS: i64 = 1 << BLOCK_SHIFT;
/// 16 Kibit (2 KiB) per block, two bits per trigram: a block of typical
/// log messages fills about a third of it, so a six-trigram word that is
/// not there passes with a probability near 1e-5.
const BLOOM_BITS: usize = 16 * 1024;
const BLOOM_BYTES: usize = BLOOM_BITS / 8;
/// A page deeper than this is left to the plain scan.
const MAX_TOP: usize = 10_000;
/// Rows the block scan reads before it gives up and leaves the search to the
/// page index. That happens only when the matching blocks' time ranges
/// overlap so much that newest-first cannot stop early (logs arriving far
/// out of time order); the plain scan is then no slower than before.
const SCAN_BUDGET_ROWS: i64 = 256 * BLOCK_ROWS;

fn block_of(seq: i64) -> i64 {
    seq >> BLOCK_SHIFT
}

/// The two bit positions of one trigram (bytes packed into 24 bits).
fn positions(trigram: u32) -> [usize; 2] {
    let hash = u64::from(trigram).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    [(hash >> 50) as usize, ((hash >> 36) & 0x3FFF) as usize]
}

/// Calls `each` with every byte trigram of `text` lowercased, the way
/// `contains_ignore_case` compares.
fn for_each_trigram(text: &str, mut each: impl FnMut(u32)) {
    let lowered;
    let bytes: &[u8] = if text.is_ascii() {
        text.as_bytes()
    } else {
        lowered = text.to_lowercase();
        lowered.as_bytes()
    };
    let mut window: u32 = 0;
    for (index, byte) in bytes.iter().enumerate() {
        window = ((window << 8) | u32::from(byte.to_ascii_lowercase())) & 0x00FF_FFFF;
        if index >= 2 {
            each(window);
        }
    }
}

/// The open block, kept by the writer.
pub struct OpenBlock {
    block: i64,
    rows: u32,
    min_ts: Micros,
    max_ts: Micros,
    /// The least and greatest id (as strings), so a log is found by id
    /// without an index on ids: ingest makes ids time-ordered, so a
    /// block's range is narrow.
    min_id: String,
    max_id: String,
    bloom: Vec<u8>,
    /// The `seq` the next log gets.
    next_seq: i64,
}

impl OpenBlock {
    /// The writer's state after a start or a failed transaction: the open
    /// block rebuilt from its rows, and any completed block that has no
    /// filter yet (every block of a store from before schema 3) filled in.
    pub fn load(transaction: &Transaction) -> rusqlite::Result<OpenBlock> {
        let last_stored: Option<i64> =
            transaction.query_row("SELECT MAX(block) FROM message_blocks", [], |row| {
                row.get(0)
            })?;
        let max_seq: Option<i64> =
            transaction.query_row("SELECT MAX(seq) FROM logs", [], |row| row.get(0))?;
        let first_unstored = last_stored.map_or(0, |block| block + 1);
        let start_seq = first_unstored << BLOCK_SHIFT;
        let mut open = OpenBlock::empty(first_unstored);
        open.next_seq = start_seq.max(max_seq.unwrap_or(0) + 1);
        let unindexed = max_seq.map_or(0, |max| (max - start_seq + 1).max(0));
        if unindexed > 100 * BLOCK_ROWS {
            tracing::info!(
                logs = unindexed,
                "building search blocks for the existing logs (once)"
            );
        }
        let mut rows = transaction
            .prepare("SELECT seq, ts, id, message FROM logs WHERE seq >= ?1 ORDER BY seq")?;
        let mut rows = rows.query([start_seq])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let ts: Micros = row.get(1)?;
            let id: String = row.get(2)?;
            let message: String = row.get(3)?;
            open.add_row(transaction, seq, ts, &id, &message)?;
        }
        Ok(open)
    }

    fn empty(block: i64) -> OpenBlock {
        OpenBlock {
            block,
            rows: 0,
            min_ts: Micros::MAX,
            max_ts: Micros::MIN,
            min_id: String::new(),
            max_id: String::new(),
            bloom: vec![0; BLOOM_BYTES],
            next_seq: block << BLOCK_SHIFT,
        }
    }

    /// The `seq` for the next log.
    pub fn take_seq(&mut self) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Adds one inserted log; a log in a later block first stores the open
    /// one's filter.
    pub fn add_row(
        &mut self,
        transaction: &Transaction,
        seq: i64,
        ts: Micros,
        id: &str,
        message: &str,
    ) -> rusqlite::Result<()> {
        let block = block_of(seq);
        if block != self.block {
            self.store(transaction)?;
            *self = OpenBlock {
                next_seq: self.next_seq.max(seq + 1),
                ..OpenBlock::empty(block)
            };
        }
        self.next_seq = self.next_seq.max(seq + 1);
        if self.rows == 0 || id < self.min_id.as_str() {
            self.min_id.clear();
            self.min_id.push_str(id);
        }
        if self.rows == 0 || id > self.max_id.as_str() {
            // Reuses the buffer: ids mostly rise, so this runs per row.
            self.max_id.clear();
            self.max_id.push_str(id);
        }
        self.rows += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        let bloom = &mut self.bloom;
        for_each_trigram(message, |trigram| {
            for position in positions(trigram) {
                bloom[position >> 3] |= 1 << (position & 7);
            }
        });
        Ok(())
    }

    fn store(&self, transaction: &Transaction) -> rusqlite::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        transaction
            .prepare_cached(
                "INSERT OR REPLACE INTO message_blocks (block, min_ts, max_ts, bloom, min_id, max_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(rusqlite::params![
                self.block,
                self.min_ts,
                self.max_ts,
                self.bloom,
                self.min_id,
                self.max_id
            ])?;
        Ok(())
    }
}

/// The bit positions a block's filter must all have set to hold `needle`;
/// `None` when the needle is too short to have a trigram.
fn needle_positions(needle: &str) -> Option<Vec<usize>> {
    let mut wanted = Vec::new();
    for_each_trigram(needle, |trigram| wanted.extend(positions(trigram)));
    wanted.sort_unstable();
    wanted.dedup();
    (!wanted.is_empty()).then_some(wanted)
}

fn may_hold(bloom: &[u8], wanted: &[usize]) -> bool {
    bloom.len() == BLOOM_BYTES
        && wanted
            .iter()
            .all(|&position| bloom[position >> 3] & (1 << (position & 7)) != 0)
}

struct Candidate {
    /// `None` for the open tail, which has no filter.
    block: Option<i64>,
    first_seq: i64,
    last_seq: Option<i64>,
    min_ts: Micros,
    max_ts: Micros,
}

/// One matching row: its place in page order and what the caller maps it
/// to.
struct Hit<T> {
    ts: Micros,
    id: String,
    row: T,
}

/// Runs a `q` search through the search blocks. `conditions` is the
/// caller's WHERE clause over `logs l` (the needle among them) with its
/// parameters; `select` the column list, starting with `l.seq, l.ts, l.id`,
/// and
/// `from` the FROM clause. `None` means "use the plain scan": the needle is
/// too short, the page too deep, or the blocks did not narrow the search.
///
/// `also` narrows the blocks further (the attribute filters of the facet
/// blocks): a block is read only when both filters may hold a match. With
/// no `needle`, `also` alone decides.
#[allow(clippy::too_many_arguments)]
pub fn search<T>(
    connection: &Connection,
    query: &LogQuery,
    needle: Option<&str>,
    also: &dyn Fn(i64) -> rusqlite::Result<bool>,
    select_from: &str,
    conditions: &[String],
    params: &[Value],
    map: impl Fn(&rusqlite::Row) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<Vec<T>>> {
    let wanted = match needle {
        Some(needle) => match needle_positions(needle) {
            Some(wanted) => Some(wanted),
            None => return Ok(None),
        },
        None => None,
    };
    let top = query.offset + query.limit;
    if top > MAX_TOP {
        return Ok(None);
    }
    let (mut from, mut to) = query.filter.bounds();
    // A cursor's key narrows the blocks worth reading.
    if let Some(after) = &query.after {
        match query.order {
            Order::Desc => to = to.min(after.timestamp.saturating_add(1)),
            Order::Asc => from = from.max(after.timestamp),
        }
    }
    // One snapshot for the filters and the rows, so a block the writer
    // completes meanwhile is either among the filters or in the open tail.
    let snapshot = connection.unchecked_transaction()?;
    let last_stored: Option<i64> =
        snapshot.query_row("SELECT MAX(block) FROM message_blocks", [], |row| {
            row.get(0)
        })?;
    // The open block (and anything after the last filter) is always scanned.
    let mut candidates = vec![Candidate {
        block: None,
        first_seq: last_stored.map_or(0, |block| (block + 1) << BLOCK_SHIFT),
        last_seq: None,
        min_ts: Micros::MIN,
        max_ts: Micros::MAX,
    }];
    {
        // Time ranges only, from the covering index: a filter is read when
        // its block's turn comes, so a search that stops early reads few.
        let mut blocks = snapshot.prepare_cached(
            "SELECT block, min_ts, max_ts FROM message_blocks INDEXED BY message_blocks_time
             WHERE max_ts >= ?1 AND min_ts < ?2",
        )?;
        let mut rows = blocks.query([from, to])?;
        while let Some(row) = rows.next()? {
            let block: i64 = row.get(0)?;
            candidates.push(Candidate {
                block: Some(block),
                first_seq: block << BLOCK_SHIFT,
                last_seq: Some(((block + 1) << BLOCK_SHIFT) - 1),
                min_ts: row.get(1)?,
                max_ts: row.get(2)?,
            });
        }
    }
    let mut filter =
        snapshot.prepare_cached("SELECT bloom FROM message_blocks WHERE block = ?1")?;
    let newest_first = query.order == Order::Desc;
    // The open tail stays first: its time range is unknown.
    candidates[1..].sort_unstable_by(|a, b| {
        if newest_first {
            b.max_ts.cmp(&a.max_ts)
        } else {
            a.min_ts.cmp(&b.min_ts)
        }
    });

    let mut sql_conditions = conditions.to_vec();
    sql_conditions.push("l.seq >= ?".into());
    sql_conditions.push("l.seq <= ?".into());
    let sql = format!("{select_from} WHERE {}", sql_conditions.join(" AND "));
    let mut statement = snapshot.prepare_cached(&sql)?;
    let mut hits: Vec<Hit<T>> = Vec::new();
    let mut scanned: i64 = 0;
    let better = |a: &Hit<T>, b: &Hit<T>| {
        let ordering = (a.ts, a.id.as_bytes()).cmp(&(b.ts, b.id.as_bytes()));
        if newest_first {
            ordering.reverse()
        } else {
            ordering
        }
    };
    for candidate in &candidates {
        if hits.len() >= top {
            hits.sort_unstable_by(&better);
            hits.truncate(top);
            let worst_kept = hits[top - 1].ts;
            let cannot_improve = if newest_first {
                candidate.max_ts < worst_kept
            } else {
                candidate.min_ts > worst_kept
            };
            if cannot_improve {
                break;
            }
        }
        if let Some(block) = candidate.block {
            if let Some(wanted) = &wanted {
                let holds = filter
                    .query_row([block], |row| {
                        Ok(may_hold(row.get_ref(0)?.as_blob().unwrap_or(&[]), wanted))
                    })
                    .optional()?;
                if holds != Some(true) {
                    continue;
                }
            }
            if !also(block)? {
                continue;
            }
        }
        if scanned > SCAN_BUDGET_ROWS {
            return Ok(None);
        }
        scanned += BLOCK_ROWS;
        let mut bound: Vec<&Value> = params.iter().collect();
        let first = Value::Integer(candidate.first_seq);
        let last = Value::Integer(candidate.last_seq.unwrap_or(i64::MAX));
        bound.push(&first);
        bound.push(&last);
        let mut rows = statement.query(params_from_iter(bound))?;
        while let Some(row) = rows.next()? {
            hits.push(Hit {
                ts: row.get(1)?,
                id: row.get(2)?,
                row: map(row)?,
            });
        }
    }
    hits.sort_unstable_by(&better);
    Ok(Some(
        hits.into_iter()
            .skip(query.offset)
            .take(query.limit)
            .map(|hit| hit.row)
            .collect(),
    ))
}

/// Schema 4: the id range of every stored block, read from its rows once.
pub fn add_id_ranges(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(&format!(
        "ALTER TABLE message_blocks ADD COLUMN min_id TEXT;
         ALTER TABLE message_blocks ADD COLUMN max_id TEXT;
         UPDATE message_blocks SET
             min_id = (SELECT MIN(id) FROM logs WHERE seq >= block << {BLOCK_SHIFT} AND seq < (block + 1) << {BLOCK_SHIFT}),
             max_id = (SELECT MAX(id) FROM logs WHERE seq >= block << {BLOCK_SHIFT} AND seq < (block + 1) << {BLOCK_SHIFT});
         CREATE INDEX message_blocks_ids ON message_blocks (max_id, min_id);"
    ))
}

/// The `seq` ranges that may hold the log with `id`: the stored blocks
/// whose id range covers it, and everything after the last stored block.
/// `None` when so many blocks qualify (ids far out of order) that a scan
/// is the better plan.
pub fn seq_ranges_for_id(
    connection: &Connection,
    id: &str,
) -> rusqlite::Result<Option<Vec<(i64, i64)>>> {
    const MOST_BLOCKS: usize = 256;
    let mut statement = connection.prepare_cached(
        "SELECT block FROM message_blocks INDEXED BY message_blocks_ids
         WHERE max_id >= ?1 AND min_id <= ?1 LIMIT ?2",
    )?;
    let blocks = statement
        .query_map(rusqlite::params![id, MOST_BLOCKS as i64 + 1], |row| {
            row.get::<_, i64>(0)
        })?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    if blocks.len() > MOST_BLOCKS {
        return Ok(None);
    }
    let last_stored: Option<i64> =
        connection.query_row("SELECT MAX(block) FROM message_blocks", [], |row| {
            row.get(0)
        })?;
    let mut ranges: Vec<(i64, i64)> = blocks
        .into_iter()
        .map(|block| (block << BLOCK_SHIFT, ((block + 1) << BLOCK_SHIFT) - 1))
        .collect();
    ranges.push((
        last_stored.map_or(0, |block| (block + 1) << BLOCK_SHIFT),
        i64::MAX,
    ));
    Ok(Some(ranges))
}

/// Drops the filters of blocks whose rows retention deleted.
pub fn forget_before(connection: &Connection, cutoff: Micros) -> rusqlite::Result<()> {
    connection
        .execute("DELETE FROM message_blocks WHERE max_ts < ?1", [cutoff])
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bloom_of(messages: &[&str]) -> Vec<u8> {
        let mut bloom = vec![0u8; BLOOM_BYTES];
        for message in messages {
            for_each_trigram(message, |trigram| {
                for position in positions(trigram) {
                    bloom[position >> 3] |= 1 << (position & 7);
                }
            });
        }
        bloom
    }

    #[test]
    fn a_block_holding_the_needle_in_any_case_is_never_skipped() {
        let bloom = bloom_of(&["Payment DEADLOCK on orders_7", "Ошибка БАЗЫ данных"]);
        for needle in ["deadlock", "lock on ord", "ошибка", "базы", "s_7"] {
            let wanted = needle_positions(needle).expect("trigrams");
            assert!(may_hold(&bloom, &wanted), "{needle}");
        }
    }

    #[test]
    fn a_block_without_the_needle_is_skipped() {
        let bloom = bloom_of(&["user 42 logged in", "cache warmed in 12 ms"]);
        let wanted = needle_positions("zanzibar").expect("trigrams");
        assert!(!may_hold(&bloom, &wanted));
    }

    #[test]
    fn needles_shorter_than_a_trigram_are_left_to_the_scan() {
        assert!(needle_positions("ab").is_none());
        assert!(needle_positions("").is_none());
        assert!(needle_positions("абв").is_some(), "six bytes in UTF-8");
    }
}
