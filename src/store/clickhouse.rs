//! The production store: ClickHouse over its native protocol, through
//! klickhouse. This is the only module that knows klickhouse; the schema
//! lives in `schema.rs` and the SQL in `sql.rs`, both plain text.
//!
//! Connections: a small pool of klickhouse clients (one TCP connection each;
//! a client runs one statement at a time). A connection that fails or times
//! out is dropped, never reused. ClickHouse being down at start or later is
//! an expected state: the store keeps retrying with backoff (a start-up task
//! until the first success, then on demand), `check` and every call answer
//! [`StoreError::Unavailable`] meanwhile, and on the first connection after
//! an outage the server version is read and the schema checked again.
//!
//! klickhouse reports a connection dropped mid-statement as a clean end of
//! the result. So every statement is confirmed by a `SELECT 1` on the same
//! connection before its result is trusted: an insert reported `Ok` has
//! certainly been committed, and a read is never silently cut short.

mod alert_records;
mod dsn;
mod query_sql;
mod schema;
mod sql;
mod windows;

pub use windows::Stepping;

use super::facets::{self, FacetQuery, Facets, KeyCount, Tally};
use super::filter::{HistogramQuery, LogFilter, LogQuery, Order};
use super::{BucketCount, LevelServiceCount, Store, StoreError};
use crate::domain::log::{attributes_from_json, attributes_to_json};
use crate::domain::query::{FieldName, TextField};
use crate::domain::time::{MAX_MICROS, Micros};
use crate::domain::{Level, LogBatch, LogRecord};
use async_trait::async_trait;
use dsn::Dsn;
use futures_util::StreamExt;
use klickhouse::{Client, ClientOptions, KlickhouseError, Row, Type, Value};
use schema::{Features, ServerVersion};
use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A write (or a migration step) running longer is abandoned with its
/// connection; reads have [`Options::read_timeout`].
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after the server should have stopped a read (its
/// `max_execution_time`) we stop waiting for it.
const TIME_LIMIT_GRACE: Duration = Duration::from_secs(2);
/// A page query with at most this many logs to skip fetches them and drops
/// them here; beyond it each window is counted first and skipped whole when
/// it can be.
const FETCH_TO_SKIP: u64 = 1000;

/// Tuning of the store; the defaults are what the server runs with.
#[derive(Clone, Debug)]
pub struct Options {
    /// A cluster from the servers' `remote_servers`: local tables on every
    /// host, `Distributed` ones over them (see `schema.rs`).
    pub cluster: Option<String>,
    /// `Replicated*MergeTree` local tables (with `cluster`).
    pub replicated: bool,
    /// Every read (all the statements of one answer together) is bounded by
    /// this, on the server too (`max_execution_time`).
    pub read_timeout: Duration,
    /// How page queries step through time windows.
    pub stepping: Stepping,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cluster: None,
            replicated: false,
            read_timeout: STATEMENT_TIMEOUT,
            stepping: Stepping::default(),
        }
    }
}
const IDLE_CONNECTIONS: usize = 4;
/// Statements in flight at once from this process; more wait their turn
/// rather than opening ever more connections.
const MAX_CONNECTIONS: usize = 16;
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Ids per `existing_ids` statement: keeps the statement well under the
/// server's `max_query_size` (256 KiB by default) with hex-encoded ids.
const IDS_PER_LOOKUP: usize = 1000;

pub struct ClickHouseStore {
    inner: Arc<Inner>,
    starter: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    dsn: Dsn,
    options: Options,
    /// What the server we are connected to has (old-server defaults until
    /// the first connection says otherwise).
    features: Mutex<Features>,
    idle: Mutex<Vec<Client>>,
    connections: tokio::sync::Semaphore,
    /// Serialises (re)connecting and migrating, so an outage ends with one
    /// attempt at a time rather than one per waiting request.
    preparing: tokio::sync::Mutex<()>,
    /// The schema was verified on the server we are connected to.
    prepared: AtomicBool,
    /// When the last attempt to prepare failed and how long to wait before
    /// the next one; calls in between fail at once with the same reason.
    backoff: Mutex<Option<Backoff>>,
    closed: AtomicBool,
    /// The last insert failed: the next one may repeat rows it stored.
    insert_failed: AtomicBool,
}

struct Backoff {
    until: Instant,
    delay: Duration,
    reason: String,
}

impl ClickHouseStore {
    /// Parses the DSN and starts preparing the database in the background;
    /// fails only for a DSN that can never work.
    pub fn open(url: &str) -> Result<ClickHouseStore, StoreError> {
        ClickHouseStore::open_with(url, Options::default())
    }

    pub fn open_with(url: &str, options: Options) -> Result<ClickHouseStore, StoreError> {
        let dsn = Dsn::parse(url).map_err(|e| {
            StoreError::Rejected(format!(
                "clickhouse url {}: {e}",
                crate::config::redact_url(url)
            ))
        })?;
        let inner = Arc::new(Inner {
            dsn,
            options,
            features: Mutex::new(Features::of(ServerVersion {
                major: 18,
                minor: 16,
            })),
            idle: Mutex::new(Vec::new()),
            connections: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
            preparing: tokio::sync::Mutex::new(()),
            prepared: AtomicBool::new(false),
            backoff: Mutex::new(None),
            closed: AtomicBool::new(false),
            insert_failed: AtomicBool::new(false),
        });
        let starter = tokio::spawn(prepare_until_ready(Arc::clone(&inner)));
        Ok(ClickHouseStore {
            inner,
            starter: Mutex::new(Some(starter)),
        })
    }
}

/// Retries preparing until it works, so `/health` turns green and the schema
/// exists without waiting for the first request.
async fn prepare_until_ready(inner: Arc<Inner>) {
    loop {
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        match inner.prepare().await {
            Ok(()) => return,
            Err(_) => {
                let wait = inner.retry_in().unwrap_or(RETRY_MIN);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// How a failure affects the connection and the caller.
fn classify(error: KlickhouseError) -> (StoreError, bool) {
    match error {
        KlickhouseError::ServerException {
            code,
            name,
            message,
            ..
        } => {
            let text = format!("clickhouse refused: {name} ({code}): {message}");
            // Codes that mean "not now" rather than "never": overload, limits,
            // timeouts, a table or database missing (being recreated).
            let transient = matches!(
                code,
                3 | 60
                    | 81
                    | 159
                    | 160
                    | 164
                    | 202
                    | 203
                    | 209
                    | 210
                    | 241
                    | 242
                    | 252
                    | 279
                    | 285
                    | 319
                    | 425
            );
            if transient {
                (StoreError::Unavailable(text), false)
            } else {
                (StoreError::Internal(text), false)
            }
        }
        // Anything else is the connection: drop it.
        other => (
            StoreError::Unavailable(format!("clickhouse connection failed: {other}")),
            true,
        ),
    }
}

impl Inner {
    fn layout(&self) -> schema::Layout {
        schema::Layout {
            cluster: self.options.cluster.clone(),
            replicated: self.options.replicated,
        }
    }

    fn address(&self) -> String {
        format!("{}:{}", self.dsn.host, self.dsn.port)
    }

    fn retry_in(&self) -> Option<Duration> {
        let backoff = self.backoff.lock().ok()?;
        backoff
            .as_ref()
            .map(|b| b.until.saturating_duration_since(Instant::now()))
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let client = self.connect_to(&self.dsn.host, self.dsn.port).await?;
        if self.options.cluster.is_some() {
            // Settings last as long as the connection: an insert into the
            // Distributed table returns only once every shard stored its
            // rows, so a 202 still means stored.
            run(&client, client.execute("SET insert_distributed_sync = 1")).await?;
        }
        Ok(client)
    }

    async fn connect_to(&self, host: &str, port: u16) -> Result<Client, StoreError> {
        let options = ClientOptions {
            username: self.dsn.user.clone(),
            password: self.dsn.password.clone(),
            // The database may not exist yet: names are always qualified.
            default_database: String::new(),
            ..ClientOptions::default()
        };
        let address = (host.to_string(), port);
        match timeout(CONNECT_TIMEOUT, Client::connect(address, options)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(error)) => Err(StoreError::Unavailable(format!(
                "cannot connect to clickhouse at {host}:{port}: {error}"
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "cannot connect to clickhouse at {host}:{port}: no answer within {CONNECT_TIMEOUT:?}"
            ))),
        }
    }

    /// Every host of the configured cluster, from the server's
    /// `system.clusters`; empty on one server.
    async fn cluster_hosts(&self, client: &Client) -> Result<Vec<Host>, StoreError> {
        let Some(cluster) = &self.options.cluster else {
            return Ok(Vec::new());
        };
        let hosts: Vec<Host> =
            run(client, collect::<Host>(client, sql::cluster_hosts(cluster))).await?;
        if hosts.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "clickhouse at {} has no cluster {cluster:?} in its remote_servers",
                self.address()
            )));
        }
        Ok(hosts)
    }

    /// A fresh connection to each host of the cluster (one to the server on
    /// one server), for work that must run on every host.
    async fn host_clients(&self) -> Result<Vec<Client>, StoreError> {
        let client = self.check_out().await?;
        let clients = self.everywhere(&client).await;
        if clients.is_ok() {
            self.check_in(client);
        }
        clients
    }

    /// A connection to each host of the cluster, or the one we have.
    async fn everywhere(&self, client: &Client) -> Result<Vec<Client>, StoreError> {
        let hosts = self.cluster_hosts(client).await?;
        if hosts.is_empty() {
            return Ok(vec![client.clone()]);
        }
        let mut clients = Vec::with_capacity(hosts.len());
        for host in &hosts {
            clients.push(
                self.connect_to(&host.address, host.port)
                    .await
                    .map_err(|error| {
                        StoreError::Unavailable(format!("clickhouse shard {}: {error}", host.shard))
                    })?,
            );
        }
        Ok(clients)
    }

    /// Reads the version and brings the schema up to date, unless that was
    /// done since the last connection failure.
    async fn prepare(&self) -> Result<(), StoreError> {
        if self.prepared.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one_at_a_time = self.preparing.lock().await;
        if self.prepared.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Ok(backoff) = self.backoff.lock()
            && let Some(backoff) = backoff.as_ref()
            && Instant::now() < backoff.until
        {
            return Err(StoreError::Unavailable(backoff.reason.clone()));
        }
        let outcome = match self.connect().await {
            Ok(client) => {
                let migrated = self.migrate(&client).await;
                if migrated.is_ok() {
                    self.check_in(client);
                }
                migrated
            }
            Err(error) => Err(error),
        };
        let mut backoff = self.backoff.lock().map_err(|_| poisoned())?;
        match &outcome {
            Ok(()) => {
                if backoff.take().is_some() {
                    tracing::info!(address = %self.address(), "clickhouse is back");
                }
                self.prepared.store(true, Ordering::Release);
            }
            Err(error) => {
                let delay = backoff
                    .as_ref()
                    .map(|b| (b.delay * 2).min(RETRY_MAX))
                    .unwrap_or(RETRY_MIN);
                if backoff.is_none() {
                    tracing::warn!(%error, "clickhouse not ready; retrying in the background");
                }
                *backoff = Some(Backoff {
                    until: Instant::now() + delay,
                    delay,
                    reason: error.to_string(),
                });
            }
        }
        outcome
    }

    async fn migrate(&self, client: &Client) -> Result<(), StoreError> {
        let database = &self.dsn.database;
        let version: String = run(client, async {
            let row: One<String> = client.query_one("SELECT version()").await?;
            Ok(row.0)
        })
        .await?;
        let server = ServerVersion::parse(&version).ok_or_else(|| {
            StoreError::Unavailable(format!(
                "clickhouse reported an unreadable version {version:?}"
            ))
        })?;
        let features = Features::of(server);
        if let Ok(mut known) = self.features.lock() {
            *known = features;
        }
        execute(client, &schema::create_database(database)).await?;
        execute(client, &schema::create_migrations_table(database)).await?;
        let applied: Vec<One<u32>> = run(
            client,
            collect::<One<u32>>(client, schema::applied_versions(database)),
        )
        .await?;
        let applied: Vec<u32> = applied.into_iter().map(|One(v)| v).collect();
        if let Some(newest) = applied.iter().max().filter(|v| **v > schema::LATEST) {
            return Err(StoreError::Unavailable(format!(
                "clickhouse schema version {newest} is newer than this binary understands ({}); upgrade oglogstream",
                schema::LATEST
            )));
        }
        // On a cluster, tables are made on every host, one statement at a
        // time (each idempotent), so no ZooKeeper is needed for DDL. Only
        // then must every host answer: a store starting while a replica is
        // down still starts.
        let mut hosts: Option<Vec<Client>> = None;
        for version in 1..=schema::LATEST {
            if applied.contains(&version) {
                continue;
            }
            let Some(steps) = schema::migration(version, database, features, &self.layout()) else {
                continue;
            };
            if hosts.is_none() {
                let clients = self.everywhere(client).await?;
                for host in &clients {
                    execute(host, &schema::create_database(database)).await?;
                    execute(host, &schema::create_migrations_table(database)).await?;
                }
                hosts = Some(clients);
            }
            let hosts = hosts.as_deref().unwrap_or_default();
            for step in steps {
                match step {
                    schema::Step::Sql(statement) => {
                        for host in hosts {
                            execute(host, &statement).await?;
                        }
                    }
                    schema::Step::UpgradeLogs => upgrade_logs(client, database, features).await?,
                }
            }
            // Recorded on every host, so a store whose DSN names another
            // host (or starts while this one is down) knows it is done.
            for host in hosts {
                execute(host, &schema::record_version(database, version)).await?;
            }
            tracing::info!(version, database = %database, "clickhouse schema migrated");
        }
        tracing::info!(
            server = %version,
            ?features,
            database = %database,
            "clickhouse ready"
        );
        Ok(())
    }

    fn check_in(&self, client: Client) {
        if client.is_closed() || self.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_CONNECTIONS
        {
            idle.push(client);
        }
    }

    async fn check_out(&self) -> Result<Client, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("clickhouse store is closed".into()));
        }
        self.prepare().await?;
        let pooled = {
            let mut idle = self.idle.lock().map_err(|_| poisoned())?;
            loop {
                match idle.pop() {
                    Some(client) if client.is_closed() => continue,
                    other => break other,
                }
            }
        };
        match pooled {
            Some(client) => Ok(client),
            None => self.connect().await.inspect_err(|_| self.lost()),
        }
    }

    /// The server went away: verify version and schema on the next connection.
    fn lost(&self) {
        self.prepared.store(false, Ordering::Release);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Runs `work` on a pooled connection, confirms the connection survived
    /// it, and returns the connection to the pool.
    async fn with_client<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, KlickhouseError>>,
    {
        self.with_client_for(STATEMENT_TIMEOUT, Confirm::After, work)
            .await
    }

    /// [`Inner::with_client`] giving up after `limit`; `confirm` says whether
    /// `work` confirms the connection itself (see [`collect`]).
    async fn with_client_for<T, F, Fut>(
        &self,
        limit: Duration,
        confirm: Confirm,
        work: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, KlickhouseError>>,
    {
        let _turn = self
            .connections
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("clickhouse store is closed".into()))?;
        let client = self.check_out().await?;
        let outcome = match timeout(limit, work(client.clone())).await {
            Err(_) => Err((
                StoreError::Unavailable(format!("clickhouse did not answer within {limit:?}")),
                true,
            )),
            Ok(Err(error)) => Err(classify(error)),
            Ok(Ok(value)) if confirm == Confirm::Done => Ok(value),
            Ok(Ok(value)) => {
                match timeout(CONNECT_TIMEOUT, client.query_one::<One<u8>>("SELECT 1")).await {
                    Ok(Ok(One(1))) => Ok(value),
                    Ok(Ok(_)) => Err((
                        StoreError::Internal("clickhouse answered SELECT 1 oddly".into()),
                        true,
                    )),
                    Ok(Err(error)) => Err(classify(error)),
                    Err(_) => Err((
                        StoreError::Unavailable("clickhouse stopped answering".into()),
                        true,
                    )),
                }
            }
        };
        match outcome {
            Ok(value) => {
                self.check_in(client);
                Ok(value)
            }
            Err((error, connection_broken)) => {
                if connection_broken || matches!(error, StoreError::Unavailable(_)) {
                    // Dropping the client closes its connection; a schema
                    // error (table missing) re-runs the migrations.
                    self.lost();
                } else {
                    self.check_in(client);
                }
                Err(error)
            }
        }
    }
}

/// Who makes sure a statement's connection survived it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Confirm {
    /// `with_client` runs `SELECT 1` after the work.
    After,
    /// The work did (reads queue their `SELECT 1` behind the statement).
    Done,
}

fn poisoned() -> StoreError {
    StoreError::Internal("clickhouse pool lock poisoned".into())
}

async fn run<T>(
    client: &Client,
    work: impl Future<Output = Result<T, KlickhouseError>>,
) -> Result<T, StoreError> {
    run_for(STATEMENT_TIMEOUT, client, work).await
}

async fn run_for<T>(
    limit: Duration,
    _client: &Client,
    work: impl Future<Output = Result<T, KlickhouseError>>,
) -> Result<T, StoreError> {
    match timeout(limit, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify(error).0),
        Err(_) => Err(StoreError::Unavailable(
            "clickhouse did not answer in time".into(),
        )),
    }
}

async fn execute(client: &Client, statement: &str) -> Result<(), StoreError> {
    let outcome = run(client, client.execute(statement)).await;
    match outcome {
        // Two instances creating the same object at once: the other won.
        Err(StoreError::Internal(text)) if text.contains("(57)") || text.contains("(82)") => Ok(()),
        // The same for a column (18.16 has no ADD COLUMN IF NOT EXISTS), or
        // a replica that got the ALTER from another one already.
        Err(StoreError::Internal(text))
            if text.contains("(44)") && text.contains("already exists") =>
        {
            Ok(())
        }
        other => other,
    }
}

/// One statement of a rebuild copies a whole day of logs.
const COPY_TIMEOUT: Duration = Duration::from_secs(3600);

/// [`schema::Step::UpgradeLogs`]: gives a version-1 `logs` the `ts`
/// column and the time-first sort key, keeping every row and column, and
/// adds the hour rollup. Writers should be stopped meanwhile (the upgrade
/// note in docs/split-roles.md): rows written to the old table after its
/// partition was copied would not be carried over, nor counted while the
/// views are away.
async fn upgrade_logs(
    client: &Client,
    database: &str,
    features: Features,
) -> Result<(), StoreError> {
    let number = |statement: String| async move {
        run(client, async {
            let One(n): One<u64> = client.query_one(statement).await?;
            Ok(n)
        })
        .await
    };
    if number(schema::has_ts_column(database)).await? == 0 {
        execute(client, &schema::add_ts_column(database)).await?;
    }
    let keys: Vec<One<String>> = run(
        client,
        collect::<One<String>>(client, schema::logs_keys(database)),
    )
    .await?;
    let rebuilt = keys
        .first()
        .is_some_and(|One(keys)| *keys == schema::current_logs_keys());
    if !rebuilt {
        let before = number(format!("SELECT count() FROM {database}.logs")).await?;
        let partitions: Vec<One<String>> = run(
            client,
            collect::<One<String>>(
                client,
                format!(
                    "SELECT DISTINCT partition_id FROM system.parts \
                     WHERE database = '{database}' AND table = 'logs' AND active"
                ),
            ),
        )
        .await?;
        let partitions: Vec<String> = partitions
            .into_iter()
            .map(|One(p)| p)
            .filter(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
            .collect();
        tracing::info!(
            database = %database,
            rows = before,
            "rebuilding clickhouse logs with the time-first sort key"
        );
        for statement in schema::rebuild_logs(database, &partitions) {
            if statement.starts_with("DROP TABLE IF EXISTS") && statement.ends_with("_mv") {
                // klickhouse can report a dropped connection as success: the
                // copy is checked before anything of the old layout goes.
                let copied = number(format!("SELECT count() FROM {database}.logs_rebuild")).await?;
                if copied < before {
                    return Err(StoreError::Unavailable(format!(
                        "rebuilding {database}.logs copied {copied} of {before} rows; will retry"
                    )));
                }
            }
            run_for(COPY_TIMEOUT, client, client.execute(statement.as_str())).await?;
        }
    }
    let hour_view = number(schema::table_exists(database, "counts_hour_mv")).await? == 1;
    if !rebuilt || !hour_view {
        for statement in schema::hour_rollup_backfill(database, features) {
            run_for(COPY_TIMEOUT, client, client.execute(statement.as_str())).await?;
        }
    }
    Ok(())
}

// ---- rows ---------------------------------------------------------------------

/// Values by position; klickhouse's own conversions refuse some column types
/// (`LowCardinality(String)` into `String`), and these rows are ours anyway.
fn take(values: &mut std::vec::IntoIter<(&str, &Type, Value)>) -> Result<Value, KlickhouseError> {
    values
        .next()
        .map(|(_, _, value)| value)
        .ok_or(KlickhouseError::OutOfBounds)
}

fn unexpected(value: &Value) -> KlickhouseError {
    KlickhouseError::DeserializeError(format!("unexpected value {value:?}"))
}

fn string(value: Value) -> Result<String, KlickhouseError> {
    match value {
        Value::String(bytes) => Ok(String::from_utf8(bytes)?),
        other => Err(unexpected(&other)),
    }
}

fn int(value: Value) -> Result<i128, KlickhouseError> {
    Ok(match value {
        Value::Int8(v) => v.into(),
        Value::Int16(v) => v.into(),
        Value::Int32(v) => v.into(),
        Value::Int64(v) => v.into(),
        Value::UInt8(v) => v.into(),
        Value::UInt16(v) => v.into(),
        Value::UInt32(v) => v.into(),
        Value::UInt64(v) => v.into(),
        other => return Err(unexpected(&other)),
    })
}

/// `impl Row` for a row type that is only read: `$columns` values, taken
/// in order from `$values` by `$body`.
macro_rules! read_only_row {
    ($name:ty, $columns:expr, |$values:ident| $body:expr) => {
        impl Row for $name {
            const COLUMN_COUNT: Option<usize> = Some($columns);

            fn column_names() -> Option<Vec<Cow<'static, str>>> {
                None
            }

            fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
                let mut $values = map.into_iter();
                $body
            }

            fn serialize_row(
                self,
                _: &klickhouse::IndexMap<String, Type>,
            ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
                Err(KlickhouseError::SerializeError("read-only row".into()))
            }
        }
    };
}

/// A one-column row.
struct One<T>(T);

trait FromValue: Sized {
    fn from_value(value: Value) -> Result<Self, KlickhouseError>;
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, KlickhouseError> {
        string(value)
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, KlickhouseError> {
                let v = int(value)?;
                <$t>::try_from(v).map_err(|_| KlickhouseError::DeserializeError(format!("{v} out of range")))
            }
        }
    )*};
}
int_from_value!(u8, u16, u32, u64, i64);

impl<T: FromValue> Row for One<T> {
    const COLUMN_COUNT: Option<usize> = Some(1);

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        Ok(One(T::from_value(take(&mut map.into_iter())?)?))
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        Err(KlickhouseError::SerializeError("read-only row".into()))
    }
}

/// A row of `logs`, in `INSERT` column order.
struct LogRow(LogRecord);

use sql::INSERT_COLUMNS;

impl Row for LogRow {
    /// Six read (`sql::LOG_COLUMNS`), eight written (`INSERT_COLUMNS`).
    const COLUMN_COUNT: Option<usize> = None;

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        let mut values = map.into_iter();
        let timestamp = i64::from_value(take(&mut values)?)?;
        let id = string(take(&mut values)?)?;
        let code = u8::from_value(take(&mut values)?)?;
        let service = string(take(&mut values)?)?;
        let message = string(take(&mut values)?)?;
        let attributes = string(take(&mut values)?)?;
        Ok(LogRow(LogRecord {
            id,
            timestamp,
            level: Level::from_code(code).ok_or_else(|| {
                KlickhouseError::DeserializeError(format!("unknown level code {code}"))
            })?,
            service,
            message,
            attributes: attributes_from_json(
                Some(&attributes)
                    .filter(|a| !a.is_empty())
                    .map(|a| a.as_str()),
            ),
        }))
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        let record = self.0;
        Ok(vec![
            (Cow::Borrowed("ts_us"), Value::Int64(record.timestamp)),
            (Cow::Borrowed("id"), Value::String(record.id.into_bytes())),
            (Cow::Borrowed("level"), Value::UInt8(record.level.code())),
            (
                Cow::Borrowed("service"),
                Value::String(record.service.into_bytes()),
            ),
            (
                Cow::Borrowed("message"),
                Value::String(record.message.into_bytes()),
            ),
            (
                Cow::Borrowed("attributes"),
                Value::String(
                    attributes_to_json(&record.attributes)
                        .unwrap_or_default()
                        .into_bytes(),
                ),
            ),
            // Sorted by key: the map is a BTreeMap.
            (
                Cow::Borrowed("attr_keys"),
                Value::Array(
                    record
                        .attributes
                        .keys()
                        .map(|key| Value::String(key.clone().into_bytes()))
                        .collect(),
                ),
            ),
            (
                Cow::Borrowed("attr_values"),
                Value::Array(
                    record
                        .attributes
                        .into_values()
                        .map(|value| Value::String(value.into_bytes()))
                        .collect(),
                ),
            ),
        ])
    }
}

/// `(bucket, level, service, count)` from [`sql::counts`].
struct CountRow {
    bucket: Micros,
    level: Option<Level>,
    service: String,
    count: u64,
}

read_only_row!(CountRow, 4, |values| {
    Ok(CountRow {
        bucket: i64::from_value(take(&mut values)?)?,
        level: Level::from_code(u8::from_value(take(&mut values)?)?),
        service: string(take(&mut values)?)?,
        count: u64::from_value(take(&mut values)?)?,
    })
});

/// Collects every row, failing on the first error.
/// A row of any shape, read by position.
struct Cells(std::vec::IntoIter<Value>);

impl Row for Cells {
    const COLUMN_COUNT: Option<usize> = None;

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        let values: Vec<Value> = map.into_iter().map(|(_, _, value)| value).collect();
        Ok(Cells(values.into_iter()))
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        Err(KlickhouseError::SerializeError("read-only row".into()))
    }
}

impl Cells {
    fn take(&mut self) -> Result<Value, StoreError> {
        self.0
            .next()
            .ok_or_else(|| StoreError::Internal("clickhouse answered too few columns".into()))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        string(self.take()?).map_err(|e| StoreError::Internal(e.to_string()))
    }

    fn count(&mut self) -> Result<u64, StoreError> {
        u64::from_value(self.take()?).map_err(|e| StoreError::Internal(e.to_string()))
    }
}

async fn collect<T: Row>(client: &Client, statement: String) -> Result<Vec<T>, KlickhouseError> {
    let mut rows = client.query::<T, _>(statement).await?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await {
        out.push(row?);
    }
    Ok(out)
}

/// [`collect`], confirmed: a `SELECT 1` queued on the connection right
/// behind the statement answers only if the connection outlived the
/// statement's last block (klickhouse ends a cut-off result like a whole
/// one), at the cost of no extra wait.
async fn collect_confirmed<T: Row>(
    client: &Client,
    statement: String,
) -> Result<Vec<T>, KlickhouseError> {
    let mut rows = client.query::<T, _>(statement).await?;
    let drain = async move {
        let mut out = Vec::new();
        while let Some(row) = rows.next().await {
            out.push(row?);
        }
        Ok::<_, KlickhouseError>(out)
    };
    let (out, confirmed) = tokio::join!(drain, client.query_one::<One<u8>>("SELECT 1"));
    match confirmed? {
        One(1) => out,
        One(other) => Err(KlickhouseError::ProtocolError(format!(
            "clickhouse answered SELECT 1 with {other}"
        ))),
    }
}

/// The time one answer may take, shared by its statements.
struct ReadBudget {
    deadline: Instant,
    total: Duration,
}

impl ReadBudget {
    fn new(total: Duration) -> ReadBudget {
        ReadBudget {
            deadline: Instant::now() + total,
            total,
        }
    }

    /// `statement` bounded on the server by what is left, and how long to
    /// wait for it here.
    fn bound(&self, statement: &str) -> Result<(String, Duration), StoreError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(StoreError::Unavailable(format!(
                "the query took longer than its {:?} limit",
                self.total
            )));
        }
        let seconds = left.as_secs_f64().ceil() as u64;
        Ok((
            sql::with_time_limit(statement, seconds),
            left + TIME_LIMIT_GRACE,
        ))
    }
}

impl ClickHouseStore {
    fn database(&self) -> &str {
        &self.inner.dsn.database
    }

    fn features(&self) -> Features {
        self.inner
            .features
            .lock()
            .map(|f| *f)
            .unwrap_or_else(|poisoned| *poisoned.into_inner())
    }

    /// Every row of a read statement, within the budget.
    async fn read<T: Row + Send + 'static>(
        &self,
        budget: &ReadBudget,
        statement: &str,
    ) -> Result<Vec<T>, StoreError> {
        let shape = statement;
        let (statement, limit) = budget.bound(statement)?;
        let rows = self
            .inner
            .with_client_for(limit, Confirm::Done, |client| async move {
                collect_confirmed::<T>(&client, statement).await
            })
            .await;
        // A refusal is a bug of ours or a layout's SQL dialect: the
        // statement's shape (its values elided, as they may be users' text)
        // is what finds it.
        if let Err(StoreError::Internal(error)) = &rows {
            tracing::error!(%error, statement = %sql::shape(shape), "clickhouse refused a read");
        }
        rows
    }

    async fn counts(
        &self,
        filter: &LogFilter,
        grouping: sql::Grouping,
    ) -> Result<Vec<CountRow>, StoreError> {
        let budget = ReadBudget::new(self.inner.options.read_timeout);
        self.read(
            &budget,
            &sql::counts(self.database(), self.features(), filter, grouping),
        )
        .await
    }

    /// Which of `records`' ids are stored, looked up within their time range.
    async fn stored_ids(&self, records: &[&LogRecord]) -> Result<HashSet<String>, StoreError> {
        let budget = ReadBudget::new(STATEMENT_TIMEOUT);
        let mut stored = HashSet::new();
        for chunk in records.chunks(IDS_PER_LOOKUP) {
            let (from, to) = chunk
                .iter()
                .fold((Micros::MAX, Micros::MIN), |(a, b), record| {
                    (a.min(record.timestamp), b.max(record.timestamp))
                });
            let ids: Vec<&str> = chunk.iter().map(|record| record.id.as_str()).collect();
            let statement = sql::stored_ids(self.database(), &ids, (from, to));
            let found: Vec<One<String>> = self.read(&budget, &statement).await?;
            stored.extend(found.into_iter().map(|One(id)| id));
        }
        Ok(stored)
    }

    /// Where the logs are, from part metadata.
    async fn extent(&self, budget: &ReadBudget) -> Result<windows::Extent, StoreError> {
        let statement = sql::extent(self.database(), self.inner.options.cluster.as_deref());
        let rows: Vec<PartRow> = self.read(budget, &statement).await?;
        Ok(windows::Extent {
            parts: rows.into_iter().map(PartRow::span).collect(),
        })
    }
}

/// A host of a cluster, from [`sql::cluster_hosts`].
struct Host {
    shard: u32,
    address: String,
    port: u16,
}

read_only_row!(Host, 3, |values| {
    Ok(Host {
        shard: u32::from_value(take(&mut values)?)?,
        address: string(take(&mut values)?)?,
        port: u16::from_value(take(&mut values)?)?,
    })
});

/// `(rows, min_time, max_time)` of a part, from [`sql::extent`].
struct PartRow {
    rows: u64,
    first_second: u64,
    last_second: u64,
}

impl PartRow {
    fn span(self) -> windows::PartSpan {
        const SECOND: Micros = 1_000_000;
        let (start, end) = if self.last_second == 0 {
            // No time range in the metadata (not our layout): anywhere.
            (0, MAX_MICROS)
        } else if self.last_second as i64 >= schema::TS_CLAMP_SECONDS {
            // Logs from the clamp on share its second: up to the end of time.
            (self.first_second as i64 * SECOND, MAX_MICROS)
        } else {
            (
                self.first_second as i64 * SECOND,
                (self.last_second as i64 + 1) * SECOND,
            )
        };
        windows::PartSpan {
            rows: self.rows,
            start,
            end,
        }
    }
}

read_only_row!(PartRow, 3, |values| {
    Ok(PartRow {
        rows: u64::from_value(take(&mut values)?)?,
        first_second: u64::from_value(take(&mut values)?)?,
        last_second: u64::from_value(take(&mut values)?)?,
    })
});

#[async_trait]
impl Store for ClickHouseStore {
    fn kind(&self) -> &'static str {
        "clickhouse"
    }

    /// One `INSERT` of every batch. On one server ClickHouse makes an
    /// insert of one block atomic. Through a `Distributed` table it is not:
    /// a shard that is down fails the insert after the others stored their
    /// part. So after any failed insert the next one (the batcher's retry of
    /// the same batches) first asks which of its ids are stored already and
    /// writes only the rest: a retry never duplicates, on any engine.
    /// (A redelivery after a crash is deduplicated by the processor, which
    /// asks the same question.)
    async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError> {
        let mut rows: Vec<LogRow> = batches
            .iter()
            .flat_map(|batch| batch.iter().cloned().map(LogRow))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        if self.inner.insert_failed.load(Ordering::Acquire) {
            let records: Vec<&LogRecord> = rows.iter().map(|row| &row.0).collect();
            let stored = self.stored_ids(&records).await?;
            rows.retain(|row| !stored.contains(&row.0.id));
            if rows.is_empty() {
                self.inner.insert_failed.store(false, Ordering::Release);
                return Ok(());
            }
        }
        // 18.16 needs the explicit column list to accept a Native block.
        let statement = format!(
            "INSERT INTO {}.logs ({INSERT_COLUMNS}) FORMAT Native",
            self.inner.dsn.database
        );
        let outcome = self
            .inner
            .with_client(|client| async move { client.insert_native_block(statement, rows).await })
            .await;
        self.inner
            .insert_failed
            .store(outcome.is_err(), Ordering::Release);
        outcome
    }

    /// The processor's question about a redelivered batch (see
    /// [`Store::existing_ids`]), answered like the retry's above.
    async fn existing_ids(&self, batches: &[LogBatch]) -> Result<HashSet<String>, StoreError> {
        let records: Vec<&LogRecord> = batches.iter().flat_map(|batch| batch.iter()).collect();
        self.stored_ids(&records).await
    }

    /// Steps through time windows from the edge the order starts at (see
    /// `windows.rs`) until the page is full, so a page reads about what it
    /// returns rather than sorting the whole range.
    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let budget = ReadBudget::new(self.inner.options.read_timeout);
        let limit = query.limit as u64;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (mut from, mut to) = query.filter.bounds();
        // A cursor narrows the range the windows step through to the side
        // still to read; the rows of its own microsecond are then told
        // apart by id (`sql::window_page`).
        if let Some(after) = &query.after {
            match query.order {
                Order::Desc => to = to.min(after.timestamp.saturating_add(1)),
                Order::Asc => from = from.max(after.timestamp),
            }
        }
        if from >= to {
            return Ok(Vec::new());
        }
        let extent = self.extent(&budget).await?;
        let mut windows = windows::Windows::new(
            &extent,
            from,
            to,
            query.order,
            query.offset as u64 + limit,
            self.inner.options.stepping.for_filter(&query.filter),
        );
        let database = self.database();
        let features = self.features();
        let mut skip = query.offset as u64;
        let mut page = Vec::new();
        while (page.len() as u64) < limit {
            let Some(window) = windows.next_window() else {
                break;
            };
            if skip > FETCH_TO_SKIP {
                let counted: Vec<One<u64>> = self
                    .read(
                        &budget,
                        &sql::window_count(database, features, query, window),
                    )
                    .await?;
                let in_window = counted.first().map_or(0, |One(n)| *n);
                if in_window <= skip {
                    skip -= in_window;
                    windows.found(in_window, skip + limit - page.len() as u64);
                    continue;
                }
            }
            let want = limit - page.len() as u64;
            // Skipping up to FETCH_TO_SKIP rows here rather than on the
            // server tells how many the window held when it falls short.
            let (server_skip, fetch) = if skip > FETCH_TO_SKIP {
                (skip, want)
            } else {
                (0, skip + want)
            };
            let statement = sql::window_page(
                database,
                features,
                query,
                window,
                (server_skip, fetch),
                self.inner.options.cluster.is_some(),
            );
            let rows: Vec<LogRow> = self.read(&budget, &statement).await?;
            let matched = server_skip + rows.len() as u64;
            let skipped_here = (skip - server_skip).min(rows.len() as u64);
            skip -= server_skip + skipped_here;
            page.extend(
                rows.into_iter()
                    .skip(skipped_here as usize)
                    .map(|row| row.0),
            );
            windows.found(matched, skip + limit.saturating_sub(page.len() as u64));
        }
        page.truncate(limit as usize);
        Ok(page)
    }

    /// Counted exactly by the server: level and service from the counts
    /// (the rollups when the filter allows), attributes by `ARRAY JOIN` over
    /// the attribute arrays (through `Distributed` on a cluster, which
    /// merges the shards' groups).
    async fn facets(&self, query: &FacetQuery) -> Result<Facets, StoreError> {
        let keys = match &query.fields {
            None => self.attribute_keys(&query.filter).await?,
            Some(_) => Vec::new(),
        };
        let fields = facets::chosen_fields(query, &keys);
        let mut tallies: Vec<Tally> = fields.iter().map(|_| Tally::default()).collect();
        let mut total = 0;
        for group in self.level_service_counts(&query.filter).await? {
            total += group.count;
            for (field, tally) in fields.iter().zip(tallies.iter_mut()) {
                match field {
                    FieldName::Level => tally.add(group.level.as_str(), group.count),
                    FieldName::Text(TextField::Service) => tally.add(&group.service, group.count),
                    _ => {}
                }
            }
        }
        let mut finished: Vec<facets::FieldFacet> = fields
            .iter()
            .cloned()
            .zip(tallies)
            .map(|(field, tally)| tally.finish(field, query.limit))
            .collect();
        let attribute_keys: Vec<&str> = fields
            .iter()
            .filter_map(|field| match field {
                FieldName::Text(TextField::Attribute(key)) => Some(key.as_str()),
                _ => None,
            })
            .collect();
        if !attribute_keys.is_empty() && total > 0 {
            let (database, features) = (self.database(), self.features());
            let budget = ReadBudget::new(self.inner.options.read_timeout);
            let top: Vec<Cells> = self
                .read(
                    &budget,
                    &query_sql::attribute_top_values(
                        database,
                        features,
                        &query.filter,
                        &attribute_keys,
                        query.limit,
                    ),
                )
                .await?;
            let totals: Vec<Cells> = self
                .read(
                    &budget,
                    &query_sql::attribute_value_totals(
                        database,
                        features,
                        &query.filter,
                        &attribute_keys,
                    ),
                )
                .await?;
            let positions: std::collections::HashMap<String, usize> = finished
                .iter()
                .enumerate()
                .filter_map(|(at, facet)| match &facet.field {
                    FieldName::Text(TextField::Attribute(key)) => Some((key.clone(), at)),
                    _ => None,
                })
                .collect();
            let mut having: Vec<u64> = vec![0; finished.len()];
            for mut row in totals {
                let (key, logs, distinct) = (row.string()?, row.count()?, row.count()?);
                if let Some(&at) = positions.get(&key) {
                    having[at] = logs;
                    finished[at].distinct = distinct;
                }
            }
            for mut row in top {
                let (key, value, count) = (row.string()?, row.string()?, row.count()?);
                if let Some(&at) = positions.get(&key) {
                    finished[at].values.push((value, count));
                }
            }
            for (facet, having) in finished.iter_mut().zip(having) {
                if matches!(facet.field, FieldName::Text(TextField::Attribute(_))) {
                    let listed: u64 = facet.values.iter().map(|(_, n)| n).sum();
                    facet.other = having.saturating_sub(listed);
                }
            }
        }
        Ok(Facets {
            total,
            approximate: false,
            fields: finished,
        })
    }

    async fn attribute_keys(&self, filter: &LogFilter) -> Result<Vec<KeyCount>, StoreError> {
        let budget = ReadBudget::new(self.inner.options.read_timeout);
        let statement = query_sql::attribute_key_counts(self.database(), self.features(), filter);
        let rows: Vec<Cells> = self.read(&budget, &statement).await?;
        let mut keys = rows
            .into_iter()
            .map(|mut row| {
                Ok(KeyCount {
                    key: row.string()?,
                    count: row.count()?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        facets::sort_key_counts(&mut keys);
        Ok(keys)
    }

    async fn level_service_counts(
        &self,
        filter: &LogFilter,
    ) -> Result<Vec<LevelServiceCount>, StoreError> {
        Ok(self
            .counts(filter, sql::Grouping::LevelService)
            .await?
            .into_iter()
            .filter(|row| row.count > 0)
            .filter_map(|row| {
                Some(LevelServiceCount {
                    level: row.level?,
                    service: row.service,
                    count: row.count,
                })
            })
            .collect())
    }

    async fn bucket_counts(&self, query: &HistogramQuery) -> Result<Vec<BucketCount>, StoreError> {
        let rows = self
            .counts(&query.filter, sql::Grouping::BucketLevel(query.interval))
            .await?;
        let mut totals: std::collections::BTreeMap<(Micros, u8), u64> = Default::default();
        for row in rows {
            if let Some(level) = row.level {
                *totals.entry((row.bucket, level.code())).or_default() += row.count;
            }
        }
        Ok(totals
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .filter_map(|((bucket_start, code), count)| {
                Some(BucketCount {
                    bucket_start,
                    level: Level::from_code(code)?,
                    count,
                })
            })
            .collect())
    }

    /// Whole days before the cutoff go by dropping their partitions (cheap);
    /// the rest of the cutoff's day, and the rollup, by an `ALTER ... DELETE`
    /// mutation, which ClickHouse applies in the background: reads may see
    /// the old rows for a few seconds more.
    async fn delete_older_than(&self, cutoff: Micros) -> Result<u64, StoreError> {
        let database = self.database().to_string();
        let layout = self.inner.layout();
        let cutoff_day = crate::domain::time::format_rfc3339(cutoff);
        // "2025-01-31T..." -> 20250131, the partition id of that day.
        let cutoff_day: u32 = cutoff_day[..10].replace('-', "").parse().unwrap_or(0);
        let budget = ReadBudget::new(STATEMENT_TIMEOUT);
        let expired: Vec<One<u64>> = self
            .read(
                &budget,
                &format!("SELECT count() FROM {database}.logs WHERE ts_us < {cutoff}"),
            )
            .await?;
        let expired = expired.first().map_or(0, |One(n)| *n);
        if expired == 0 {
            return Ok(0);
        }
        // Partitions and mutations belong to the local tables: on a cluster,
        // every host deletes its own rows.
        let logs = layout.local("logs");
        for client in self.inner.host_clients().await? {
            let partitions: Vec<One<String>> = run(
                &client,
                collect(
                    &client,
                    format!(
                        "SELECT DISTINCT partition_id FROM system.parts \
                         WHERE database = '{database}' AND table = '{logs}' AND active"
                    ),
                ),
            )
            .await?;
            for One(partition) in partitions {
                if let Ok(day) = partition.parse::<u32>()
                    && day < cutoff_day
                {
                    let statement = format!("ALTER TABLE {database}.{logs} DROP PARTITION {day}");
                    run(&client, client.execute(statement)).await?;
                }
            }
            for (table, column) in [
                ("logs", "ts_us"),
                ("counts_minute", "minute"),
                ("counts_hour", "hour"),
            ] {
                let statement = format!(
                    "ALTER TABLE {database}.{} DELETE WHERE {column} < {cutoff}",
                    layout.local(table)
                );
                run(&client, client.execute(statement)).await?;
            }
        }
        Ok(expired)
    }

    /// On a cluster, every shard must have a replica that answers: the error
    /// names a shard that has none, so `/health` says which. A replica down
    /// in a shard that still has one is logged, not failed: writes and reads
    /// still work.
    async fn check(&self) -> Result<(), StoreError> {
        if self.inner.options.cluster.is_none() {
            return self.inner.with_client(|_client| async { Ok(()) }).await;
        }
        let client = self.inner.check_out().await?;
        let hosts = self.inner.cluster_hosts(&client).await?;
        self.inner.check_in(client);
        let mut shards: std::collections::BTreeMap<u32, (bool, Vec<String>)> = Default::default();
        for host in &hosts {
            let shard = shards.entry(host.shard).or_default();
            match self.inner.connect_to(&host.address, host.port).await {
                Ok(_) => shard.0 = true,
                Err(error) => shard.1.push(error.to_string()),
            }
        }
        let mut down = Vec::new();
        for (shard, (reachable, errors)) in shards {
            if !reachable {
                down.push(format!("shard {shard} is down ({})", errors.join("; ")));
            } else if !errors.is_empty() {
                tracing::warn!(shard, errors = %errors.join("; "), "clickhouse replica down");
            }
        }
        if down.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "clickhouse {}",
                down.join(", ")
            )))
        }
    }

    async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let starter = self.starter.lock().ok().and_then(|mut s| s.take());
        if let Some(starter) = starter {
            starter.abort();
            let _ = starter.await;
        }
        if let Ok(mut idle) = self.inner.idle.lock() {
            idle.clear();
        }
    }
}

/// The SQL this store sends to a server of a given version, for checking it
/// on an engine not run as a server here: the test suite executes the
/// current engine's statements in chdb (ClickHouse in-process) and compares
/// the answers with those of the 18.16 server the other tests use.
pub mod check {
    use super::{query_sql, schema, sql};
    use crate::domain::time::Micros;
    use crate::store::filter::{LogFilter, LogQuery};

    fn features(version: &str) -> Option<schema::Features> {
        schema::ServerVersion::parse(version).map(schema::Features::of)
    }

    /// Every statement a new database gets, in order; `None` for a version
    /// that does not parse.
    pub fn schema(version: &str, database: &str) -> Option<Vec<String>> {
        let features = features(version)?;
        let mut statements = vec![
            schema::create_database(database),
            schema::create_migrations_table(database),
        ];
        for version in 1..=schema::LATEST {
            for step in schema::migration(version, database, features, &schema::Layout::default())
                .unwrap_or_default()
            {
                // The upgrade finds a new database already in shape.
                if let schema::Step::Sql(statement) = step {
                    statements.push(statement);
                }
            }
        }
        Some(statements)
    }

    /// A page as one window over the query's whole range (the store steps
    /// through several; each is this statement with a narrower range).
    pub fn page(version: &str, database: &str, query: &LogQuery) -> Option<String> {
        let (from, to) = query.filter.bounds();
        Some(sql::window_page(
            database,
            features(version)?,
            query,
            (from, to),
            (query.offset as u64, query.limit as u64),
            false,
        ))
    }

    /// Counts by level and service, or by `interval` bucket and level:
    /// `(bucket, level, service, count)` rows.
    /// `SELECT key, logs` for the attribute keys of the matching logs.
    pub fn attribute_keys(version: &str, database: &str, filter: &LogFilter) -> Option<String> {
        Some(query_sql::attribute_key_counts(
            database,
            features(version)?,
            filter,
        ))
    }

    /// `SELECT key, value, logs`: the facet values of attribute `keys`.
    pub fn attribute_values(
        version: &str,
        database: &str,
        filter: &LogFilter,
        keys: &[&str],
        limit: usize,
    ) -> Option<String> {
        Some(query_sql::attribute_top_values(
            database,
            features(version)?,
            filter,
            keys,
            limit,
        ))
    }

    pub fn counts(
        version: &str,
        database: &str,
        filter: &LogFilter,
        interval: Option<Micros>,
    ) -> Option<String> {
        let grouping = match interval {
            Some(interval) => sql::Grouping::BucketLevel(interval),
            None => sql::Grouping::LevelService,
        };
        Some(sql::counts(database, features(version)?, filter, grouping))
    }
}
