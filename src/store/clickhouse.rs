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

mod dsn;
mod query_sql;
mod schema;
mod sql;

use super::facets::{self, FacetQuery, Facets, KeyCount, Tally};
use super::filter::{HistogramQuery, LogFilter, LogQuery};
use super::{BucketCount, LevelServiceCount, Store, StoreError};
use crate::domain::log::{attributes_from_json, attributes_to_json};
use crate::domain::query::{FieldName, TextField};
use crate::domain::time::Micros;
use crate::domain::{Level, LogBatch, LogRecord};
use async_trait::async_trait;
use dsn::Dsn;
use futures_util::StreamExt;
use klickhouse::{Client, ClientOptions, KlickhouseError, Row, Type, Value};
use schema::{Features, ServerVersion};
use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A statement running longer is abandoned with its connection.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE_CONNECTIONS: usize = 4;
/// Statements in flight at once from this process; more wait their turn
/// rather than opening ever more connections.
const MAX_CONNECTIONS: usize = 16;
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub struct ClickHouseStore {
    inner: Arc<Inner>,
    starter: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    dsn: Dsn,
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
        let dsn = Dsn::parse(url).map_err(|e| {
            StoreError::Rejected(format!(
                "clickhouse url {}: {e}",
                crate::config::redact_url(url)
            ))
        })?;
        let inner = Arc::new(Inner {
            dsn,
            idle: Mutex::new(Vec::new()),
            connections: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
            preparing: tokio::sync::Mutex::new(()),
            prepared: AtomicBool::new(false),
            backoff: Mutex::new(None),
            closed: AtomicBool::new(false),
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
        let options = ClientOptions {
            username: self.dsn.user.clone(),
            password: self.dsn.password.clone(),
            // The database may not exist yet: names are always qualified.
            default_database: String::new(),
            ..ClientOptions::default()
        };
        let address = (self.dsn.host.clone(), self.dsn.port);
        match timeout(CONNECT_TIMEOUT, Client::connect(address, options)).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(error)) => Err(StoreError::Unavailable(format!(
                "cannot connect to clickhouse at {}: {error}",
                self.address()
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "cannot connect to clickhouse at {}: no answer within {CONNECT_TIMEOUT:?}",
                self.address()
            ))),
        }
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
        execute(client, &schema::create_database(database)).await?;
        execute(client, &schema::create_migrations_table(database)).await?;
        let current = run(client, async {
            let row: One<u32> = client.query_one(schema::current_version(database)).await?;
            Ok(row.0)
        })
        .await?;
        if current > schema::LATEST {
            return Err(StoreError::Unavailable(format!(
                "clickhouse schema version {current} is newer than this binary understands ({}); upgrade oglogstream",
                schema::LATEST
            )));
        }
        for version in current + 1..=schema::LATEST {
            for statement in schema::migration(version, database, features) {
                execute(client, &statement).await?;
            }
            execute(client, &schema::record_version(database, version)).await?;
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
        let _turn = self
            .connections
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("clickhouse store is closed".into()))?;
        let client = self.check_out().await?;
        let outcome = match timeout(STATEMENT_TIMEOUT, work(client.clone())).await {
            Err(_) => Err((
                StoreError::Unavailable(format!(
                    "clickhouse did not answer within {STATEMENT_TIMEOUT:?}"
                )),
                true,
            )),
            Ok(Err(error)) => Err(classify(error)),
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

fn poisoned() -> StoreError {
    StoreError::Internal("clickhouse pool lock poisoned".into())
}

async fn run<T>(
    _client: &Client,
    work: impl Future<Output = Result<T, KlickhouseError>>,
) -> Result<T, StoreError> {
    match timeout(STATEMENT_TIMEOUT, work).await {
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
        // The same for a column (18.16 has no ADD COLUMN IF NOT EXISTS).
        Err(StoreError::Internal(text))
            if text.contains("(44)") && text.contains("already exists") =>
        {
            Ok(())
        }
        other => other,
    }
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
int_from_value!(u8, u32, u64, i64);

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

const LOG_COLUMNS: &str = "ts_us, id, level, service, message, attributes, attr_keys, attr_values";

impl Row for LogRow {
    /// Six read (the output columns), eight written (the attribute arrays).
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

impl Row for CountRow {
    const COLUMN_COUNT: Option<usize> = Some(4);

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        let mut values = map.into_iter();
        Ok(CountRow {
            bucket: i64::from_value(take(&mut values)?)?,
            level: Level::from_code(u8::from_value(take(&mut values)?)?),
            service: string(take(&mut values)?)?,
            count: u64::from_value(take(&mut values)?)?,
        })
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        Err(KlickhouseError::SerializeError("read-only row".into()))
    }
}

/// A row of any shape, read by position.
struct Cells(Vec<Value>);

impl Row for Cells {
    const COLUMN_COUNT: Option<usize> = None;

    fn column_names() -> Option<Vec<Cow<'static, str>>> {
        None
    }

    fn deserialize_row(map: Vec<(&str, &Type, Value)>) -> Result<Self, KlickhouseError> {
        Ok(Cells(map.into_iter().map(|(_, _, value)| value).collect()))
    }

    fn serialize_row(
        self,
        _: &klickhouse::IndexMap<String, Type>,
    ) -> Result<Vec<(Cow<'static, str>, Value)>, KlickhouseError> {
        Err(KlickhouseError::SerializeError("read-only row".into()))
    }
}

impl Cells {
    fn take(&mut self) -> Result<Value, KlickhouseError> {
        if self.0.is_empty() {
            return Err(KlickhouseError::OutOfBounds);
        }
        Ok(self.0.remove(0))
    }

    fn string(&mut self) -> Result<String, KlickhouseError> {
        string(self.take()?)
    }

    fn count(&mut self) -> Result<u64, KlickhouseError> {
        u64::from_value(self.take()?)
    }
}

/// Collects every row, failing on the first error.
async fn collect<T: Row>(client: &Client, statement: String) -> Result<Vec<T>, KlickhouseError> {
    let mut rows = client.query::<T, _>(statement).await?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().await {
        out.push(row?);
    }
    Ok(out)
}

impl ClickHouseStore {
    async fn counts(
        &self,
        filter: &LogFilter,
        interval: Option<Micros>,
    ) -> Result<Vec<CountRow>, StoreError> {
        let statement = sql::counts(&self.inner.dsn.database, filter, interval);
        self.inner
            .with_client(|client| async move { collect::<CountRow>(&client, statement).await })
            .await
    }
}

#[async_trait]
impl Store for ClickHouseStore {
    fn kind(&self) -> &'static str {
        "clickhouse"
    }

    /// One `INSERT` of every batch: ClickHouse makes an insert of one block
    /// atomic, so a failed call leaves nothing behind to duplicate on retry.
    /// (A retry after an insert that succeeded but whose answer was lost, or a
    /// redelivery after a crash, does duplicate: delivery is at least once.)
    async fn insert(&self, batches: &[LogBatch]) -> Result<(), StoreError> {
        let rows: Vec<LogRow> = batches
            .iter()
            .flat_map(|batch| batch.iter().cloned().map(LogRow))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        // 18.16 needs the explicit column list to accept a Native block.
        let statement = format!(
            "INSERT INTO {}.logs ({LOG_COLUMNS}) FORMAT Native",
            self.inner.dsn.database
        );
        self.inner
            .with_client(|client| async move { client.insert_native_block(statement, rows).await })
            .await
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<LogRecord>, StoreError> {
        let statement = sql::logs(&self.inner.dsn.database, query);
        let rows = self
            .inner
            .with_client(|client| async move { collect::<LogRow>(&client, statement).await })
            .await?;
        Ok(rows.into_iter().map(|row| row.0).collect())
    }

    /// Counted exactly by the server: level and service from the counts
    /// (the rollup when the filter allows), attributes by `ARRAY JOIN`.
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
            .map(|(field, tally)| tally.finish(field, query.limit, 1))
            .collect();
        let attribute_keys: Vec<&str> = fields
            .iter()
            .filter_map(|field| match field {
                FieldName::Text(TextField::Attribute(key)) => Some(key.as_str()),
                _ => None,
            })
            .collect();
        if !attribute_keys.is_empty() && total > 0 {
            let database = &self.inner.dsn.database;
            let top = query_sql::attribute_top_values(
                database,
                &query.filter,
                &attribute_keys,
                query.limit,
            );
            let totals =
                query_sql::attribute_value_totals(database, &query.filter, &attribute_keys);
            let (top, totals) = self
                .inner
                .with_client(|client| async move {
                    let top = collect::<Cells>(&client, top)
                        .await?
                        .into_iter()
                        .map(|mut row| Ok((row.string()?, row.string()?, row.count()?)))
                        .collect::<Result<Vec<_>, KlickhouseError>>()?;
                    let totals = collect::<Cells>(&client, totals)
                        .await?
                        .into_iter()
                        .map(|mut row| Ok((row.string()?, row.count()?, row.count()?)))
                        .collect::<Result<Vec<_>, KlickhouseError>>()?;
                    Ok((top, totals))
                })
                .await?;
            let positions: std::collections::HashMap<String, usize> = finished
                .iter()
                .enumerate()
                .filter_map(|(at, facet)| match &facet.field {
                    FieldName::Text(TextField::Attribute(key)) => Some((key.clone(), at)),
                    _ => None,
                })
                .collect();
            let by_key = |key: &str| positions.get(key).copied();
            let mut having: Vec<u64> = vec![0; finished.len()];
            for (key, logs, distinct) in totals {
                if let Some(at) = by_key(&key) {
                    having[at] = logs;
                    finished[at].distinct = distinct;
                }
            }
            for (key, value, count) in top {
                if let Some(at) = by_key(&key) {
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
        let statement = query_sql::attribute_key_counts(&self.inner.dsn.database, filter);
        let mut keys = self
            .inner
            .with_client(|client| async move {
                collect::<Cells>(&client, statement)
                    .await?
                    .into_iter()
                    .map(|mut row| {
                        Ok(KeyCount {
                            key: row.string()?,
                            count: row.count()?,
                        })
                    })
                    .collect::<Result<Vec<_>, KlickhouseError>>()
            })
            .await?;
        facets::sort_key_counts(&mut keys);
        Ok(keys)
    }

    async fn level_service_counts(
        &self,
        filter: &LogFilter,
    ) -> Result<Vec<LevelServiceCount>, StoreError> {
        Ok(self
            .counts(filter, None)
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
        let rows = self.counts(&query.filter, Some(query.interval)).await?;
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
        let database = self.inner.dsn.database.clone();
        let cutoff_day = crate::domain::time::format_rfc3339(cutoff);
        // "2025-01-31T..." -> 20250131, the partition id of that day.
        let cutoff_day: u32 = cutoff_day[..10].replace('-', "").parse().unwrap_or(0);
        self.inner
            .with_client(|client| async move {
                let One(expired): One<u64> = client
                    .query_one(format!(
                        "SELECT count() FROM {database}.logs WHERE ts_us < {cutoff}"
                    ))
                    .await?;
                if expired == 0 {
                    return Ok(0);
                }
                let partitions: Vec<One<String>> = collect(
                    &client,
                    format!(
                        "SELECT DISTINCT partition FROM system.parts \
                         WHERE database = '{database}' AND table = 'logs' AND active"
                    ),
                )
                .await?;
                for One(partition) in partitions {
                    if let Ok(day) = partition.parse::<u32>()
                        && day < cutoff_day
                    {
                        client
                            .execute(format!("ALTER TABLE {database}.logs DROP PARTITION {day}"))
                            .await?;
                    }
                }
                for (table, column) in [("logs", "ts_us"), ("counts_minute", "minute")] {
                    client
                        .execute(format!(
                            "ALTER TABLE {database}.{table} DELETE WHERE {column} < {cutoff}"
                        ))
                        .await?;
                }
                Ok(expired)
            })
            .await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.inner.with_client(|_client| async { Ok(()) }).await
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
