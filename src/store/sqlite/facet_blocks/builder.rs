//! The thread that builds facet blocks from stored rows, at low CPU
//! priority, shortly after the writer completes them: the writer does no
//! extra work.

use super::codec::{BLOCK_SHIFT, Encoder};
use crate::store::sqlite::expr::for_each_attribute;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Blocks built per write transaction while catching up.
const BLOCKS_PER_TRANSACTION: i64 = 32;
/// How often the builder looks for completed blocks.
const POLL: Duration = Duration::from_millis(500);

pub struct Builder {
    stop: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    backlog: Arc<AtomicU64>,
}

impl Builder {
    pub fn start(path: &Path) -> rusqlite::Result<Builder> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -2048;")?;
        let (stop, stopped) = sync_channel(0);
        let backlog = Arc::new(AtomicU64::new(0));
        let shared = Arc::clone(&backlog);
        let thread = std::thread::Builder::new()
            .name("facet-blocks".into())
            .spawn(move || build_forever(connection, stopped, &shared))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Builder {
            stop: Some(stop),
            thread: Some(thread),
            backlog,
        })
    }

    /// Logs after the last built block, as of the builder's last look.
    pub fn backlog(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.backlog)
    }

    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn build_forever(connection: Connection, stopped: Receiver<()>, backlog: &AtomicU64) {
    // Ingest and queries come first: this thread only takes CPU they leave.
    #[cfg(target_os = "linux")]
    // SAFETY: changes the priority of this thread only.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
    }
    let mut keys = KeyIds::default();
    loop {
        let built = match build_some(&connection, &mut keys, backlog) {
            Ok(built) => built,
            Err(error) => {
                tracing::warn!(%error, "building facet blocks failed; retrying");
                keys = KeyIds::default();
                0
            }
        };
        // Behind: go on at once (still stopping when asked).
        let wait = if built > 0 { Duration::ZERO } else { POLL };
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Attribute key names and ids, cached by the builder.
#[derive(Default)]
struct KeyIds {
    ids: HashMap<String, i64>,
    loaded: bool,
}

impl KeyIds {
    fn id(&mut self, connection: &Connection, key: &str) -> rusqlite::Result<i64> {
        if !self.loaded {
            let mut statement = connection.prepare("SELECT id, name FROM attribute_keys")?;
            let rows = statement.query_map([], |row| Ok((row.get(1)?, row.get(0)?)))?;
            for row in rows {
                let (name, id): (String, i64) = row?;
                self.ids.insert(name, id);
            }
            self.loaded = true;
        }
        if let Some(id) = self.ids.get(key) {
            return Ok(*id);
        }
        let id: i64 = connection.query_row(
            "INSERT INTO attribute_keys (name) VALUES (?1)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            [key],
            |row| row.get(0),
        )?;
        self.ids.insert(key.to_string(), id);
        Ok(id)
    }
}

/// Builds the next completed blocks; returns how many.
fn build_some(
    connection: &Connection,
    keys: &mut KeyIds,
    backlog: &AtomicU64,
) -> rusqlite::Result<i64> {
    let next: i64 = connection
        .query_row("SELECT MAX(block) FROM facet_blocks", [], |row| {
            row.get::<_, Option<i64>>(0)
        })?
        .map_or(0, |block| block + 1);
    // Two statements: SQLite answers MIN or MAX alone from the table's
    // ends, but both at once by reading every row.
    let end = |sql: &str| connection.query_row(sql, [], |row| row.get::<_, Option<i64>>(0));
    let (Some(min_seq), Some(max_seq)) = (
        end("SELECT MIN(seq) FROM logs")?,
        end("SELECT MAX(seq) FROM logs")?,
    ) else {
        backlog.store(0, Ordering::Relaxed);
        return Ok(0);
    };
    // Retention may have emptied the first blocks: start at the oldest log.
    let next = next.max(min_seq >> BLOCK_SHIFT);
    // A block is complete once a later one has a row: seq only grows.
    let last = (max_seq >> BLOCK_SHIFT).min(next + BLOCKS_PER_TRANSACTION);
    let after = |block: i64| (max_seq + 1 - (block << BLOCK_SHIFT)).max(0) as u64;
    backlog.store(after(next), Ordering::Relaxed);
    if last <= next {
        return Ok(0);
    }
    let mut built = Vec::new();
    for block in next..last {
        built.push((block, encode(connection, keys, block)?));
    }
    let count = built.len() as i64;
    // The write lock first, then a check that each block still holds the
    // rows it was encoded from: a retention rule may have deleted some of
    // them meanwhile (its transaction rebuilds only blocks already built).
    // A changed block is encoded again at the next look.
    let transaction = Transaction::new_unchecked(connection, TransactionBehavior::Immediate)?;
    for (block, encoder) in &built {
        if rows_of(&transaction, *block)? != encoder.rows {
            return Ok(0);
        }
    }
    for (block, encoder) in built {
        store(&transaction, block, encoder)?;
    }
    transaction.commit()?;
    backlog.store(after(last), Ordering::Relaxed);
    Ok(count)
}

/// Encodes block `block` from the rows it holds now.
fn encode(connection: &Connection, keys: &mut KeyIds, block: i64) -> rusqlite::Result<Encoder> {
    let mut rows = connection.prepare_cached(
        "SELECT ts, level, service_id, attributes, tenant_id FROM logs WHERE seq >= ?1 AND seq < ?2",
    )?;
    let mut encoder = Encoder::default();
    let mut cursor = rows.query(params![block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT])?;
    while let Some(row) = cursor.next()? {
        let attributes = row.get_ref(3)?.as_str_or_null().ok().flatten();
        let mut pairs: Vec<(i64, String)> = Vec::new();
        if let Some(json) = attributes {
            let mut failed = None;
            for_each_attribute(json, |key, value| match keys.id(connection, &key) {
                Ok(id) => pairs.push((id, value.into_owned())),
                Err(error) => failed = Some(error),
            });
            if let Some(error) = failed {
                return Err(error);
            }
        }
        encoder.row(row.get(0)?, row.get(1)?, row.get(2)?, row.get(4)?, &pairs);
    }
    Ok(encoder)
}

/// The logs block `block` holds now.
fn rows_of(connection: &Connection, block: i64) -> rusqlite::Result<i64> {
    connection.query_row(
        "SELECT COUNT(*) FROM logs WHERE seq >= ?1 AND seq < ?2",
        params![block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT],
        |row| row.get(0),
    )
}

fn store(connection: &Connection, block: i64, encoder: Encoder) -> rusqlite::Result<()> {
    let (min_ts, max_ts, rows) = (encoder.min_ts, encoder.max_ts, encoder.rows);
    let (data, bloom) = encoder.finish();
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO facet_blocks (block, min_ts, max_ts, rows, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![block, min_ts, max_ts, rows, data])?;
    connection
        .prepare_cached("INSERT OR REPLACE INTO attribute_blooms (block, bloom) VALUES (?1, ?2)")?
        .execute(params![block, bloom])?;
    Ok(())
}

/// Encodes again the built blocks among `blocks` whose logs were deleted
/// from their middle (retention rules), inside the deleting transaction, so
/// facets never count a deleted log; a block left empty is dropped. Blocks
/// not built yet are the builder's, which reads their rows as they are then.
pub fn rebuild(
    connection: &Connection,
    blocks: impl IntoIterator<Item = i64>,
) -> rusqlite::Result<()> {
    let mut keys = KeyIds::default();
    let mut built = connection.prepare_cached("SELECT 1 FROM facet_blocks WHERE block = ?1")?;
    for block in blocks {
        if !built.exists([block])? {
            continue;
        }
        let encoder = encode(connection, &mut keys, block)?;
        if encoder.rows == 0 {
            connection.execute("DELETE FROM attribute_blooms WHERE block = ?1", [block])?;
            connection.execute("DELETE FROM facet_blocks WHERE block = ?1", [block])?;
        } else {
            store(connection, block, encoder)?;
        }
    }
    Ok(())
}
