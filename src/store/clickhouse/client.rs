//! One connection: opening it, running a statement on it within a time
//! limit, confirming that it outlived the statement, and telling what a
//! failure means (try again later, or never). No pooling here: `pool.rs`
//! decides which connection runs what.
//!
//! klickhouse reports a connection dropped mid-statement as a clean end of
//! the result. So every statement is confirmed by a `SELECT 1` on the same
//! connection before its result is trusted: an insert reported `Ok` has
//! certainly been committed, and a read is never silently cut short.

use super::dsn::Dsn;
use super::rows::{Host, One};
use crate::store::StoreError;
use futures_util::StreamExt;
use klickhouse::{Client, ClientOptions, KlickhouseError, Row};
use std::future::Future;
use std::time::Duration;
use tokio::time::timeout;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A write (or a migration step) running longer is abandoned with its
/// connection; reads have `Options::read_timeout`.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to `host:port` with the DSN's credentials.
pub async fn connect_to(dsn: &Dsn, host: &str, port: u16) -> Result<Client, StoreError> {
    let options = ClientOptions {
        username: dsn.user.clone(),
        password: dsn.password.clone(),
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

/// The hosts of `cluster` (`shard_num`, address, native port).
fn cluster_hosts_statement(cluster: &str) -> String {
    format!(
        "SELECT toUInt32(shard_num), host_address, toUInt16(port) FROM system.clusters \
         WHERE cluster = '{cluster}' ORDER BY shard_num, replica_num"
    )
}

/// Every host of `cluster`, from the server's `system.clusters`; empty
/// without a cluster (one server).
pub async fn cluster_hosts(
    dsn: &Dsn,
    cluster: Option<&str>,
    client: &Client,
) -> Result<Vec<Host>, StoreError> {
    let Some(cluster) = cluster else {
        return Ok(Vec::new());
    };
    let hosts: Vec<Host> = run(
        client,
        collect::<Host>(client, cluster_hosts_statement(cluster)),
    )
    .await?;
    if hosts.is_empty() {
        return Err(StoreError::Unavailable(format!(
            "clickhouse at {}:{} has no cluster {cluster:?} in its remote_servers",
            dsn.host, dsn.port
        )));
    }
    Ok(hosts)
}

/// A connection to each host of `cluster`, or `client` itself on one server.
pub async fn everywhere(
    dsn: &Dsn,
    cluster: Option<&str>,
    client: &Client,
) -> Result<Vec<Client>, StoreError> {
    let hosts = cluster_hosts(dsn, cluster, client).await?;
    if hosts.is_empty() {
        return Ok(vec![client.clone()]);
    }
    let mut clients = Vec::with_capacity(hosts.len());
    for host in &hosts {
        clients.push(
            connect_to(dsn, &host.address, host.port)
                .await
                .map_err(|error| {
                    StoreError::Unavailable(format!("clickhouse shard {}: {error}", host.shard))
                })?,
        );
    }
    Ok(clients)
}

/// How a failure affects the connection and the caller.
pub fn classify(error: KlickhouseError) -> (StoreError, bool) {
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

pub async fn run<T>(
    client: &Client,
    work: impl Future<Output = Result<T, KlickhouseError>>,
) -> Result<T, StoreError> {
    run_for(STATEMENT_TIMEOUT, client, work).await
}

pub async fn run_for<T>(
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

pub async fn execute(client: &Client, statement: &str) -> Result<(), StoreError> {
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

pub async fn collect<T: Row>(
    client: &Client,
    statement: String,
) -> Result<Vec<T>, KlickhouseError> {
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
pub async fn collect_confirmed<T: Row>(
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
