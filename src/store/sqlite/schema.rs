//! The schema and its migrations, version by version (`PRAGMA user_version`).

use super::connection::sql_error;
use super::{
    DAY, FIVE_MINUTES, HOUR, MINUTE, ROLLUPS, SCHEMA_VERSION, TRACE_BUCKET_SHIFT, alert_records,
    facet_blocks,
};
use crate::domain::time::Micros;
use crate::store::StoreError;
use crate::store::search_blocks::{self};
use rusqlite::Connection;

pub(super) fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql_error)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Unavailable(format!(
            "database schema version {version} is newer than this binary understands ({SCHEMA_VERSION}); upgrade oglogstream"
        )));
    }
    if version < 1 {
        connection
            .execute_batch(
                "BEGIN;
                 CREATE TABLE services (
                     id   INTEGER PRIMARY KEY,
                     name TEXT NOT NULL UNIQUE
                 );
                 CREATE TABLE logs (
                     seq        INTEGER PRIMARY KEY,
                     id         TEXT NOT NULL,
                     ts         INTEGER NOT NULL,
                     level      INTEGER NOT NULL,
                     service_id INTEGER NOT NULL,
                     message    TEXT NOT NULL,
                     attributes TEXT
                 );
                 CREATE INDEX logs_by_time ON logs (ts);
                 CREATE INDEX logs_by_level ON logs (level, ts);
                 CREATE INDEX logs_by_service ON logs (service_id, ts);
                 CREATE TABLE counts_minute (
                     bucket     INTEGER NOT NULL,
                     service_id INTEGER NOT NULL,
                     level      INTEGER NOT NULL,
                     n          INTEGER NOT NULL,
                     PRIMARY KEY (bucket, service_id, level)
                 ) WITHOUT ROWID;
                 CREATE TABLE counts_hour (
                     bucket     INTEGER NOT NULL,
                     service_id INTEGER NOT NULL,
                     level      INTEGER NOT NULL,
                     n          INTEGER NOT NULL,
                     PRIMARY KEY (bucket, service_id, level)
                 ) WITHOUT ROWID;
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .map_err(sql_error)?;
    }
    if version < 2 {
        if version == 1 {
            tracing::info!(
                "migrating the store to schema 2: building the logs_page index and rollups once"
            );
        }
        // Rollup keys lead with (bucket, level), so a histogram sums them in
        // key order with no sort; schema 1 had (bucket, service_id, level).
        let rollup = |table: &str| {
            format!(
                "CREATE TABLE {table} (
                     bucket     INTEGER NOT NULL,
                     level      INTEGER NOT NULL,
                     service_id INTEGER NOT NULL,
                     n          INTEGER NOT NULL,
                     PRIMARY KEY (bucket, level, service_id)
                 ) WITHOUT ROWID;"
            )
        };
        let copy = |to: &str, grain: Micros, from: &str| {
            format!(
                "INSERT INTO {to} (bucket, level, service_id, n)
                     SELECT bucket - bucket % {grain}, level, service_id, SUM(n)
                     FROM {from} GROUP BY 1, 2, 3;"
            )
        };
        // The index build sorts every log: with temp_store = MEMORY it held
        // 600 MB for a 10M-log store; temporary files bound it by cache_size.
        connection
            .execute_batch(&format!(
                "PRAGMA temp_store = FILE;
                 BEGIN;
                 CREATE INDEX IF NOT EXISTS logs_page ON logs (ts, seq, level, service_id);
                 DROP INDEX IF EXISTS logs_by_time;
                 DROP INDEX IF EXISTS logs_by_level;
                 DROP INDEX IF EXISTS logs_by_service;
                 ALTER TABLE counts_minute RENAME TO counts_minute_v1;
                 ALTER TABLE counts_hour RENAME TO counts_hour_v1;
                 {} {} {} {}
                 {} {} {} {}
                 DROP TABLE counts_minute_v1;
                 DROP TABLE counts_hour_v1;
                 PRAGMA user_version = 2;
                 COMMIT;
                 PRAGMA temp_store = MEMORY;",
                rollup("counts_minute"),
                rollup("counts_5min"),
                rollup("counts_hour"),
                rollup("counts_day"),
                copy("counts_minute", MINUTE, "counts_minute_v1"),
                copy("counts_5min", FIVE_MINUTES, "counts_minute_v1"),
                copy("counts_hour", HOUR, "counts_hour_v1"),
                copy("counts_day", DAY, "counts_hour_v1"),
            ))
            .map_err(sql_error)?;
    }
    if version < 3 {
        // Filled by `OpenBlock::load` when the store opens (search_blocks.rs).
        connection
            .execute_batch(
                "BEGIN;
                 CREATE TABLE message_blocks (
                     block  INTEGER PRIMARY KEY,
                     min_ts INTEGER NOT NULL,
                     max_ts INTEGER NOT NULL,
                     bloom  BLOB NOT NULL
                 );
                 CREATE INDEX message_blocks_time ON message_blocks (max_ts, min_ts);
                 PRAGMA user_version = 3;
                 COMMIT;",
            )
            .map_err(sql_error)?;
    }
    if version < 4 {
        unique_page_index(connection)?;
    }
    if version < 5 {
        // Alerting's rules, state and notifications (alert_records.rs).
        connection
            .execute_batch(&format!(
                "BEGIN; {} PRAGMA user_version = 5; COMMIT;",
                alert_records::CREATE_TABLE
            ))
            .map_err(sql_error)?;
    }
    if version < 6 {
        // Filled by the facet block builder after the store opens.
        connection
            .execute_batch("BEGIN;")
            .and_then(|()| facet_blocks::create_tables(connection))
            .and_then(|()| connection.execute_batch("PRAGMA user_version = 6; COMMIT;"))
            .map_err(sql_error)?;
    }
    if version < 7 {
        // A store whose version was set back by hand (tests do, to replay
        // an older migration) may hold schema 7's tables already: schema 7
        // alters tables, so it cannot run twice.
        let has_tenants: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tenants'",
                [],
                |row| row.get(0),
            )
            .map_err(sql_error)?;
        if has_tenants > 0 {
            connection
                .execute_batch("PRAGMA user_version = 7;")
                .map_err(sql_error)?;
        } else {
            tenants_and_traces(connection, version)?;
        }
    }
    if version < 8 {
        trace_index_by_insert_order(connection, version)?;
    }
    Ok(())
}

/// Schema 8: the trace id index leads with the log's insert bucket,
/// `(seq >> TRACE_BUCKET_SHIFT, trace_id)`, instead of the trace id alone.
///
/// Trace ids are random, so schema 7's `(trace_id)` index took every insert
/// to a random leaf: each 5000-log transaction dirtied thousands of pages,
/// the WAL grew to 1.4 GB for a 330 MB database, and bulk ingest fell from
/// ~270k to ~85k logs/s (163k with the index dropped, same binary). Under a
/// bucket of 65,536 consecutive logs the inserts stay in the bucket's few
/// megabytes of index; a lookup probes every bucket instead of one seek
/// (`trace_buckets` in `expr.rs`): 153 probes, about 0.5 ms, at 10M logs.
fn trace_index_by_insert_order(connection: &Connection, version: i64) -> Result<(), StoreError> {
    if version > 0 {
        tracing::info!("migrating the store to schema 8: rebuilding the trace id index once");
    }
    connection
        .execute_batch(&format!(
            "PRAGMA temp_store = FILE;
             BEGIN;
             DROP INDEX IF EXISTS logs_trace;
             CREATE INDEX logs_trace ON logs ((seq >> {TRACE_BUCKET_SHIFT}), trace_id)
                 WHERE trace_id IS NOT NULL;
             PRAGMA user_version = 8;
             COMMIT;"
        ))
        .or_else(|error| connection.execute_batch("ROLLBACK;").and(Err(error)))
        .map_err(sql_error)?;
    connection
        .execute_batch("PRAGMA temp_store = MEMORY;")
        .map_err(sql_error)
}

/// The ids shippers sent as attributes before schema 7, most common first,
/// as `json_extract` paths: moved into the `trace_id`/`span_id` columns.
const TRACE_ID_PATHS: [&str; 3] = ["$.trace_id", "$.traceId", "$.\"trace.id\""];
const SPAN_ID_PATHS: [&str; 3] = ["$.span_id", "$.spanId", "$.\"span.id\""];

/// Schema 7: tenants and trace ids.
/// - `tenants`: a dictionary like `services`; id 0 is `default`, the tenant
///   of every log stored before (the column's default).
/// - `logs.tenant_id` leads the page index, `(tenant_id, ts, id, level,
///   service_id)`, and the rollups' keys, `(tenant_id, bucket, level,
///   service_id)`: one tenant's pages and counts are a contiguous range, so
///   its reads cost what they would in a store of its own.
/// - `logs.trace_id`, `logs.span_id` (indexed from schema 8 on): a trace's
///   logs are found whatever the range. Ids shippers sent as attributes move
///   into them.
/// - The facet blocks are dropped: rebuilt in the background, now with
///   each log's tenant (answers read the rows meanwhile).
fn tenants_and_traces(connection: &Connection, version: i64) -> Result<(), StoreError> {
    if version > 0 {
        tracing::info!(
            "migrating the store to schema 7 (tenants, trace ids): rebuilding the page index and rollups once"
        );
    }
    let mut statements = String::from(
        "PRAGMA temp_store = FILE;
         BEGIN;
         CREATE TABLE tenants (
             id   INTEGER PRIMARY KEY,
             name TEXT NOT NULL UNIQUE
         );
         INSERT INTO tenants (id, name) VALUES (0, 'default');
         ALTER TABLE logs ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE logs ADD COLUMN trace_id TEXT;
         ALTER TABLE logs ADD COLUMN span_id TEXT;",
    );
    for (column, paths) in [("trace_id", TRACE_ID_PATHS), ("span_id", SPAN_ID_PATHS)] {
        for path in paths {
            // Hex ids lowercased, as ingest stores them; the attribute goes.
            statements.push_str(&format!(
                "UPDATE logs SET
                     {column} = CASE WHEN json_extract(attributes, '{path}') GLOB '*[^0-9A-Fa-f]*'
                         THEN json_extract(attributes, '{path}')
                         ELSE lower(json_extract(attributes, '{path}')) END,
                     attributes = nullif(json_remove(attributes, '{path}'), '{{}}')
                 WHERE {column} IS NULL AND attributes IS NOT NULL
                     AND json_type(attributes, '{path}') = 'text'
                     AND length(json_extract(attributes, '{path}')) BETWEEN 1 AND 128;"
            ));
        }
    }
    statements.push_str(
        "DROP INDEX logs_page;
         CREATE UNIQUE INDEX logs_page ON logs (tenant_id, ts, id, level, service_id);",
    );
    for (_, table) in ROLLUPS {
        statements.push_str(&format!(
            "ALTER TABLE {table} RENAME TO {table}_v6;
             CREATE TABLE {table} (
                 tenant_id  INTEGER NOT NULL,
                 bucket     INTEGER NOT NULL,
                 level      INTEGER NOT NULL,
                 service_id INTEGER NOT NULL,
                 n          INTEGER NOT NULL,
                 PRIMARY KEY (tenant_id, bucket, level, service_id)
             ) WITHOUT ROWID;
             INSERT INTO {table} (tenant_id, bucket, level, service_id, n)
                 SELECT 0, bucket, level, service_id, n FROM {table}_v6;
             DROP TABLE {table}_v6;"
        ));
    }
    statements.push_str(
        "DROP TABLE IF EXISTS facet_blocks;
         DROP TABLE IF EXISTS attribute_blooms;",
    );
    let outcome = connection
        .execute_batch(&statements)
        .and_then(|()| facet_blocks::create_tables(connection))
        .and_then(|()| connection.execute_batch("PRAGMA user_version = 7; COMMIT;"));
    let _ = connection.execute_batch("PRAGMA temp_store = MEMORY;");
    if let Err(error) = outcome {
        let _ = connection.execute_batch("ROLLBACK;");
        return Err(sql_error(error));
    }
    Ok(())
}

/// Schema 4: the page index becomes unique and ordered as pages are,
/// `(ts, id, level, service_id)`. One index gives page order by timestamp
/// then id, keyset seeks without reading rows, and idempotent inserts: a
/// log stored again (a batch redelivered after a crash) conflicts and is
/// skipped. Measured against a second, unique index on `id`: that cost the
/// writer 0.5 µs more per log (2.3 -> 2.8 µs CPU, 2M corpus logs). Lookups
/// by id use the id range of each search block instead (schema 4 adds it).
/// A store that already holds duplicates keeps the first of each and takes
/// the others out of the rollups, so counts still match rows.
pub(super) fn unique_page_index(connection: &Connection) -> Result<(), StoreError> {
    tracing::info!("migrating the store to schema 4: rebuilding the page index once");
    // The index build sorts every log: temporary files, not memory.
    connection
        .execute_batch("PRAGMA temp_store = FILE; BEGIN;")
        .map_err(sql_error)?;
    let outcome = (|| {
        let unique = "CREATE UNIQUE INDEX logs_page ON logs (ts, id, level, service_id)";
        connection
            .execute_batch("DROP INDEX IF EXISTS logs_page")
            .map_err(sql_error)?;
        match connection.execute_batch(unique) {
            Ok(()) => {}
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) =>
            {
                drop_duplicates(connection)?;
                connection.execute_batch(unique).map_err(sql_error)?;
            }
            Err(error) => return Err(sql_error(error)),
        }
        search_blocks::add_id_ranges(connection).map_err(sql_error)
    })();
    let finish = match outcome {
        Ok(()) => "PRAGMA user_version = 4; COMMIT; PRAGMA temp_store = MEMORY;",
        Err(_) => "ROLLBACK; PRAGMA temp_store = MEMORY;",
    };
    connection.execute_batch(finish).map_err(sql_error)?;
    outcome
}

pub(super) fn drop_duplicates(connection: &Connection) -> Result<(), StoreError> {
    connection
        .execute_batch("CREATE INDEX logs_duplicates ON logs (id, seq)")
        .map_err(sql_error)?;
    let duplicates: Vec<(i64, Micros, u8, i64)> = {
        let mut statement = connection
            .prepare(
                "SELECT l.seq, l.ts, l.level, l.service_id FROM logs l
                 WHERE EXISTS (SELECT 1 FROM logs o WHERE o.id = l.id AND o.seq < l.seq
                     AND o.ts = l.ts AND o.level = l.level AND o.service_id = l.service_id)",
            )
            .map_err(sql_error)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(sql_error)?;
        rows.collect::<Result<_, _>>().map_err(sql_error)?
    };
    tracing::warn!(
        duplicates = duplicates.len(),
        "removing logs stored twice (redelivered) before schema 4"
    );
    for (seq, ts, level, service_id) in duplicates {
        connection
            .execute("DELETE FROM logs WHERE seq = ?1", [seq])
            .map_err(sql_error)?;
        for (grain, table) in ROLLUPS {
            connection
                .execute(
                    &format!(
                        "UPDATE {table} SET n = n - 1 WHERE bucket = ?1 AND level = ?2 AND service_id = ?3"
                    ),
                    rusqlite::params![ts - ts.rem_euclid(grain), level, service_id],
                )
                .map_err(sql_error)?;
        }
    }
    connection
        .execute_batch("DROP INDEX logs_duplicates")
        .map_err(sql_error)
}
