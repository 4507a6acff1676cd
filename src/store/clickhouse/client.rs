//! One connection: opening it, running a statement on it within a time
//! limit, confirming that it outlived the statement, and telling what a
//! failure means (try again later, or never). No pooling here: `pool.rs`
//! decides which connection runs what.
//!
//! klickhouse reports a connection dropped mid-statement as a clean end of
//! the result. So every statement is confirmed by a `SELECT 1` on the same
//! connection before its result is trusted: an insert reported `Ok` has
//! certainly been committed, and a read is never silently cut short.

use super::dsn::{Dsn, Tls};
use super::rows::{Host, One};
use crate::store::StoreError;
use futures_util::StreamExt;
use klickhouse::{Client, ClientOptions, KlickhouseError, Row};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::rustls::pki_types::ServerName;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A write (or a migration step) running longer is abandoned with its
/// connection; reads have `Options::read_timeout`.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to `host:port` with the DSN's credentials, over TLS when
/// the DSN says so.
pub async fn connect_to(dsn: &Dsn, host: &str, port: u16) -> Result<Client, StoreError> {
    let options = ClientOptions {
        username: dsn.user.clone(),
        password: dsn.password.clone(),
        // The database may not exist yet: names are always qualified.
        default_database: String::new(),
        ..ClientOptions::default()
    };
    let over = if dsn.tls.is_some() { " over TLS" } else { "" };
    match timeout(CONNECT_TIMEOUT, open(dsn.tls.as_ref(), host, port, options)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(StoreError::Unavailable(format!(
            "cannot connect to clickhouse at {host}:{port}{over}: {error}"
        ))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "cannot connect to clickhouse at {host}:{port}{over}: no answer within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

/// Opens the connection and signs in; the error in words that name what
/// to fix (the CA setting, the DSN's password).
async fn open(
    tls: Option<&Tls>,
    host: &str,
    port: u16,
    options: ClientOptions,
) -> Result<Client, String> {
    let signed_in = match tls {
        None => Client::connect((host, port), options).await,
        Some(tls) => {
            let name = ServerName::try_from(host.to_string())
                .map_err(|_| format!("{host:?} is not a name TLS can verify"))?;
            let stream = TcpStream::connect((host, port))
                .await
                .map_err(|error| error.to_string())?;
            stream
                .set_nodelay(options.tcp_nodelay)
                .map_err(|error| error.to_string())?;
            let stream = tls
                .connector
                .connect(name, stream)
                .await
                .map_err(|error| handshake_failure(&error, &tls.trust_setting))?;
            let (read, write) = tokio::io::split(stream);
            Client::connect_stream(read, write, options).await
        }
    };
    signed_in.map_err(|error| match &error {
        // Unknown user, wrong password (18.x), authentication failed (later).
        KlickhouseError::ServerException {
            code,
            name,
            message,
            ..
        } if matches!(code, 192 | 193 | 516) => format!(
            "clickhouse refused: {name} ({code}): {message} ({CHECK_CREDENTIALS})"
        ),
        // klickhouse logs the server's refusal during sign-in and returns
        // only this: the connection itself was fine, the sign-in was not.
        KlickhouseError::ProtocolError(text) if text.contains("channel closed") => format!(
            "the server closed the connection while signing in ({CHECK_CREDENTIALS}; or, without secure=true, is this ClickHouse's tcp_port_secure?): {error}"
        ),
        _ => error.to_string(),
    })
}

/// What to look at when the server will not let us sign in.
const CHECK_CREDENTIALS: &str =
    "check the user and password: the DSN's, or clickhouse.password_file";

fn handshake_failure(error: &std::io::Error, trust_setting: &str) -> String {
    let refused = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>());
    match refused {
        Some(refusal @ tokio_rustls::rustls::Error::InvalidCertificate(_)) => {
            format!("the server's TLS certificate is not trusted ({trust_setting}): {refusal}")
        }
        _ => format!("TLS handshake failed: {error} (is this ClickHouse's tcp_port_secure?)"),
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
    Ok(everywhere_by_shard(dsn, cluster, client)
        .await?
        .into_iter()
        .map(|(_, client)| client)
        .collect())
}

/// [`everywhere`], each connection with its host's shard number (`0` on
/// one server), in shard then replica order.
pub async fn everywhere_by_shard(
    dsn: &Dsn,
    cluster: Option<&str>,
    client: &Client,
) -> Result<Vec<(u32, Client)>, StoreError> {
    let hosts = cluster_hosts(dsn, cluster, client).await?;
    if hosts.is_empty() {
        return Ok(vec![(0, client.clone())]);
    }
    let mut clients = Vec::with_capacity(hosts.len());
    for host in &hosts {
        clients.push((
            host.shard,
            connect_to(dsn, &host.address, host.port)
                .await
                .map_err(|error| {
                    StoreError::Unavailable(format!("clickhouse shard {}: {error}", host.shard))
                })?,
        ));
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
