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
//!
//! Files: `builder.rs` (the thread that builds blocks), `codec.rs` (a
//! block's blob, written and read), `bloom.rs` (the Bloom filter's bits),
//! `filter.rs` (a `LogFilter` as block tests), `scan.rs` (counting matching
//! logs of the built blocks), `counts.rs` (what a scan counts, and facets
//! from it), `probe.rs` (which blocks may hold an attribute search's match).

mod bloom;
mod builder;
mod codec;
mod counts;
mod filter;
mod probe;
mod scan;

pub use builder::{Builder, rebuild};
pub use codec::BLOCK_SHIFT;
pub use counts::{Counts, Wanted, facets_from, keys_from};
pub use filter::dictionaries;
pub use probe::AttributeProbe;
pub use scan::{oldest_of, scan};

use crate::domain::time::Micros;
use rusqlite::Connection;

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
