//! The ClickHouse schema, chosen per server version, and its migrations.
//!
//! Tables (in the DSN's database):
//! - `logs`: one row per log. Timestamps are `ts_us Int64` (microseconds
//!   since the epoch, UTC) on every version: filters stay exact to the
//!   microsecond and there is one code path, where `DateTime64(6)` would
//!   exist only from 20.1.
//!   - `PARTITION BY` the UTC day (`toYYYYMMDD`), so retention is `DROP
//!     PARTITION`, a time filter skips whole days, and part metadata
//!     (`system.parts`) tells which days hold how many logs without reading
//!     any data (the store sizes its page windows from it).
//!   - `ORDER BY (ts_us, id)` since version 3: every dashboard query is a
//!     time range read from one edge (newest first, usually), so a time
//!     window must be a contiguous run of granules; pages step through such
//!     windows (`windows.rs`) and read about what they return, and level,
//!     service and text filters run as `PREWHERE` inside the window. Counts
//!     by level and service come from the rollup, not from this key.
//!     Version 1 had `(level, service, ts_us, id)`, under which a time window
//!     touched a granule of every (level, service) run: a newest page read
//!     most of a day. Version 3 rebuilds such a table ([`Step::RebuildLogs`]).
//! - `counts_minute`: a `SummingMergeTree` of (minute, level, service) -> n,
//!   filled by the materialized view `counts_minute_mv` on every insert into
//!   `logs`. Stats and histograms read it for whole minutes and read `logs`
//!   only for the ragged edges of the range (see `sql.rs`).
//! - `schema_migrations`: the versions applied.
//!
//! What each server version gets (read from `SELECT version()` at start and
//! after every reconnect; a table keeps the types it was created with):
//!
//! | feature                         | server  | used for                                   |
//! |---------------------------------|---------|--------------------------------------------|
//! | MergeTree, SummingMergeTree, MV | all     | the layout above                           |
//! | `LowCardinality(String)`        | >= 20.1 | `service` in both tables (else `String`)   |
//! | column codecs                   | >= 20.1 | `Delta, ZSTD` on `ts_us`, `ZSTD` on text   |
//! |                                 | older   | the server's default block compression (LZ4) |
//! | `DateTime64`, TTL, skip indexes | -       | not used: see above; retention by partition |
//!
//! Skip indexes are left out on purpose: the text filter is a case-insensitive
//! substring (`positionCaseInsensitiveUTF8`), which bloom-filter indexes
//! cannot answer without changing its meaning.
//!
//! Every statement is idempotent (`IF NOT EXISTS`), so instances starting
//! together may run the same migration concurrently.

/// A server version as `SELECT version()` reports it, e.g. `18.16.1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let mut parts = text.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(ServerVersion { major, minor })
    }
}

/// The newer features this server has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    pub low_cardinality: bool,
    pub codecs: bool,
}

impl Features {
    pub fn of(version: ServerVersion) -> Features {
        let modern = version
            >= ServerVersion {
                major: 20,
                minor: 1,
            };
        Features {
            low_cardinality: modern,
            codecs: modern,
        }
    }
}

/// The newest version this binary knows. Version 2 is the attribute columns
/// (issue 12), numbered before this binary had them: a version this binary
/// does not know is neither applied nor recorded, so a later binary still
/// applies it (the runner applies every version not yet recorded, in order).
pub const LATEST: u32 = 3;

/// The sort key pages need: time first, so a time window is a contiguous run
/// of granules (see `windows.rs`); `id` breaks ties the way pages do.
pub const LOGS_ORDER_BY: &str = "ts_us, id";

/// One step of a migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Sql(String),
    /// Rebuilds `logs` with `ORDER BY (LOGS_ORDER_BY)` unless it has that key
    /// already: the store copies the rows (whatever columns the table has)
    /// into a new table and swaps it in, re-attaching the rollup's view.
    RebuildLogs,
}

/// The day partition of `logs`: retention drops whole days.
pub const LOGS_PARTITION_BY: &str = "toYYYYMMDD(toDateTime(intDiv(ts_us, 1000000), 'UTC'))";

/// The materialized view filling `counts_minute` from inserts into `logs`.
pub fn counts_minute_view(database: &str) -> String {
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.counts_minute_mv
        TO {database}.counts_minute AS
        SELECT toInt64(intDiv(ts_us, 60000000) * 60000000) AS minute, level, service, count() AS n
        FROM {database}.logs GROUP BY minute, level, service"
    )
}

/// The steps taking the schema to `version` from the one before, or `None`
/// for a version this binary does not know.
pub fn migration(version: u32, database: &str, features: Features) -> Option<Vec<Step>> {
    let statements = match version {
        1 => migration_1(database, features),
        3 => return Some(vec![Step::RebuildLogs]),
        _ => return None,
    };
    Some(statements.into_iter().map(Step::Sql).collect())
}

fn migration_1(database: &str, features: Features) -> Vec<String> {
    let service = if features.low_cardinality {
        "LowCardinality(String)"
    } else {
        "String"
    };
    let codec = |codec: &str| {
        if features.codecs {
            format!(" CODEC({codec})")
        } else {
            String::new()
        }
    };
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.logs (
                    ts_us Int64{ts},
                    id String{text},
                    level UInt8,
                    service {service},
                    message String{text},
                    attributes String{text}
                ) ENGINE = MergeTree
                PARTITION BY {LOGS_PARTITION_BY}
                ORDER BY (level, service, ts_us, id)",
            ts = codec("Delta, ZSTD(1)"),
            text = codec("ZSTD(1)"),
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.counts_minute (
                    minute Int64,
                    level UInt8,
                    service {service},
                    n UInt64
                ) ENGINE = SummingMergeTree(n)
                PARTITION BY toYYYYMM(toDateTime(intDiv(minute, 1000000), 'UTC'))
                ORDER BY (minute, level, service)"
        ),
        counts_minute_view(database),
    ]
}

pub fn create_database(database: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {database}")
}

pub fn create_migrations_table(database: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.schema_migrations (
            version UInt32,
            applied_at DateTime DEFAULT now()
        ) ENGINE = MergeTree ORDER BY version"
    )
}

pub fn applied_versions(database: &str) -> String {
    format!("SELECT DISTINCT version FROM {database}.schema_migrations")
}

/// The sort key `logs` has now, as `system.tables` writes it (`ts_us, id`).
pub fn logs_sorting_key(database: &str) -> String {
    format!("SELECT sorting_key FROM system.tables WHERE database = '{database}' AND name = 'logs'")
}

/// The statements of [`Step::RebuildLogs`], after `logs_sorting_key` said a
/// rebuild is needed. `partitions` are those `logs` holds: rows are copied
/// one partition per statement, so each stays short.
pub fn rebuild_logs(database: &str, partitions: &[String]) -> Vec<String> {
    let mut statements = vec![
        // What an interrupted attempt left.
        format!("DROP TABLE IF EXISTS {database}.logs_rebuild"),
        format!(
            "CREATE TABLE {database}.logs_rebuild AS {database}.logs ENGINE = MergeTree \
             PARTITION BY {LOGS_PARTITION_BY} ORDER BY ({LOGS_ORDER_BY})"
        ),
    ];
    for partition in partitions {
        statements.push(format!(
            "INSERT INTO {database}.logs_rebuild SELECT * FROM {database}.logs \
             WHERE toYYYYMMDD(toDateTime(intDiv(ts_us, 1000000), 'UTC')) = {partition}"
        ));
    }
    statements.extend([
        // The view names its source; it is made again for the new table.
        format!("DROP TABLE IF EXISTS {database}.counts_minute_mv"),
        format!(
            "RENAME TABLE {database}.logs TO {database}.logs_before_rebuild, \
             {database}.logs_rebuild TO {database}.logs"
        ),
        counts_minute_view(database),
        format!("DROP TABLE IF EXISTS {database}.logs_before_rebuild"),
    ]);
    statements
}

/// `INSERT ... SELECT`, not `VALUES`: over the native protocol the server
/// waits for data blocks after an `INSERT ... VALUES`, while this form runs
/// entirely on the server.
pub fn record_version(database: &str, version: u32) -> String {
    format!("INSERT INTO {database}.schema_migrations (version) SELECT toUInt32({version})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_choose_features() {
        let old = ServerVersion::parse("18.16.1").unwrap();
        let new = ServerVersion::parse("23.8.2.7").unwrap();
        assert_eq!(
            Features::of(old),
            Features {
                low_cardinality: false,
                codecs: false
            }
        );
        assert!(Features::of(new).low_cardinality && Features::of(new).codecs);
        assert_eq!(ServerVersion::parse("garbage"), None);
    }

    #[test]
    fn old_servers_get_no_new_syntax() {
        let old = Features::of(ServerVersion::parse("18.16.1").unwrap());
        let sql = sql_of(migration(1, "db", old).unwrap());
        assert!(
            !sql.contains("CODEC") && !sql.contains("LowCardinality"),
            "{sql}"
        );
        let new = Features::of(ServerVersion::parse("24.3.1").unwrap());
        let sql = sql_of(migration(1, "db", new).unwrap());
        assert!(sql.contains("service LowCardinality(String)"), "{sql}");
        assert!(sql.contains("ts_us Int64 CODEC(Delta, ZSTD(1))"), "{sql}");
        assert!(migration(LATEST + 1, "db", new).is_none());
        assert!(migration(2, "db", new).is_none(), "v2 is not this binary's");
    }

    fn sql_of(steps: Vec<Step>) -> String {
        steps
            .into_iter()
            .map(|step| match step {
                Step::Sql(sql) => sql,
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn the_rebuild_copies_each_partition_then_swaps_the_tables() {
        let sql = rebuild_logs("db", &["20250101".into(), "20250102".into()]);
        assert!(sql[1].contains("AS db.logs ENGINE = MergeTree"), "{sql:?}");
        assert!(sql[1].ends_with("ORDER BY (ts_us, id)"), "{sql:?}");
        assert_eq!(sql.iter().filter(|s| s.starts_with("INSERT")).count(), 2);
        assert!(sql[3].ends_with("= 20250102"), "{sql:?}");
        let rename = sql.iter().position(|s| s.starts_with("RENAME")).unwrap();
        let view = sql
            .iter()
            .position(|s| s.contains("MATERIALIZED VIEW"))
            .unwrap();
        assert!(rename < view, "the view is made for the new table");
    }
}
