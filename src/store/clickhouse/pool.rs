//! The connections to ClickHouse and the state of the server behind them: a
//! small pool of klickhouse clients (one TCP connection each; a client runs
//! one statement at a time). A connection that fails or times out is
//! dropped, never reused. ClickHouse being down at start or later is an
//! expected state: the pool keeps retrying with backoff (a start-up task
//! until the first success, then on demand), every call answers
//! [`StoreError::Unavailable`] meanwhile, and on the first connection after
//! an outage the server version is read and the schema migrated again.
//!
//! Reads go through [`Pool::read`] within a [`ReadBudget`]: the statements
//! of one answer share its time limit, on the server too.

use super::client::{
    CONNECT_TIMEOUT, STATEMENT_TIMEOUT, classify, cluster_hosts, collect_confirmed, connect_to,
    everywhere, run,
};
use super::dsn::Dsn;
use super::migrate;
use super::rows::One;
use super::schema::{self, Features, ServerVersion};
use super::settings::Options;
use super::sql;
use crate::store::StoreError;
use klickhouse::{Client, KlickhouseError, Row};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{Instant, timeout};

const IDLE_CONNECTIONS: usize = 4;
/// Statements in flight at once from this process; more wait their turn
/// rather than opening ever more connections.
const MAX_CONNECTIONS: usize = 16;
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long after the server should have stopped a read (its
/// `max_execution_time`) we stop waiting for it.
const TIME_LIMIT_GRACE: Duration = Duration::from_secs(2);

/// The connections to the server (to a cluster through it) and what we
/// know of that server.
pub struct Pool {
    pub dsn: Dsn,
    pub options: Options,
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
    /// The last insert failed: the next one may repeat rows it stored
    /// (kept here, beside the connections, as the store's only write state).
    pub insert_failed: AtomicBool,
}

struct Backoff {
    until: Instant,
    delay: Duration,
    reason: String,
}

/// Retries preparing until it works, so `/health` turns green and the schema
/// exists without waiting for the first request.
pub async fn prepare_until_ready(pool: Arc<Pool>) {
    loop {
        if pool.closed.load(Ordering::Acquire) {
            return;
        }
        match pool.prepare().await {
            Ok(()) => return,
            Err(_) => {
                let wait = pool.retry_in().unwrap_or(RETRY_MIN);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

impl Pool {
    /// A pool for `dsn`, which connects on first use (or when
    /// [`prepare_until_ready`] gets there first).
    pub fn new(dsn: Dsn, options: Options) -> Pool {
        Pool {
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
        }
    }

    /// No more statements; idle connections are closed.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    pub fn layout(&self) -> schema::Layout {
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
        let client = connect_to(&self.dsn, &self.dsn.host, self.dsn.port).await?;
        if self.options.cluster.is_some() {
            // Settings last as long as the connection: an insert into the
            // Distributed table returns only once every shard stored its
            // rows, so a 202 still means stored.
            run(&client, client.execute("SET insert_distributed_sync = 1")).await?;
        }
        Ok(client)
    }

    /// A fresh connection to each host of the cluster (one to the server on
    /// one server), for work that must run on every host.
    pub async fn host_clients(&self) -> Result<Vec<Client>, StoreError> {
        let client = self.check_out().await?;
        let clients = everywhere(&self.dsn, self.options.cluster.as_deref(), &client).await;
        if clients.is_ok() {
            self.check_in(client);
        }
        clients
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

    /// What the server is, then its schema brought up to date.
    async fn migrate(&self, client: &Client) -> Result<(), StoreError> {
        let (version, features) = migrate::server_features(client).await?;
        if let Ok(mut known) = self.features.lock() {
            *known = features;
        }
        migrate::migrate(client, &self.dsn, &self.layout(), &version, features).await
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
    pub async fn with_client<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
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

    pub fn database(&self) -> &str {
        &self.dsn.database
    }

    pub fn features(&self) -> Features {
        self.features
            .lock()
            .map(|f| *f)
            .unwrap_or_else(|poisoned| *poisoned.into_inner())
    }

    /// Every row of a read statement, within the budget.
    pub async fn read<T: Row + Send + 'static>(
        &self,
        budget: &ReadBudget,
        statement: &str,
    ) -> Result<Vec<T>, StoreError> {
        let shape = statement;
        let (statement, limit) = budget.bound(statement)?;
        let rows = self
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

    /// On a cluster, every shard must have a replica that answers: the error
    /// names a shard that has none, so `/health` says which. A replica down
    /// in a shard that still has one is logged, not failed: writes and reads
    /// still work.
    pub async fn check(&self) -> Result<(), StoreError> {
        if self.options.cluster.is_none() {
            return self.with_client(|_client| async { Ok(()) }).await;
        }
        let client = self.check_out().await?;
        let hosts = cluster_hosts(&self.dsn, self.options.cluster.as_deref(), &client).await?;
        self.check_in(client);
        let mut shards: std::collections::BTreeMap<u32, (bool, Vec<String>)> = Default::default();
        for host in &hosts {
            let shard = shards.entry(host.shard).or_default();
            match connect_to(&self.dsn, &host.address, host.port).await {
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

/// The time one answer may take, shared by its statements.
pub struct ReadBudget {
    deadline: Instant,
    total: Duration,
}

impl ReadBudget {
    pub fn new(total: Duration) -> ReadBudget {
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
