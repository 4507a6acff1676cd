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
//!     most of a day. Version 3 rebuilds such a table ([`Step::UpgradeLogs`]).
//! - `tenant`, `trace_id`, `span_id` on `logs` (version 11): whose log it is
//!   (typed like `service`; rows stored before are `default`'s) and its
//!   trace and span ids (`''` for none). Every read is limited to its
//!   scope's tenants (`conditions.rs`). Version 13 sorts `logs` by
//!   `(tenant, ts_us, id)` ([`LOGS_ORDER_BY`], [`Step::SortLogsByTenant`]):
//!   a small tenant's time window is then a short run of granules however
//!   many logs other tenants hold, where before its pages read every
//!   tenant's rows in the window and filtered them out.
//! - `tenant_counts_minute`, `tenant_counts_hour` (version 11): a
//!   `SummingMergeTree` of (tenant, bucket, level, service) -> n each,
//!   sorted by tenant first (so parts never sum two tenants together),
//!   filled by the materialized views `tenant_counts_minute_mv` and
//!   `tenant_counts_hour_mv` on every insert into `logs`. Stats and
//!   histograms read them for whole hours and minutes and read `logs` only
//!   for the ragged edges of the range (see `counts.rs`). Versions 1 to 10
//!   had `counts_minute` and `counts_hour` without the tenant (their views
//!   `counts_minute_mv`, `counts_hour_mv`); version 11 moves their counts
//!   into the new tables as the `default` tenant's and drops them.
//! - `logs_by_trace` (version 12): a copy of every log with a trace id,
//!   `ORDER BY (tenant, trace_id, ts_us, id)`, filled by the materialized
//!   view `logs_by_trace_mv` on every insert into `logs` (18.16 has no
//!   projections). A read whose filter pins one trace id reads it instead of
//!   `logs` (`conditions::logs_table`): the trace's logs are a contiguous run
//!   of its key in each day's partition, found from the primary index
//!   whatever the time range, and every column a page or a filter needs is
//!   there, so nothing else is read. Small granules (1024 rows) keep a
//!   lookup's read small. Partitioned by day like `logs`, so retention drops
//!   the same partitions.
//! - `attr_keys`, `attr_values` on `logs` (version 5): the attributes as
//!   parallel arrays sorted by key, written by every insert, for the query
//!   language's attribute tests, facets and attribute keys; `attributes`
//!   (JSON) stays what reads return.
//! - `alert_records` (version 10): alerting's rules, state and notifications,
//!   and the saved views, as JSON documents (read and written by
//!   `alert_records.rs`); on a cluster
//!   `alert_records_local` on every host and a `Distributed` `alert_records`.
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
//! together may run the same migration concurrently; version 11's move of
//! the old counts renames the old table first, so only one instance copies
//! it ([`Step::MoveRollup`]).

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
    /// An `ngrambf_v1` skip index on `lowerUTF8(message)`, which `q`
    /// searches with `LIKE` so the index can skip granules.
    pub text_index: bool,
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
            text_index: modern,
        }
    }
}

/// What an 18.16 server has (none of the newer features), for the tests of
/// the statements.
#[cfg(test)]
pub const OLD_SERVER: Features = Features {
    low_cardinality: false,
    codecs: false,
    text_index: false,
};

/// The newest version this binary knows. Version 2 is not used: it was the
/// attribute columns' number on an unmerged branch (now version 5, whose
/// `ADD COLUMN` tolerates the columns being there already). Versions 6 to 9
/// are not used either (alerting took 10 while the store's own numbers were
/// still being handed out). A version this binary does not know is neither
/// applied nor recorded; the runner applies every version not yet recorded,
/// in order.
pub const LATEST: u32 = 13;

/// Attribute keys of a stored JSON object, by regex: for rows stored before
/// version 5, which computes them at read time from `attributes` (18.16 has
/// no JSON functions that list keys). Escaped characters stay escaped. The
/// regex is `"((?:[^"\\]|\\.)*)":`, each backslash doubled again for the SQL
/// string literal.
const KEYS_FROM_JSON: &str = r#"extractAll(attributes, '"((?:[^"\\\\]|\\\\.)*)":')"#;
const VALUES_FROM_JSON: &str = r#"extractAll(attributes, ':"((?:[^"\\\\]|\\\\.)*)"')"#;

/// The sort key of `logs` (version 13): the tenant first, so one tenant's
/// logs are a run of granules of their own and a small tenant's reads skip
/// a large tenant's rows from the primary index alone; then time, so a
/// time window is a contiguous run of each tenant's granules (see
/// `windows.rs`); `id` breaks ties the way pages do. Every read names its
/// tenants (`conditions.rs`). With tenants off every log is `default`'s and
/// this is the time-first key of versions 3 to 12.
pub const LOGS_ORDER_BY: &str = "tenant, ts_us, id";

/// The sort key of versions 3 to 12, before `logs` had a tenant.
const TIME_FIRST_ORDER_BY: &str = "ts_us, id";

/// Where the tables live: one server, or every host of a cluster from the
/// servers' `remote_servers`, with `Distributed` tables over per-shard local
/// ones. Reads and inserts always name `logs`, `tenant_counts_minute` and
/// `tenant_counts_hour`, which are the tables themselves on one server and the
/// `Distributed` ones on a cluster (sharded by `cityHash64(id)`, so a log
/// and its redelivered copy land on the same shard).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub cluster: Option<String>,
    /// `Replicated*MergeTree` on the local tables, under
    /// `/clickhouse/tables/{shard}/<database>/<table>` with `{replica}`.
    pub replicated: bool,
}

impl Layout {
    /// The table holding the rows on this host.
    pub fn local(&self, table: &str) -> String {
        match self.cluster {
            Some(_) => format!("{table}_local"),
            None => table.to_string(),
        }
    }

    /// `MergeTree` or `SummingMergeTree(n)`, replicated when asked.
    pub(super) fn engine(
        &self,
        database: &str,
        table: &str,
        family: &str,
        arguments: &str,
    ) -> String {
        if self.replicated {
            let comma = if arguments.is_empty() { "" } else { ", " };
            format!(
                "Replicated{family}('/clickhouse/tables/{{shard}}/{database}/{table}', '{{replica}}'{comma}{arguments})"
            )
        } else if arguments.is_empty() {
            family.to_string()
        } else {
            format!("{family}({arguments})")
        }
    }

    /// The `Distributed` tables over the local ones, on a cluster.
    fn distributed(&self, database: &str, features: Features) -> Vec<String> {
        let Some(cluster) = &self.cluster else {
            return Vec::new();
        };
        let service = service_type(features);
        let mut statements = vec![format!(
            "CREATE TABLE IF NOT EXISTS {database}.logs (
                ts_us Int64, id String, level UInt8, service {service}, message String, attributes String
            ) ENGINE = Distributed({cluster}, {database}, logs_local, cityHash64(id))"
        )];
        for rollup in [MINUTE_ROLLUP, HOUR_ROLLUP] {
            statements.extend(rollup.distributed(database, service, self));
        }
        statements
    }
}

/// One step of a migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Sql(String),
    /// Brings a version-1 `logs` to today's layout unless it is there
    /// already: the store adds the `ts` column, copies the rows (whatever
    /// columns the table has) into a table with the time-first key, swaps it
    /// in, fills `counts_hour` from `counts_minute` and re-attaches the
    /// views ([`rebuild_logs`], [`hour_rollup_backfill`]).
    UpgradeLogs,
    /// Moves an untenanted rollup's counts into its tenant-keyed successor
    /// (version 11), on every host: the old local table is renamed to
    /// `<old>_moving` (so of instances migrating at once only one copies),
    /// `backfill` (reading `<old>_moving`) copies it on one replica per
    /// shard (replication carries the rows to the others), and the renamed
    /// table is dropped. A host without the old table has nothing to move.
    MoveRollup {
        /// The old local table, e.g. `counts_minute` or `counts_minute_local`.
        old: String,
        /// `INSERT INTO <new local> (…) SELECT … FROM <old>_moving`.
        backfill: String,
    },
    /// Sorts every host's local `logs` by [`LOGS_ORDER_BY`] (version 13)
    /// unless it is sorted so already: [`SortByTenant::create`] makes the
    /// sorted table, one replica per shard copies the rows into it
    /// partition by partition ([`SortByTenant::copy`]; replication carries
    /// them to the others), and [`SortByTenant::swap`] puts it in place of
    /// the old one and makes the views on it again. Writers should be
    /// stopped meanwhile, as for version 3: rows written to the old table
    /// after its partition was copied would not be carried over.
    SortLogsByTenant,
    /// A statement that copies rows between local tables: run on one
    /// replica per shard (replication carries the rows to the others), on
    /// every host when the tables are not replicated, with the time a copy
    /// of every row may take.
    CopyPerShard(String),
}

/// The last second a `DateTime` partition key handles well (2105-12-31
/// 23:59:59): later logs (timestamps go to year 9999) are filed under it.
pub const TS_CLAMP_SECONDS: i64 = 4_291_747_199;

/// `ts`, the log's second as a `DateTime`, exists for the partition key: a
/// part's minimum and maximum of it are in `system.parts` (`min_time`,
/// `max_time`), so the store learns where the data is, to the second, from
/// metadata alone.
pub fn ts_column() -> String {
    format!("ts DateTime('UTC') MATERIALIZED {}", ts_of_ts_us())
}

/// `ts` computed from `ts_us`.
fn ts_of_ts_us() -> String {
    format!("toDateTime(least(intDiv(ts_us, 1000000), {TS_CLAMP_SECONDS}), 'UTC')")
}

/// The day partition of `logs`: retention drops whole days.
pub const LOGS_PARTITION_BY: &str = "toYYYYMMDD(ts)";

/// A rollup: `(bucket, level, service) -> n` by `width_us`, filled by a
/// materialized view on `logs`. `SummingMergeTree` adds rows up as parts
/// merge; readers `sum(n)` anyway, so unmerged parts do not matter.
struct Rollup {
    table: &'static str,
    column: &'static str,
    width_us: i64,
    /// Keyed by tenant first (version 11), so `SummingMergeTree` never adds
    /// up two tenants' rows and one tenant's counts are a contiguous run.
    tenant: bool,
}

/// The untenanted rollups of versions 1 to 10, which version 11 replaces.
const MINUTE_ROLLUP: Rollup = Rollup {
    table: "counts_minute",
    column: "minute",
    width_us: 60_000_000,
    tenant: false,
};

const HOUR_ROLLUP: Rollup = Rollup {
    table: "counts_hour",
    column: "hour",
    width_us: 3_600_000_000,
    tenant: false,
};

/// The rollups reads use (version 11): `(tenant, bucket, level, service) -> n`.
const TENANT_MINUTE_ROLLUP: Rollup = Rollup {
    table: "tenant_counts_minute",
    column: "minute",
    width_us: 60_000_000,
    tenant: true,
};

const TENANT_HOUR_ROLLUP: Rollup = Rollup {
    table: "tenant_counts_hour",
    column: "hour",
    width_us: 3_600_000_000,
    tenant: true,
};

impl Rollup {
    fn create(&self, database: &str, service: &str, layout: &Layout) -> String {
        let Rollup { table, column, .. } = self;
        let local = layout.local(table);
        let engine = layout.engine(database, &local, "SummingMergeTree", "n");
        let (tenant, key) = if self.tenant {
            (
                format!("\n                tenant {service},"),
                format!("tenant, {column}, level, service"),
            )
        } else {
            (String::new(), format!("{column}, level, service"))
        };
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.{local} (
                {column} Int64,{tenant}
                level UInt8,
                service {service},
                n UInt64
            ) ENGINE = {engine}
            PARTITION BY toYYYYMM(toDateTime(intDiv({column}, 1000000), 'UTC'))
            ORDER BY ({key})"
        )
    }

    /// The `Distributed` table over the local ones, on a cluster.
    fn distributed(&self, database: &str, service: &str, layout: &Layout) -> Option<String> {
        let cluster = layout.cluster.as_ref()?;
        let Rollup { table, column, .. } = self;
        let tenant = if self.tenant {
            format!("tenant {service}, ")
        } else {
            String::new()
        };
        Some(format!(
            "CREATE TABLE IF NOT EXISTS {database}.{table} (
                {column} Int64, {tenant}level UInt8, service {service}, n UInt64
            ) ENGINE = Distributed({cluster}, {database}, {table}_local)"
        ))
    }

    /// The view on the local `logs`: on a cluster each shard (each replica
    /// taking an insert) counts the rows it stores.
    fn view(&self, database: &str, layout: &Layout) -> String {
        let Rollup {
            table,
            column,
            width_us,
            ..
        } = self;
        let (target, source) = (layout.local(table), layout.local("logs"));
        let tenant = if self.tenant { "tenant, " } else { "" };
        format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{table}_mv
            TO {database}.{target} AS
            SELECT toInt64(intDiv(ts_us, {width_us}) * {width_us}) AS {column}, {tenant}level, service, count() AS n
            FROM {database}.{source} GROUP BY {column}, {tenant}level, service"
        )
    }
}

/// The steps taking the schema to `version` from the one before, or `None`
/// for a version this binary does not know.
pub fn migration(
    version: u32,
    database: &str,
    features: Features,
    layout: &Layout,
) -> Option<Vec<Step>> {
    match version {
        1 => Some(
            migration_1(database, features, layout)
                .into_iter()
                .map(Step::Sql)
                .collect(),
        ),
        // A cluster's tables are made in today's layout by version 1.
        3 if layout.cluster.is_some() => Some(Vec::new()),
        3 => Some(vec![Step::UpgradeLogs]),
        4 => Some(
            message_index_for_existing_tables(database, features, layout)
                .into_iter()
                .map(Step::Sql)
                .collect(),
        ),
        5 => Some(
            attribute_columns(database, layout)
                .into_iter()
                .map(Step::Sql)
                .collect(),
        ),
        10 => Some(
            alert_records_tables(database, layout)
                .into_iter()
                .map(Step::Sql)
                .collect(),
        ),
        11 => Some(tenancy(database, features, layout)),
        12 => Some(trace_table(database, features, layout)),
        13 => Some(tenant_first(database, layout)),
        _ => None,
    }
}

/// The table (schema version 10): on one server `alert_records` itself; on
/// a cluster `alert_records_local` on every host (replicated when the logs
/// are) and a `Distributed` `alert_records` over them, sharded by id so all
/// versions of a record meet on one shard. Reads `argMax` per id through the
/// `Distributed` table (aggregated across shards), so they are exact either
/// way; inserts are synchronous like the logs' (`insert_distributed_sync`).
fn alert_records_tables(database: &str, layout: &Layout) -> Vec<String> {
    let local = layout.local("alert_records");
    let engine = layout.engine(database, &local, "ReplacingMergeTree", "updated_us");
    let mut statements = vec![format!(
        "CREATE TABLE IF NOT EXISTS {database}.{local} (
            kind String,
            id String,
            body String,
            updated_us Int64,
            deleted UInt8
        ) ENGINE = {engine}
        ORDER BY (kind, id)"
    )];
    if let Some(cluster) = &layout.cluster {
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS {database}.alert_records (
                kind String, id String, body String, updated_us Int64, deleted UInt8
            ) ENGINE = Distributed({cluster}, {database}, {local}, cityHash64(id))"
        ));
    }
    statements
}

/// Version 11: tenancy. `logs` gains `tenant` (typed like `service`;
/// rows stored before belong to `default`), `trace_id` and `span_id` (`''`
/// for none), on every host's local table and the `Distributed` one (18.16
/// has no `ADD COLUMN IF NOT EXISTS`: the store takes "already exists" (44)
/// as done). The rollups become tenant-keyed: the old views go, the
/// `tenant_counts_*` tables and their views come, the old counts are moved
/// into them as the `default` tenant's ([`Step::MoveRollup`]), and the old
/// tables go. Writers should be stopped meanwhile, as for version 3: logs
/// inserted between the old views' drop and the new ones' creation are not
/// counted.
fn tenancy(database: &str, features: Features, layout: &Layout) -> Vec<Step> {
    let service = service_type(features);
    let columns = format!(
        "ADD COLUMN tenant {service} DEFAULT 'default', \
         ADD COLUMN trace_id String DEFAULT '', \
         ADD COLUMN span_id String DEFAULT ''"
    );
    let mut statements = vec![format!(
        "ALTER TABLE {database}.{} {columns}",
        layout.local("logs")
    )];
    if layout.cluster.is_some() {
        statements.push(format!("ALTER TABLE {database}.logs {columns}"));
    }
    for rollup in [TENANT_MINUTE_ROLLUP, TENANT_HOUR_ROLLUP] {
        statements.push(rollup.create(database, service, layout));
        statements.extend(rollup.distributed(database, service, layout));
    }
    for rollup in [MINUTE_ROLLUP, HOUR_ROLLUP] {
        statements.push(format!(
            "DROP TABLE IF EXISTS {database}.{}_mv",
            rollup.table
        ));
    }
    for rollup in [TENANT_MINUTE_ROLLUP, TENANT_HOUR_ROLLUP] {
        statements.push(rollup.view(database, layout));
    }
    let mut steps: Vec<Step> = statements.into_iter().map(Step::Sql).collect();
    for (old, new) in [
        (MINUTE_ROLLUP, TENANT_MINUTE_ROLLUP),
        (HOUR_ROLLUP, TENANT_HOUR_ROLLUP),
    ] {
        let column = old.column;
        let (source, target) = (layout.local(old.table), layout.local(new.table));
        steps.push(Step::MoveRollup {
            backfill: format!(
                "INSERT INTO {database}.{target} ({column}, tenant, level, service, n) \
                 SELECT {column}, 'default', level, service, n FROM {database}.{source}_moving"
            ),
            old: source,
        });
        if layout.cluster.is_some() {
            steps.push(Step::Sql(format!(
                "DROP TABLE IF EXISTS {database}.{}",
                old.table
            )));
        }
    }
    steps
}

/// The table trace lookups read (version 12), `<name>_local` per host on a
/// cluster under a `Distributed` one of this name.
pub const TRACE_TABLE: &str = "logs_by_trace";

/// What `logs_by_trace` copies of each log: everything a page returns and
/// every column a filter tests, so a lookup reads no other table.
pub const TRACE_COLUMNS: &str = "ts_us, id, level, service, message, attributes, tenant, trace_id, span_id, attr_keys, attr_values";

/// The sort key of `logs_by_trace`: one tenant's trace is a contiguous run,
/// in page order.
pub const TRACE_ORDER_BY: &str = "tenant, trace_id, ts_us, id";

/// Version 12: `logs_by_trace`, the logs that have a trace id sorted by it,
/// so a trace's logs are found from the primary index whatever the time
/// range. On every host: the table (replicated when the logs are; small
/// granules, as every read of it is a lookup), on a cluster a `Distributed`
/// table over the local ones (sharded like `logs`, though only the view
/// writes, host by host; with `ts`, which ranged lookups prune by), then the
/// view on the local `logs`, then the back-fill of the logs stored before,
/// on one replica per shard. The back-fill skips ids the view stored
/// meanwhile, so a log written while the migration runs is not copied twice
/// (stop writers anyway, as for version 11: on a replicated shard, a log
/// written on another replica may not have reached this one's copy yet).
fn trace_table(database: &str, features: Features, layout: &Layout) -> Vec<Step> {
    let service = service_type(features);
    let (local, logs) = (layout.local(TRACE_TABLE), layout.local("logs"));
    let engine = layout.engine(database, &local, "MergeTree", "");
    let columns = format!(
        "ts_us Int64, id String, level UInt8, service {service}, message String, \
         attributes String, tenant {service}, trace_id String, span_id String, \
         attr_keys Array(String), attr_values Array(String)"
    );
    // `ts` as in `logs`, but a `DEFAULT` the view fills: 18.16 computes
    // no `MATERIALIZED` column of a view's target ("Expected column ts:
    // while pushing to view").
    let ts = ts_of_ts_us();
    let mut statements = vec![format!(
        "CREATE TABLE IF NOT EXISTS {database}.{local} (
            {columns},
            ts DateTime('UTC') DEFAULT {ts}
        ) ENGINE = {engine}
        PARTITION BY {LOGS_PARTITION_BY}
        ORDER BY ({TRACE_ORDER_BY})
        SETTINGS index_granularity = 1024"
    )];
    if let Some(cluster) = &layout.cluster {
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS {database}.{TRACE_TABLE} ({columns}, ts DateTime('UTC')) \
             ENGINE = Distributed({cluster}, {database}, {local}, cityHash64(id))"
        ));
    }
    statements.push(trace_view(database, layout));
    let mut steps: Vec<Step> = statements.into_iter().map(Step::Sql).collect();
    steps.push(Step::CopyPerShard(format!(
        "INSERT INTO {database}.{local} ({TRACE_COLUMNS}) \
         SELECT {TRACE_COLUMNS} FROM {database}.{logs} \
         WHERE trace_id != '' AND id NOT IN (SELECT id FROM {database}.{local})"
    )));
    steps
}

/// Version 13: every host's local `logs` sorted by tenant first
/// ([`Step::SortLogsByTenant`]). Reads now bound `ts` too (the parts'
/// minimum and maximum of it skip whole parts, `conditions::logs_time_range`),
/// so on a cluster the `Distributed` `logs` gets the column as an `ALIAS`:
/// 18.16 sends a `MATERIALIZED` one with every insert through it, which
/// the local tables refuse, and never sends an `ALIAS`.
fn tenant_first(database: &str, layout: &Layout) -> Vec<Step> {
    let mut steps = vec![Step::SortLogsByTenant];
    if layout.cluster.is_some() {
        steps.push(Step::Sql(distributed_ts_column(database)));
    }
    steps
}

fn distributed_ts_column(database: &str) -> String {
    format!(
        "ALTER TABLE {database}.logs ADD COLUMN ts DateTime('UTC') ALIAS {}",
        ts_of_ts_us()
    )
}

/// The view filling `logs_by_trace` from the local `logs`.
fn trace_view(database: &str, layout: &Layout) -> String {
    let (local, logs) = (layout.local(TRACE_TABLE), layout.local("logs"));
    let ts = ts_of_ts_us();
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{TRACE_TABLE}_mv
        TO {database}.{local} AS
        SELECT {TRACE_COLUMNS}, {ts} AS ts FROM {database}.{logs} WHERE trace_id != ''"
    )
}

/// The statements of [`Step::SortLogsByTenant`] on one host, whose local
/// `logs` is `logs` (one server) or `logs_local` (a cluster). The `Distributed`
/// `logs` names its local tables and needs no change.
pub struct SortByTenant<'a> {
    database: &'a str,
    layout: &'a Layout,
    /// The local `logs`.
    pub logs: String,
    /// The sorted copy while it fills.
    pub sorted: String,
    /// The old table once swapped out.
    old: String,
}

impl<'a> SortByTenant<'a> {
    pub fn new(database: &'a str, layout: &'a Layout) -> Self {
        let logs = layout.local("logs");
        SortByTenant {
            database,
            layout,
            sorted: format!("{logs}_by_tenant"),
            old: format!("{logs}_by_time"),
            logs,
        }
    }

    /// The local `logs`' sort key as `system.tables` writes it.
    pub fn sorting_key(&self) -> String {
        format!(
            "SELECT sorting_key FROM system.tables WHERE database = '{}' AND name = '{}'",
            self.database, self.logs
        )
    }

    pub fn database(&self) -> &str {
        self.database
    }

    /// Whether `sorting_key` says the table is sorted tenant first.
    pub fn is_sorted(sorting_key: &str) -> bool {
        sorting_key == LOGS_ORDER_BY
    }

    /// The sorted table, empty (what an interrupted attempt left goes
    /// first), with the columns, codecs and indexes of the old one.
    pub fn create(&self) -> Vec<String> {
        let SortByTenant {
            database,
            logs,
            sorted,
            ..
        } = self;
        let engine = self.layout.engine(database, sorted, "MergeTree", "");
        vec![
            format!("DROP TABLE IF EXISTS {database}.{sorted}"),
            format!(
                "CREATE TABLE {database}.{sorted} AS {database}.{logs} ENGINE = {engine} \
                 PARTITION BY {LOGS_PARTITION_BY} ORDER BY ({LOGS_ORDER_BY})"
            ),
        ]
    }

    /// Copies one partition of the old table (every stored column: `ts`
    /// is computed again).
    pub fn copy(&self, partition: &str) -> String {
        let SortByTenant {
            database,
            logs,
            sorted,
            ..
        } = self;
        format!(
            "INSERT INTO {database}.{sorted} SELECT * FROM {database}.{logs} \
             WHERE _partition_id = '{partition}'"
        )
    }

    /// Drops the views on the old table (they name their source), swaps
    /// the tables in one `RENAME`.
    pub fn swap(&self) -> Vec<String> {
        let SortByTenant {
            database,
            logs,
            sorted,
            old,
            ..
        } = self;
        let mut statements: Vec<String> = [
            TENANT_MINUTE_ROLLUP.table,
            TENANT_HOUR_ROLLUP.table,
            TRACE_TABLE,
        ]
        .iter()
        .map(|table| format!("DROP TABLE IF EXISTS {database}.{table}_mv"))
        .collect();
        statements.push(format!(
            "RENAME TABLE {database}.{logs} TO {database}.{old}, \
             {database}.{sorted} TO {database}.{logs}"
        ));
        statements
    }

    /// The views on the sorted table, and the old table gone: run after
    /// [`Self::swap`], and again by a migration that finds the table sorted
    /// (an earlier one may have stopped between the two).
    pub fn finish(&self) -> Vec<String> {
        let SortByTenant {
            database,
            layout,
            old,
            ..
        } = self;
        vec![
            TENANT_MINUTE_ROLLUP.view(database, layout),
            TENANT_HOUR_ROLLUP.view(database, layout),
            trace_view(database, layout),
            format!("DROP TABLE IF EXISTS {database}.{old}"),
        ]
    }
}

fn service_type(features: Features) -> &'static str {
    if features.low_cardinality {
        "LowCardinality(String)"
    } else {
        "String"
    }
}

/// A new database gets today's layout at once (so version 3 finds nothing
/// to upgrade); a database made by an older binary is upgraded by version 3.
fn migration_1(database: &str, features: Features, layout: &Layout) -> Vec<String> {
    let service = service_type(features);
    let logs = layout.local("logs");
    let engine = layout.engine(database, &logs, "MergeTree", "");
    let codec = |codec: &str| {
        if features.codecs {
            format!(" CODEC({codec})")
        } else {
            String::new()
        }
    };
    let mut statements = vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.{logs} (
                    ts_us Int64{ts},
                    id String{text},
                    level UInt8,
                    service {service},
                    message String{text},
                    attributes String{text},
                    {ts_column}{index}
                ) ENGINE = {engine}
                PARTITION BY {LOGS_PARTITION_BY}
                ORDER BY ({TIME_FIRST_ORDER_BY})",
            ts = codec("Delta, ZSTD(1)"),
            text = codec("ZSTD(1)"),
            ts_column = ts_column(),
            index = if features.text_index {
                format!(",\n                    {}", message_index())
            } else {
                String::new()
            },
        ),
        MINUTE_ROLLUP.create(database, service, layout),
        MINUTE_ROLLUP.view(database, layout),
        HOUR_ROLLUP.create(database, service, layout),
        HOUR_ROLLUP.view(database, layout),
    ];
    statements.extend(layout.distributed(database, features));
    statements
}

/// The n-gram skip index `q` searches use on servers that have skip
/// indexes: trigrams of the lowercased message, a 32 KiB Bloom filter per
/// granule (log messages repeat their templates, so a granule holds a few
/// thousand distinct trigrams and the filter stays sparse).
fn message_index() -> &'static str {
    "INDEX message_ngrams lowerUTF8(message) TYPE ngrambf_v1(3, 32768, 3, 0) GRANULARITY 1"
}

/// Version 4: the index for tables made before it (new ones get it from
/// version 1), built for the parts already there too.
fn message_index_for_existing_tables(
    database: &str,
    features: Features,
    layout: &Layout,
) -> Vec<String> {
    if !features.text_index {
        return Vec::new();
    }
    let logs = layout.local("logs");
    vec![
        format!(
            "ALTER TABLE {database}.{logs} ADD {}",
            message_index().replacen("INDEX", "INDEX IF NOT EXISTS", 1)
        ),
        format!("ALTER TABLE {database}.{logs} MATERIALIZE INDEX message_ngrams"),
    ]
}

/// Version 5: the attributes as two parallel arrays sorted by key. Rows
/// stored before compute them from their JSON when read (the column
/// `DEFAULT`) and keep them once parts merge. On a cluster the local table
/// of every host gets them and so does the `Distributed` one (the runner
/// runs each statement on every host). 18.16 has no `ADD COLUMN IF NOT
/// EXISTS`: the store takes "already exists" (44) as done.
fn attribute_columns(database: &str, layout: &Layout) -> Vec<String> {
    let columns = format!(
        "ADD COLUMN attr_keys Array(String) DEFAULT {KEYS_FROM_JSON}, \
         ADD COLUMN attr_values Array(String) DEFAULT {VALUES_FROM_JSON}"
    );
    let mut statements = vec![format!(
        "ALTER TABLE {database}.{} {columns}",
        layout.local("logs")
    )];
    if layout.cluster.is_some() {
        statements.push(format!("ALTER TABLE {database}.logs {columns}"));
    }
    statements
}

/// Whether `logs` has column `ts` (1 or 0).
pub fn has_ts_column(database: &str) -> String {
    format!(
        "SELECT count() FROM system.columns WHERE database = '{database}' AND table = 'logs' AND name = 'ts'"
    )
}

pub fn add_ts_column(database: &str) -> String {
    format!("ALTER TABLE {database}.logs ADD COLUMN {}", ts_column())
}

/// Whether a table exists (1 or 0).
pub fn table_exists(database: &str, table: &str) -> String {
    format!("SELECT count() FROM system.tables WHERE database = '{database}' AND name = '{table}'")
}

/// The statements of the rebuild in [`Step::UpgradeLogs`], once `logs` has
/// its `ts` column. `partitions` are those `logs` holds: rows are copied
/// one partition per statement, so each stays short. The views are dropped
/// (they name their source) and made again by [`hour_rollup_backfill`].
pub fn rebuild_logs(database: &str, partitions: &[String]) -> Vec<String> {
    let mut statements = vec![
        // What an interrupted attempt left.
        format!("DROP TABLE IF EXISTS {database}.logs_rebuild"),
        format!(
            "CREATE TABLE {database}.logs_rebuild AS {database}.logs ENGINE = MergeTree \
             PARTITION BY {LOGS_PARTITION_BY} ORDER BY ({TIME_FIRST_ORDER_BY})"
        ),
    ];
    for partition in partitions {
        statements.push(format!(
            "INSERT INTO {database}.logs_rebuild SELECT * FROM {database}.logs \
             WHERE _partition_id = '{partition}'"
        ));
    }
    statements.extend([
        format!("DROP TABLE IF EXISTS {database}.counts_minute_mv"),
        format!("DROP TABLE IF EXISTS {database}.counts_hour_mv"),
        format!(
            "RENAME TABLE {database}.logs TO {database}.logs_before_rebuild, \
             {database}.logs_rebuild TO {database}.logs"
        ),
    ]);
    statements
}

/// Fills `counts_hour` from `counts_minute` and attaches both views to
/// `logs`: the last part of [`Step::UpgradeLogs`], run while no view feeds
/// either rollup, so the two agree.
pub fn hour_rollup_backfill(database: &str, features: Features) -> Vec<String> {
    vec![
        format!("DROP TABLE IF EXISTS {database}.counts_minute_mv"),
        format!("DROP TABLE IF EXISTS {database}.counts_hour"),
        HOUR_ROLLUP.create(database, service_type(features), &Layout::default()),
        format!(
            "INSERT INTO {database}.counts_hour (hour, level, service, n) \
             SELECT toInt64(intDiv(minute, 3600000000) * 3600000000) AS hour, level, service, sum(n) \
             FROM {database}.counts_minute GROUP BY hour, level, service"
        ),
        MINUTE_ROLLUP.view(database, &Layout::default()),
        HOUR_ROLLUP.view(database, &Layout::default()),
        format!("DROP TABLE IF EXISTS {database}.logs_before_rebuild"),
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

/// The sort and partition keys `logs` has now, as `system.tables` writes
/// them (`ts_us, id`), joined by `|`.
pub fn logs_keys(database: &str) -> String {
    format!(
        "SELECT concat(sorting_key, '|', partition_key) FROM system.tables \
         WHERE database = '{database}' AND name = 'logs'"
    )
}

/// What [`logs_keys`] says of the layout version 3 makes.
pub fn current_logs_keys() -> String {
    format!("{TIME_FIRST_ORDER_BY}|{LOGS_PARTITION_BY}")
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
                codecs: false,
                text_index: false,
            }
        );
        assert!(Features::of(new).low_cardinality && Features::of(new).codecs);
        assert_eq!(ServerVersion::parse("garbage"), None);
    }

    #[test]
    fn old_servers_get_no_new_syntax() {
        let old = Features::of(ServerVersion::parse("18.16.1").unwrap());
        let sql = sql_of(migration(1, "db", old, &Layout::default()).unwrap());
        assert!(
            !sql.contains("CODEC") && !sql.contains("LowCardinality"),
            "{sql}"
        );
        let new = Features::of(ServerVersion::parse("24.3.1").unwrap());
        let sql = sql_of(migration(1, "db", new, &Layout::default()).unwrap());
        assert!(sql.contains("service LowCardinality(String)"), "{sql}");
        assert!(sql.contains("ts_us Int64 CODEC(Delta, ZSTD(1))"), "{sql}");
        assert!(migration(LATEST + 1, "db", new, &Layout::default()).is_none());
        assert!(
            migration(2, "db", new, &Layout::default()).is_none(),
            "v2 is not this binary's"
        );
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
        assert!(sql[3].ends_with("_partition_id = '20250102'"), "{sql:?}");
        assert!(sql.last().unwrap().starts_with("RENAME"), "{sql:?}");
        let old = Features::of(ServerVersion::parse("18.16.1").unwrap());
        let rest = hour_rollup_backfill("db", old);
        let fill = rest
            .iter()
            .position(|s| s.starts_with("INSERT INTO db.counts_hour"))
            .unwrap();
        let view = rest
            .iter()
            .position(|s| s.contains("MATERIALIZED VIEW"))
            .unwrap();
        assert!(
            fill < view,
            "the rollups agree: views come after the backfill"
        );
    }

    #[test]
    fn a_new_database_gets_the_time_first_layout_at_once() {
        let old = Features::of(ServerVersion::parse("18.16.1").unwrap());
        let sql = sql_of(migration(1, "db", old, &Layout::default()).unwrap());
        assert!(sql.contains("PARTITION BY toYYYYMMDD(ts)"), "{sql}");
        assert!(sql.contains("ORDER BY (ts_us, id)"), "{sql}");
        assert!(sql.contains("counts_hour_mv"), "{sql}");
        assert_eq!(
            migration(3, "db", old, &Layout::default()),
            Some(vec![Step::UpgradeLogs])
        );
    }

    #[test]
    fn a_cluster_gets_local_tables_and_distributed_ones_over_them() {
        let old = Features::of(ServerVersion::parse("18.16.1").unwrap());
        let layout = Layout {
            cluster: Some("logs_cluster".into()),
            replicated: true,
        };
        let sql = sql_of(migration(1, "db", old, &layout).unwrap());
        assert!(
            sql.contains("CREATE TABLE IF NOT EXISTS db.logs_local ("),
            "{sql}"
        );
        assert!(
            sql.contains("ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/logs_local', '{replica}')"),
            "{sql}"
        );
        assert!(
            sql.contains("ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/counts_minute_local', '{replica}', n)"),
            "{sql}"
        );
        assert!(sql.contains("TO db.counts_hour_local AS"), "{sql}");
        assert!(sql.contains("FROM db.logs_local GROUP BY hour"), "{sql}");
        assert!(
            sql.contains("ENGINE = Distributed(logs_cluster, db, logs_local, cityHash64(id))"),
            "{sql}"
        );
        assert!(
            sql.contains("ENGINE = Distributed(logs_cluster, db, counts_hour_local)"),
            "{sql}"
        );
        assert_eq!(migration(3, "db", old, &layout), Some(Vec::new()));
        let sql = sql_of(migration(5, "db", old, &layout).unwrap());
        assert!(
            sql.contains("ALTER TABLE db.logs_local ADD COLUMN attr_keys")
                && sql.contains("ALTER TABLE db.logs ADD COLUMN attr_keys"),
            "the attribute arrays on every host's local table and the Distributed one: {sql}"
        );
        assert_eq!(
            migration(5, "db", old, &Layout::default()).unwrap().len(),
            1
        );
        let plain = Layout {
            replicated: false,
            ..layout
        };
        let sql = sql_of(migration(1, "db", old, &plain).unwrap());
        assert!(sql.contains("ENGINE = SummingMergeTree(n)") && !sql.contains("Replicated"));
    }

    #[test]
    fn version_12_copies_traced_logs_into_a_table_ordered_by_trace() {
        let old = Features::of(ServerVersion::parse("18.16.1").unwrap());
        let steps = migration(12, "db", old, &Layout::default()).unwrap();
        let sql = sql_of(steps.clone());
        assert!(
            sql.contains("CREATE TABLE IF NOT EXISTS db.logs_by_trace (")
                && sql.contains("ENGINE = MergeTree\n")
                && sql.contains("PARTITION BY toYYYYMMDD(ts)")
                && sql.contains("ORDER BY (tenant, trace_id, ts_us, id)")
                && sql.contains("SETTINGS index_granularity = 1024"),
            "{sql}"
        );
        assert!(
            sql.contains(&format!(
                "TO db.logs_by_trace AS\n        SELECT {TRACE_COLUMNS}, {} AS ts FROM db.logs WHERE trace_id != ''",
                ts_of_ts_us()
            )),
            "{sql}"
        );
        let view = steps
            .iter()
            .position(|step| matches!(step, Step::Sql(sql) if sql.contains("MATERIALIZED VIEW")))
            .unwrap();
        assert_eq!(
            steps[view + 1..],
            [Step::CopyPerShard(format!(
                "INSERT INTO db.logs_by_trace ({TRACE_COLUMNS}) SELECT {TRACE_COLUMNS} FROM db.logs \
                 WHERE trace_id != '' AND id NOT IN (SELECT id FROM db.logs_by_trace)"
            ))],
            "the back-fill comes after the view, skipping what the view stored meanwhile"
        );
        assert!(!sql.contains("LowCardinality"), "{sql}");
        let new = Features::of(ServerVersion::parse("24.3.1").unwrap());
        let sql = sql_of(migration(12, "db", new, &Layout::default()).unwrap());
        assert!(
            sql.contains("service LowCardinality(String), message String, attributes String, tenant LowCardinality(String)"),
            "typed like logs: {sql}"
        );

        let layout = Layout {
            cluster: Some("logs_cluster".into()),
            replicated: true,
        };
        let sql = sql_of(migration(12, "db", old, &layout).unwrap());
        assert!(
            sql.contains("ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/logs_by_trace_local', '{replica}')"),
            "{sql}"
        );
        assert!(
            sql.contains(
                "ENGINE = Distributed(logs_cluster, db, logs_by_trace_local, cityHash64(id))"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("TO db.logs_by_trace_local AS")
                && sql.contains("FROM db.logs_local WHERE trace_id != ''")
                && sql.contains("INSERT INTO db.logs_by_trace_local (")
                && sql.contains("NOT IN (SELECT id FROM db.logs_by_trace_local)"),
            "the view and the back-fill work host by host: {sql}"
        );
    }

    #[test]
    fn version_13_sorts_each_hosts_logs_by_tenant_and_makes_the_views_again() {
        let old = Features::of(ServerVersion::parse("18.16.1").unwrap());
        assert_eq!(
            migration(13, "db", old, &Layout::default()),
            Some(vec![Step::SortLogsByTenant])
        );
        let layout = Layout::default();
        let sort = SortByTenant::new("db", &layout);
        let create = sort.create();
        assert_eq!(create[0], "DROP TABLE IF EXISTS db.logs_by_tenant");
        assert!(
            create[1].starts_with("CREATE TABLE db.logs_by_tenant AS db.logs ENGINE = MergeTree ")
                && create[1].ends_with("PARTITION BY toYYYYMMDD(ts) ORDER BY (tenant, ts_us, id)"),
            "{create:?}"
        );
        assert_eq!(
            sort.copy("20250101"),
            "INSERT INTO db.logs_by_tenant SELECT * FROM db.logs WHERE _partition_id = '20250101'"
        );
        let swap = sort.swap();
        assert_eq!(
            swap,
            [
                "DROP TABLE IF EXISTS db.tenant_counts_minute_mv",
                "DROP TABLE IF EXISTS db.tenant_counts_hour_mv",
                "DROP TABLE IF EXISTS db.logs_by_trace_mv",
                "RENAME TABLE db.logs TO db.logs_by_time, db.logs_by_tenant TO db.logs",
            ],
            "every view on logs goes before the rename"
        );
        let finish = sort.finish().join(";");
        for view in [
            "tenant_counts_minute_mv",
            "tenant_counts_hour_mv",
            "logs_by_trace_mv",
        ] {
            assert!(
                finish.contains(&format!("CREATE MATERIALIZED VIEW IF NOT EXISTS db.{view}")),
                "{finish}"
            );
        }
        assert!(
            finish.ends_with("DROP TABLE IF EXISTS db.logs_by_time"),
            "{finish}"
        );
        assert!(
            SortByTenant::is_sorted("tenant, ts_us, id") && !SortByTenant::is_sorted("ts_us, id")
        );

        let cluster = Layout {
            cluster: Some("logs_cluster".into()),
            replicated: true,
        };
        assert_eq!(
            migration(13, "db", old, &cluster).unwrap()[1],
            Step::Sql(distributed_ts_column("db")),
            "the Distributed table gets ts, which reads bound"
        );
        let sort = SortByTenant::new("db", &cluster);
        assert!(
            sort.create()[1].contains(
                "AS db.logs_local ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/logs_local_by_tenant', '{replica}')"
            ),
            "{:?}",
            sort.create()
        );
        assert!(sort.sorting_key().ends_with("name = 'logs_local'"));
        let finish = sort.finish().join(";");
        assert!(
            finish.contains("FROM db.logs_local GROUP BY minute")
                && finish.contains("TO db.logs_by_trace_local AS"),
            "the views on the host's local table: {finish}"
        );
    }

    #[test]
    fn version_11_adds_tenancy_and_keys_the_rollups_by_tenant() {
        let old = Features::of(ServerVersion::parse("18.16.1").unwrap());
        let steps = migration(11, "db", old, &Layout::default()).unwrap();
        let sql = sql_of(steps.clone());
        assert!(
            sql.contains(
                "ALTER TABLE db.logs ADD COLUMN tenant String DEFAULT 'default', \
                 ADD COLUMN trace_id String DEFAULT '', ADD COLUMN span_id String DEFAULT ''"
            ),
            "{sql}"
        );
        assert!(
            sql.contains("ORDER BY (tenant, minute, level, service)")
                && sql.contains("ORDER BY (tenant, hour, level, service)"),
            "the tenant leads the sum key: {sql}"
        );
        assert!(
            sql.contains("SELECT toInt64(intDiv(ts_us, 60000000) * 60000000) AS minute, tenant, level, service, count() AS n")
                && sql.contains("GROUP BY minute, tenant, level, service"),
            "{sql}"
        );
        let position = |needle: &str| {
            steps
                .iter()
                .position(|step| match step {
                    Step::Sql(sql) => sql.contains(needle),
                    _ => false,
                })
                .unwrap_or_else(|| panic!("{needle} in {sql}"))
        };
        assert!(
            position("DROP TABLE IF EXISTS db.counts_minute_mv")
                < position("db.tenant_counts_minute_mv")
        );
        let first_move = steps
            .iter()
            .position(|step| matches!(step, Step::MoveRollup { .. }))
            .unwrap();
        assert!(
            position("db.tenant_counts_hour_mv") < first_move,
            "the views count new logs before the old counts move"
        );
        assert!(
            steps.contains(&Step::MoveRollup {
                old: "counts_hour".into(),
                backfill: "INSERT INTO db.tenant_counts_hour (hour, tenant, level, service, n) \
                 SELECT hour, 'default', level, service, n FROM db.counts_hour_moving"
                    .into(),
            })
        );
        let new = Features::of(ServerVersion::parse("24.3.1").unwrap());
        let sql = sql_of(migration(11, "db", new, &Layout::default()).unwrap());
        assert!(
            sql.contains("tenant LowCardinality(String) DEFAULT 'default'"),
            "{sql}"
        );

        let layout = Layout {
            cluster: Some("logs_cluster".into()),
            replicated: true,
        };
        let steps = migration(11, "db", old, &layout).unwrap();
        let sql = sql_of(steps.clone());
        assert!(
            sql.contains("ALTER TABLE db.logs_local ADD COLUMN tenant")
                && sql.contains("ALTER TABLE db.logs ADD COLUMN tenant"),
            "{sql}"
        );
        assert!(
            sql.contains("ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/db/tenant_counts_minute_local', '{replica}', n)"),
            "{sql}"
        );
        assert!(
            sql.contains("ENGINE = Distributed(logs_cluster, db, tenant_counts_hour_local)"),
            "{sql}"
        );
        assert!(sql.contains("TO db.tenant_counts_hour_local AS"), "{sql}");
        assert!(
            sql.contains("FROM db.logs_local GROUP BY hour, tenant"),
            "{sql}"
        );
        assert!(
            steps
                .iter()
                .any(|step| matches!(step, Step::MoveRollup { old, backfill }
            if old == "counts_minute_local"
                && backfill.starts_with("INSERT INTO db.tenant_counts_minute_local (")
                && backfill.ends_with("FROM db.counts_minute_local_moving")))
        );
        assert!(
            sql.ends_with("DROP TABLE IF EXISTS db.counts_hour"),
            "{sql}"
        );
    }
}
