//! The ClickHouse schema, chosen per server version, and its migrations.
//!
//! Tables (in the DSN's database):
//! - `logs`: one row per log. Timestamps are `ts_us Int64` (microseconds
//!   since the epoch, UTC) on every version: filters stay exact to the
//!   microsecond and there is one code path, where `DateTime64(6)` would
//!   exist only from 20.1.
//!   - `PARTITION BY` the UTC day (`toYYYYMMDD`), so retention is `DROP
//!     PARTITION` and a time filter skips whole days.
//!   - `ORDER BY (level, service, ts_us, id)`: the dashboard filters levels
//!     (`IN`) and narrows to services, always within a time range. With five
//!     levels and tens to hundreds of services, every (level, service) run
//!     is sorted by time, so the primary index prunes by time inside each
//!     run as well as by level. `id` last makes duplicates adjacent.
//! - `counts_minute`: a `SummingMergeTree` of (minute, level, service) -> n,
//!   filled by the materialized view `counts_minute_mv` on every insert into
//!   `logs`. Stats and histograms read it for whole minutes and read `logs`
//!   only for the ragged edges of the range (see `sql.rs`).
//! - `attr_keys`, `attr_values` (version 2): the attributes as parallel
//!   arrays sorted by key, for the query language and facets.
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

pub const LATEST: u32 = 2;

/// Attribute keys of a stored JSON object, by regex: for rows stored before
/// version 2, which computes them at read time from `attributes` (18.16 has
/// no JSON functions that list keys). Escaped characters stay escaped.
const KEYS_FROM_JSON: &str = r#"extractAll(attributes, '"((?:[^"\\]|\\.)*)":')"#;
const VALUES_FROM_JSON: &str = r#"extractAll(attributes, ':"((?:[^"\\]|\\.)*)"')"#;

/// Statements taking the schema from `version - 1` to `version`.
pub fn migration(version: u32, database: &str, features: Features) -> Vec<String> {
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
    match version {
        1 => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {database}.logs (
                    ts_us Int64{ts},
                    id String{text},
                    level UInt8,
                    service {service},
                    message String{text},
                    attributes String{text}
                ) ENGINE = MergeTree
                PARTITION BY toYYYYMMDD(toDateTime(intDiv(ts_us, 1000000), 'UTC'))
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
            format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.counts_minute_mv
                TO {database}.counts_minute AS
                SELECT toInt64(intDiv(ts_us, 60000000) * 60000000) AS minute, level, service, count() AS n
                FROM {database}.logs GROUP BY minute, level, service"
            ),
        ],
        // Attributes as two parallel arrays sorted by key, written by every
        // insert, for filters and facets; `attributes` stays the output.
        // Rows from before compute them from their JSON when read (the
        // column DEFAULT), and keep them when parts merge.
        2 => vec![format!(
            "ALTER TABLE {database}.logs
                ADD COLUMN attr_keys Array(String) DEFAULT {KEYS_FROM_JSON},
                ADD COLUMN attr_values Array(String) DEFAULT {VALUES_FROM_JSON}"
        )],
        _ => Vec::new(),
    }
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

pub fn current_version(database: &str) -> String {
    format!("SELECT toUInt32(max(version)) FROM {database}.schema_migrations")
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
        let sql = migration(1, "db", old).join(";");
        assert!(
            !sql.contains("CODEC") && !sql.contains("LowCardinality"),
            "{sql}"
        );
        let new = Features::of(ServerVersion::parse("24.3.1").unwrap());
        let sql = migration(1, "db", new).join(";");
        assert!(sql.contains("service LowCardinality(String)"), "{sql}");
        assert!(sql.contains("ts_us Int64 CODEC(Delta, ZSTD(1))"), "{sql}");
        assert!(migration(LATEST + 1, "db", new).is_empty());
    }
}
