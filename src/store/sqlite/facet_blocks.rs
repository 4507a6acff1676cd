//! Facet blocks: per-block attribute data for facets and attribute keys on
//! the embedded store.
//!
//! Counting the values of attributes over a million logs by reading rows
//! and parsing their JSON takes seconds (about 1.5 µs per row), and an index
//! entry per attribute would cost the writer more than the whole insert
//! does today (high-cardinality values such as trace ids land all over an
//! index). So, like the search blocks, logs are taken 1024 at a time (by
//! `seq`), and each completed block gets one row in `facet_blocks`: its time
//! range and a compact column blob of its logs' timestamps, levels,
//! services and attributes, the attribute values in a dictionary of the
//! block. Facets decode blobs (about 0.1 µs per log, no JSON) and apply
//! level, service, time and attribute filters to each log in the blob.
//! `attribute_blooms` holds a Bloom filter of each block's attribute keys
//! and (key, lowercased value) pairs, so a search for a rare value reads
//! the few blocks that may hold it.
//!
//! A thread of its own builds the blocks from the stored rows, at low CPU
//! priority, shortly after the writer completes them: the writer does no
//! extra work. Logs not yet in a block (the open block, and any the builder
//! has not reached, such as a store's history after the upgrade) are read
//! as rows, so answers never depend on how far the builder is. Blocks are
//! built in order: everything after the last built block is "the tail".

use super::expr::for_each_attribute;
use super::{StoreError, sql_error};
use crate::domain::query::{CompareOp, Expr, FieldName, Matcher, Number, Predicate, TextField};
use crate::domain::time::Micros;
use crate::domain::{Level, LevelSet};
use crate::store::facets::{self, FacetQuery, Facets, KeyCount, Tally};
use crate::store::filter::LogFilter;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// Must match the search blocks' grouping (`seq >> 10`), so both describe
/// the same logs.
const BLOCK_SHIFT: u32 = 10;
const BLOOM_BITS: usize = 16 * 1024;
const BLOOM_BYTES: usize = BLOOM_BITS / 8;
const FORMAT: u8 = 1;
/// Blocks built per write transaction while catching up.
const BLOCKS_PER_TRANSACTION: i64 = 32;
/// How often the builder looks for completed blocks.
const POLL: Duration = Duration::from_millis(500);

/// Schema 6: the tables (filled by the builder, from the first start on).
pub fn create_tables(connection: &Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS attribute_keys (
             id   INTEGER PRIMARY KEY,
             name TEXT NOT NULL UNIQUE
         );
         CREATE TABLE IF NOT EXISTS facet_blocks (
             block  INTEGER PRIMARY KEY,
             min_ts INTEGER NOT NULL,
             max_ts INTEGER NOT NULL,
             rows   INTEGER NOT NULL,
             data   BLOB NOT NULL
         );
         CREATE INDEX IF NOT EXISTS facet_blocks_time ON facet_blocks (max_ts, min_ts);
         CREATE TABLE IF NOT EXISTS attribute_blooms (
             block INTEGER PRIMARY KEY,
             bloom BLOB NOT NULL
         );",
    )
}

/// Retention: forgets the blocks whose logs are all older than `cutoff`.
pub fn forget_before(connection: &Connection, cutoff: Micros) -> rusqlite::Result<()> {
    connection.execute(
        "DELETE FROM attribute_blooms WHERE block IN
             (SELECT block FROM facet_blocks WHERE max_ts < ?1)",
        [cutoff],
    )?;
    connection.execute("DELETE FROM facet_blocks WHERE max_ts < ?1", [cutoff])?;
    Ok(())
}

// ---- building ----------------------------------------------------------------

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
    {
        let mut rows = connection.prepare_cached(
            "SELECT ts, level, service_id, attributes FROM logs WHERE seq >= ?1 AND seq < ?2",
        )?;
        for block in next..last {
            let mut encoder = Encoder::default();
            let mut cursor =
                rows.query(params![block << BLOCK_SHIFT, (block + 1) << BLOCK_SHIFT])?;
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
                encoder.row(row.get(0)?, row.get(1)?, row.get(2)?, &pairs);
            }
            built.push((block, encoder));
        }
    }
    let count = built.len() as i64;
    let transaction = connection.unchecked_transaction()?;
    {
        let mut insert_block = transaction.prepare_cached(
            "INSERT OR REPLACE INTO facet_blocks (block, min_ts, max_ts, rows, data)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut insert_bloom = transaction.prepare_cached(
            "INSERT OR REPLACE INTO attribute_blooms (block, bloom) VALUES (?1, ?2)",
        )?;
        for (block, encoder) in built {
            let (min_ts, max_ts, rows) = (encoder.min_ts, encoder.max_ts, encoder.rows);
            let (data, bloom) = encoder.finish();
            insert_block.execute(params![block, min_ts, max_ts, rows, data])?;
            insert_bloom.execute(params![block, bloom])?;
        }
    }
    transaction.commit()?;
    backlog.store(after(last), Ordering::Relaxed);
    Ok(count)
}

/// Bit positions of an attribute key's presence and of a (key, lowercased
/// value) pair in a block's Bloom filter.
fn key_positions(key_id: i64) -> [usize; 2] {
    hash_positions(u64::from_le_bytes(key_id.to_le_bytes()) ^ 0x5bd1_e995)
}

fn pair_positions(key_id: i64, lowered_value: &str) -> [usize; 2] {
    // FNV-1a over the value, mixed with the key.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ (key_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for byte in lowered_value.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    hash_positions(hash)
}

fn hash_positions(hash: u64) -> [usize; 2] {
    let hash = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    [(hash >> 50) as usize, ((hash >> 36) & 0x3FFF) as usize]
}

fn set_bits(bloom: &mut [u8], positions: [usize; 2]) {
    for position in positions {
        bloom[position >> 3] |= 1 << (position & 7);
    }
}

fn has_bits(bloom: &[u8], positions: [usize; 2]) -> bool {
    bloom.len() == BLOOM_BYTES
        && positions
            .iter()
            .all(|&position| bloom[position >> 3] & (1 << (position & 7)) != 0)
}

/// One block's rows, being encoded.
#[derive(Default)]
struct Encoder {
    rows: i64,
    min_ts: Micros,
    max_ts: Micros,
    last_ts: Micros,
    body: Vec<u8>,
    dictionary: Vec<(i64, String)>,
    index: HashMap<(i64, String), u32>,
    bloom: Vec<u8>,
}

impl Encoder {
    fn row(&mut self, ts: Micros, level: u8, service_id: i64, pairs: &[(i64, String)]) {
        if self.rows == 0 {
            self.min_ts = ts;
            self.max_ts = ts;
            self.bloom = vec![0; BLOOM_BYTES];
        }
        self.rows += 1;
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        put_signed(&mut self.body, ts - self.last_ts);
        self.last_ts = ts;
        self.body.push(level);
        put_varint(&mut self.body, service_id as u64);
        put_varint(&mut self.body, pairs.len() as u64);
        for (key_id, value) in pairs {
            let next = self.dictionary.len() as u32;
            let at = *self
                .index
                .entry((*key_id, value.clone()))
                .or_insert_with(|| {
                    self.dictionary.push((*key_id, value.clone()));
                    next
                });
            if at == next {
                set_bits(&mut self.bloom, key_positions(*key_id));
                set_bits(
                    &mut self.bloom,
                    pair_positions(*key_id, &crate::domain::query::lowercase(value)),
                );
            }
            put_varint(&mut self.body, u64::from(at));
        }
    }

    /// The blob (format, dictionary, rows) and the Bloom filter.
    fn finish(self) -> (Vec<u8>, Vec<u8>) {
        let mut data = Vec::with_capacity(self.body.len() + self.dictionary.len() * 24 + 16);
        data.push(FORMAT);
        put_varint(&mut data, self.rows as u64);
        put_varint(&mut data, self.dictionary.len() as u64);
        for (key_id, value) in &self.dictionary {
            put_varint(&mut data, *key_id as u64);
            put_varint(&mut data, value.len() as u64);
            data.extend_from_slice(value.as_bytes());
        }
        data.extend_from_slice(&self.body);
        let bloom = if self.bloom.is_empty() {
            vec![0; BLOOM_BYTES]
        } else {
            self.bloom
        };
        (data, bloom)
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_signed(out: &mut Vec<u8>, value: i64) {
    put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Reads a block's blob.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let raw = self.varint()?;
        Some((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let bytes = self.bytes.get(self.at..self.at + len)?;
        self.at += len;
        Some(bytes)
    }
}

/// A block's dictionary, decoded; its rows are read as they are used.
/// Values stay bytes: they are UTF-8 (the encoder wrote `&str`s), checked
/// only where a value is tested or listed.
struct Block<'a> {
    dictionary: Vec<(i64, &'a [u8])>,
    rows: usize,
    body: &'a [u8],
}

/// One log of a block.
struct Row<'b> {
    ts: Micros,
    level: u8,
    service: i64,
    /// Dictionary positions of its attributes.
    pairs: &'b [u32],
}

impl<'a> Block<'a> {
    fn decode(bytes: &'a [u8]) -> Option<Block<'a>> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.byte()? != FORMAT {
            return None;
        }
        let rows = reader.varint()? as usize;
        let entries = reader.varint()? as usize;
        let mut dictionary = Vec::with_capacity(entries.min(1 << 16));
        for _ in 0..entries {
            let key = reader.varint()? as i64;
            let len = reader.varint()? as usize;
            dictionary.push((key, reader.bytes(len)?));
        }
        Some(Block {
            dictionary,
            rows,
            body: &bytes[reader.at..],
        })
    }

    /// Calls `each` with every row; `None` when the blob is damaged.
    fn for_each_row(&self, mut each: impl FnMut(&Row)) -> Option<()> {
        let mut reader = Reader {
            bytes: self.body,
            at: 0,
        };
        let mut pairs: Vec<u32> = Vec::with_capacity(16);
        let mut ts = 0;
        for _ in 0..self.rows {
            ts += reader.signed()?;
            let level = reader.byte()?;
            let service = reader.varint()? as i64;
            let count = reader.varint()? as usize;
            pairs.clear();
            for _ in 0..count {
                let at = reader.varint()? as u32;
                if at as usize >= self.dictionary.len() {
                    return None;
                }
                pairs.push(at);
            }
            each(&Row {
                ts,
                level,
                service,
                pairs: &pairs,
            });
        }
        Some(())
    }
}

// ---- reading -----------------------------------------------------------------

/// A filter the blocks can answer: time, levels, services and attributes.
/// Built once per query; attribute tests are decided once per dictionary
/// entry of each block, not once per log.
struct BlockFilter {
    from: Micros,
    to: Micros,
    levels: Option<LevelSet>,
    /// Services allowed by the `service` parameter (`None`: any).
    services: Option<Vec<bool>>,
    expr: Compiled,
}

/// `Expr` with services decided per service id and attribute tests by key
/// id (an attribute key never stored cannot match).
enum Compiled {
    All(Vec<Compiled>),
    Any(Vec<Compiled>),
    Not(Box<Compiled>),
    Levels(LevelSet),
    /// Allowed service ids.
    Services(Vec<bool>),
    /// The test, on the key's value (`None`: the key was never stored).
    Attribute(Option<i64>, AttributeTest),
}

enum AttributeTest {
    Present,
    Matches(Matcher),
    Compare(CompareOp, Number),
}

impl AttributeTest {
    fn holds(&self, value: &str) -> bool {
        match self {
            AttributeTest::Present => true,
            AttributeTest::Matches(matcher) => matcher.matches(value),
            AttributeTest::Compare(op, number) => {
                Number::parse(value).is_some_and(|v| op.holds(v.value, number.value))
            }
        }
    }
}

impl Compiled {
    fn of(
        expr: &Expr,
        service_names: &HashMap<i64, String>,
        max_service: usize,
        key_ids: &HashMap<String, i64>,
    ) -> Option<Compiled> {
        Some(match expr {
            Expr::And(children) => Compiled::All(
                children
                    .iter()
                    .map(|c| Compiled::of(c, service_names, max_service, key_ids))
                    .collect::<Option<_>>()?,
            ),
            Expr::Or(children) => Compiled::Any(
                children
                    .iter()
                    .map(|c| Compiled::of(c, service_names, max_service, key_ids))
                    .collect::<Option<_>>()?,
            ),
            Expr::Not(inner) => Compiled::Not(Box::new(Compiled::of(
                inner,
                service_names,
                max_service,
                key_ids,
            )?)),
            Expr::Is(Predicate::Levels(levels)) => Compiled::Levels(*levels),
            Expr::Is(Predicate::Text {
                field: TextField::Service,
                matcher,
            }) => {
                let mut allowed = vec![false; max_service + 1];
                for (id, name) in service_names {
                    if matcher.matches(name) {
                        allowed[*id as usize] = true;
                    }
                }
                Compiled::Services(allowed)
            }
            Expr::Is(Predicate::Text {
                field: TextField::Attribute(key),
                matcher,
            }) => Compiled::Attribute(
                key_ids.get(key).copied(),
                AttributeTest::Matches(matcher.clone()),
            ),
            Expr::Is(Predicate::Present { key }) => {
                Compiled::Attribute(key_ids.get(key).copied(), AttributeTest::Present)
            }
            Expr::Is(Predicate::Compare { key, op, number }) => Compiled::Attribute(
                key_ids.get(key).copied(),
                AttributeTest::Compare(*op, number.clone()),
            ),
            // Messages and ids are not in the blocks.
            Expr::Is(Predicate::Text { .. }) => return None,
        })
    }

    /// Decides every attribute test on a block's dictionary: for each
    /// test, in tree order, which entries satisfy it.
    fn decide(&self, block: &Block, out: &mut Vec<Vec<bool>>) {
        match self {
            Compiled::All(children) | Compiled::Any(children) => {
                children.iter().for_each(|c| c.decide(block, out))
            }
            Compiled::Not(inner) => inner.decide(block, out),
            Compiled::Attribute(key, test) => out.push(
                block
                    .dictionary
                    .iter()
                    .map(|(entry_key, value)| {
                        Some(*entry_key) == *key
                            && std::str::from_utf8(value).is_ok_and(|value| test.holds(value))
                    })
                    .collect(),
            ),
            Compiled::Levels(_) | Compiled::Services(_) => {}
        }
    }

    /// Whether `row` matches; `decided` from [`Compiled::decide`], consumed
    /// in the same order through `next`.
    fn matches(&self, row: &Row, decided: &[Vec<bool>], next: &mut usize) -> bool {
        match self {
            Compiled::All(children) => {
                // Every child consumes its tests, matched or not.
                let mut all = true;
                for child in children {
                    all &= child.matches(row, decided, next);
                }
                all
            }
            Compiled::Any(children) => {
                let mut any = false;
                for child in children {
                    any |= child.matches(row, decided, next);
                }
                any
            }
            Compiled::Not(inner) => !inner.matches(row, decided, next),
            Compiled::Levels(levels) => {
                Level::from_code(row.level).is_some_and(|l| levels.contains(l))
            }
            Compiled::Services(allowed) => {
                allowed.get(row.service as usize).copied().unwrap_or(false)
            }
            Compiled::Attribute(..) => {
                let table = &decided[*next];
                *next += 1;
                row.pairs.iter().any(|&at| table[at as usize])
            }
        }
    }
}

/// Everything a block scan needs from the store, read once per query.
pub struct Dictionaries {
    pub service_names: HashMap<i64, String>,
    pub key_names: HashMap<i64, String>,
}

pub fn dictionaries(connection: &Connection) -> Result<Dictionaries, StoreError> {
    let read = |sql: &str| -> Result<HashMap<i64, String>, StoreError> {
        let mut statement = connection.prepare_cached(sql).map_err(sql_error)?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)
    };
    Ok(Dictionaries {
        service_names: read("SELECT id, name FROM services")?,
        key_names: read("SELECT id, name FROM attribute_keys")?,
    })
}

impl BlockFilter {
    /// `None` when the filter tests what blocks do not hold (the message or
    /// the id): the caller reads rows instead.
    fn of(filter: &LogFilter, dictionaries: &Dictionaries) -> Option<BlockFilter> {
        if filter.text.is_some() {
            return None;
        }
        let max_service = dictionaries
            .service_names
            .keys()
            .copied()
            .max()
            .unwrap_or(0)
            .max(0) as usize;
        let key_ids: HashMap<String, i64> = dictionaries
            .key_names
            .iter()
            .map(|(id, name)| (name.clone(), *id))
            .collect();
        let services = filter.service.as_ref().map(|needle| {
            let mut allowed = vec![false; max_service + 1];
            for (id, name) in &dictionaries.service_names {
                if crate::domain::query::contains_ignore_case(name, needle) {
                    allowed[*id as usize] = true;
                }
            }
            allowed
        });
        let (from, to) = filter.bounds();
        Some(BlockFilter {
            from,
            to,
            levels: filter.levels,
            services,
            expr: Compiled::of(
                &filter.expr,
                &dictionaries.service_names,
                max_service,
                &key_ids,
            )?,
        })
    }

    fn row_matches(&self, row: &Row, decided: &[Vec<bool>]) -> bool {
        row.ts >= self.from
            && row.ts < self.to
            && self.levels.is_none_or(|levels| {
                Level::from_code(row.level).is_some_and(|l| levels.contains(l))
            })
            && self
                .services
                .as_ref()
                .is_none_or(|allowed| allowed.get(row.service as usize).copied().unwrap_or(false))
            && self.expr.matches(row, decided, &mut 0)
    }
}

/// Counts gathered from blocks (and the tail's rows), before scaling.
#[derive(Default)]
pub struct Counts {
    pub total: u64,
    pub levels: [u64; 5],
    pub services: HashMap<i64, u64>,
    /// Logs having each attribute key (by key name).
    pub keys: HashMap<String, u64>,
    /// Values of the attributes asked for (all when `None` was asked).
    pub values: HashMap<String, Tally>,
}

impl Counts {
    /// Adds one log read as a row (the tail).
    pub fn add_row(
        &mut self,
        level: u8,
        service_id: i64,
        attributes: Option<&str>,
        wanted: &Wanted,
    ) {
        self.total += 1;
        if let Some(slot) = self.levels.get_mut(level as usize) {
            *slot += 1;
        }
        *self.services.entry(service_id).or_default() += 1;
        if let Some(json) = attributes {
            for_each_attribute(json, |key, value| {
                match self.keys.get_mut(key.as_ref()) {
                    Some(n) => *n += 1,
                    None => {
                        self.keys.insert(key.to_string(), 1);
                    }
                }
                if wanted.wants(&key) {
                    self.values
                        .entry(key.into_owned())
                        .or_default()
                        .add(&value, 1);
                }
            });
        }
    }
}

impl Counts {
    /// Scales counts from a sample of `fraction` of the logs to the whole.
    pub fn scale(&mut self, fraction: f64) {
        if fraction >= 1.0 {
            return;
        }
        let factor = 1.0 / fraction;
        let scaled = |n: &mut u64| *n = (*n as f64 * factor).round() as u64;
        scaled(&mut self.total);
        self.levels.iter_mut().for_each(scaled);
        self.services.values_mut().for_each(scaled);
        self.keys.values_mut().for_each(scaled);
        self.values
            .values_mut()
            .for_each(|tally| tally.scale(factor));
    }
}

/// Which attributes' values to tally.
pub enum Wanted {
    /// Only keys (for `/api/fields`).
    Nothing,
    Every,
    These(Vec<String>),
}

impl Wanted {
    fn wants(&self, key: &str) -> bool {
        match self {
            Wanted::Nothing => false,
            Wanted::Every => true,
            Wanted::These(keys) => keys.iter().any(|k| k == key),
        }
    }
}

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
    let oldest: Option<Micros> = connection
        .query_row(
            "SELECT ts FROM logs INDEXED BY logs_page ORDER BY ts LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_error)?;
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

/// Facets from counts (scaled already when they came from a sample).
pub fn facets_from(
    query: &FacetQuery,
    counts: Counts,
    approximate: bool,
    service_names: &HashMap<i64, String>,
) -> Facets {
    let mut keys: Vec<KeyCount> = counts
        .keys
        .iter()
        .map(|(key, count)| KeyCount {
            key: key.clone(),
            count: *count,
        })
        .collect();
    facets::sort_key_counts(&mut keys);
    let fields = facets::chosen_fields(query, &keys);
    let mut values = counts.values;
    let finished = fields
        .into_iter()
        .map(|field| {
            let mut tally = Tally::default();
            match &field {
                FieldName::Level => {
                    for (code, n) in counts.levels.iter().enumerate() {
                        if let (Some(level), true) = (Level::from_code(code as u8), *n > 0) {
                            tally.add(level.as_str(), *n);
                        }
                    }
                }
                FieldName::Text(TextField::Service) => {
                    for (id, n) in &counts.services {
                        if let Some(name) = service_names.get(id) {
                            tally.add(name, *n);
                        }
                    }
                }
                FieldName::Text(TextField::Attribute(key)) => {
                    if let Some(found) = values.remove(key) {
                        tally = found;
                    }
                }
                FieldName::Text(_) => {}
            }
            tally.finish(field, query.limit)
        })
        .collect();
    Facets {
        total: counts.total,
        approximate,
        fields: finished,
    }
}

/// Attribute keys from counts.
pub fn keys_from(counts: &Counts) -> Vec<KeyCount> {
    let mut keys: Vec<KeyCount> = counts
        .keys
        .iter()
        .map(|(key, count)| KeyCount {
            key: key.clone(),
            count: *count,
        })
        .collect();
    facets::sort_key_counts(&mut keys);
    keys
}

impl AttributeProbe {
    /// What a block's attribute filter must hold for a log to match every
    /// top-level attribute term of `expr` (a value, or only the key): `None`
    /// when there is no such term. For searches of rare values (a trace id).
    pub fn of(connection: &Connection, expr: &Expr) -> Result<Option<AttributeProbe>, StoreError> {
        // Blocks built before the dictionary is read: their keys are in it.
        let last_built: Option<i64> = connection
            .query_row("SELECT MAX(block) FROM attribute_blooms", [], |row| {
                row.get(0)
            })
            .map_err(sql_error)?;
        let dictionaries = dictionaries(connection)?;
        let key_ids: HashMap<&str, i64> = dictionaries
            .key_names
            .iter()
            .map(|(id, name)| (name.as_str(), *id))
            .collect();
        let mut wanted: Vec<[usize; 2]> = Vec::new();
        for term in expr.conjuncts() {
            let (key, value) = match term {
                Expr::Is(Predicate::Text {
                    field: TextField::Attribute(key),
                    matcher: Matcher::Equals(pattern),
                }) => (key, pattern.as_literal()),
                Expr::Is(Predicate::Present { key }) | Expr::Is(Predicate::Compare { key, .. }) => {
                    (key, None)
                }
                Expr::Is(Predicate::Text {
                    field: TextField::Attribute(key),
                    ..
                }) => (key, None),
                _ => continue,
            };
            let Some(&key_id) = key_ids.get(key.as_str()) else {
                // Never stored: only the tail could hold it.
                wanted.push([usize::MAX; 2]);
                continue;
            };
            wanted.push(match value {
                Some(literal) => pair_positions(key_id, literal),
                None => key_positions(key_id),
            });
        }
        if wanted.is_empty() {
            return Ok(None);
        }
        Ok(Some(AttributeProbe {
            wanted,
            tail_from: last_built.map_or(0, |block| (block + 1) << BLOCK_SHIFT),
        }))
    }

    /// Whether the filters skip most blocks: of the newest 64 built blocks, at
    /// most a quarter may hold a match.
    pub fn selective(&self, connection: &Connection) -> Result<bool, StoreError> {
        let mut statement = connection
            .prepare_cached("SELECT bloom FROM attribute_blooms ORDER BY block DESC LIMIT 64")
            .map_err(sql_error)?;
        let blooms = statement
            .query_map([], |row| row.get::<_, Vec<u8>>(0))
            .map_err(sql_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_error)?;
        let holding = blooms.iter().filter(|bloom| self.holds(bloom)).count();
        Ok(!blooms.is_empty() && holding * 4 <= blooms.len())
    }

    fn holds(&self, bloom: &[u8]) -> bool {
        self.wanted
            .iter()
            .all(|positions| positions[0] != usize::MAX && has_bits(bloom, *positions))
    }
}

/// The bits a block's attribute filter must hold for a search.
pub struct AttributeProbe {
    wanted: Vec<[usize; 2]>,
    /// Blocks from here on have no filter yet: always read.
    pub tail_from: i64,
}

impl AttributeProbe {
    /// Whether `block` may hold a match (a block without a filter may).
    pub fn may_hold(&self, connection: &Connection, block: i64) -> Result<bool, StoreError> {
        if block << BLOCK_SHIFT >= self.tail_from {
            return Ok(true);
        }
        let mut statement = connection
            .prepare_cached("SELECT bloom FROM attribute_blooms WHERE block = ?1")
            .map_err(sql_error)?;
        let bloom: Option<Vec<u8>> = statement
            .query_row([block], |row| row.get(0))
            .optional()
            .map_err(sql_error)?;
        Ok(bloom.is_none_or(|bloom| self.holds(&bloom)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LogBatch, LogRecord};
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

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

    #[test]
    fn blocks_round_trip() {
        let mut encoder = Encoder::default();
        encoder.row(100, 3, 7, &[(1, "eu".into()), (2, "503".into())]);
        encoder.row(90, 1, 7, &[(1, "eu".into())]);
        encoder.row(5_000_000, 4, 300, &[]);
        let (min, max) = (encoder.min_ts, encoder.max_ts);
        let (data, bloom) = encoder.finish();
        assert_eq!((min, max), (90, 5_000_000));
        let block = Block::decode(&data).unwrap();
        assert_eq!(block.dictionary, [(1, &b"eu"[..]), (2, &b"503"[..])]);
        let mut rows = Vec::new();
        block
            .for_each_row(|row| rows.push((row.ts, row.level, row.service, row.pairs.to_vec())))
            .unwrap();
        assert_eq!(
            rows,
            [
                (100, 3, 7, vec![0, 1]),
                (90, 1, 7, vec![0]),
                (5_000_000, 4, 300, vec![])
            ]
        );
        assert!(has_bits(&bloom, pair_positions(1, "eu")));
        assert!(has_bits(&bloom, key_positions(2)));
        assert!(!has_bits(&bloom, pair_positions(1, "us-east-1")));
        let cut = Block::decode(&data[..data.len() - 1]).unwrap();
        assert!(cut.for_each_row(|_| {}).is_none(), "cut");
    }
}
