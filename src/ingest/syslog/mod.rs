//! Syslog listeners of the ingest role: TCP (many messages per connection,
//! octet-counted or newline-framed), the same over TLS (RFC 5425, its own
//! listener: see `settings.rs`) and UDP (one message per datagram).
//! Frames are cut by `domain::shippers::framing`, decoded by `decoder.rs`,
//! stamped and published like HTTP ingest.
//!
//! Syslog has no acknowledgement, so the pipeline's back-pressure travels
//! the only way it can: while the bus refuses a batch, a TCP connection
//! stops reading (the sender's socket buffer fills and it waits), and the
//! batch is retried. UDP cannot wait: a datagram the bus refuses is dropped
//! and counted (`reason="overloaded"`). A garbage line is counted
//! (`reason="invalid"`) and skipped, an over-long one likewise
//! (`reason="too_large"`); the connection goes on.

mod decoder;
mod settings;

pub use decoder::decode;
pub use settings::{RawSyslog, SyslogConfig};

use super::state::IngestState;
use crate::bus::BusError;
use crate::domain::LogBatch;
use crate::domain::shippers::framing::{Frame, Framer};
use crate::domain::time::now_micros;
use crate::metrics::{Metrics, Protocol, Rejection};
use actix_web::web;
use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Bytes read from a connection at a time: one read's frames are one batch.
const READ_CHUNK: usize = 64 * 1024;
/// Datagrams gathered into one batch when they arrive together.
const UDP_BATCH: usize = 512;
/// Retry delays while the bus refuses a TCP batch.
const FIRST_RETRY: Duration = Duration::from_millis(5);
const LONGEST_RETRY: Duration = Duration::from_millis(500);
/// A TLS sender must finish its handshake within this long, so a
/// connection that never speaks cannot hold a slot for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the configured listeners (an error names the address) and serves
/// them until `stopping` turns true; the tasks end after publishing what
/// they have read.
pub async fn start(
    config: &SyslogConfig,
    state: web::Data<IngestState>,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<JoinSet<()>> {
    let mut tasks = JoinSet::new();
    if let Some(address) = config.tcp_listen {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen for syslog on tcp {address}"))?;
        tracing::info!(address = %listener.local_addr()?, "listening for syslog over TCP");
        tasks.spawn(serve_tcp(
            listener,
            None,
            state.clone(),
            config.clone(),
            stopping.clone(),
        ));
    }
    if let Some((address, tls)) = &config.tls_listen {
        // A certificate that cannot be used stops start-up, naming its setting.
        let acceptor = TlsAcceptor::from(Arc::new(tls.server_config()?));
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen for syslog over TLS on tcp {address}"))?;
        tracing::info!(address = %listener.local_addr()?, "listening for syslog over TLS");
        tasks.spawn(serve_tcp(
            listener,
            Some(acceptor),
            state.clone(),
            config.clone(),
            stopping.clone(),
        ));
    }
    if let Some(address) = config.udp_listen {
        let socket = UdpSocket::bind(address)
            .await
            .with_context(|| format!("cannot listen for syslog on udp {address}"))?;
        tracing::info!(address = %socket.local_addr()?, "listening for syslog over UDP");
        tasks.spawn(serve_udp(socket, state, config.max_line_bytes, stopping));
    }
    Ok(tasks)
}

/// Resolves once the process is stopping (or the sender is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`: drop it here.
    let _ = stopping.wait_for(|stop| *stop).await;
}

async fn serve_tcp(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: web::Data<IngestState>,
    config: SyslogConfig,
    mut stopping: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let stop_connections = stopping.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stopping) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let state = state.clone();
                        let stopping = stop_connections.clone();
                        let max_line = config.max_line_bytes;
                        let tls = tls.clone();
                        connections.spawn(async move {
                            let _slot = slot;
                            match tls {
                                None => serve_connection(stream, &state, max_line, stopping).await,
                                Some(tls) => {
                                    serve_tls_connection(stream, tls, &state, max_line, stopping).await
                                }
                            }
                        });
                    }
                    Err(_) => Metrics::add(&state.metrics.syslog_connections_refused, 1),
                },
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "syslog accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// The TLS handshake (bounded, and abandoned when the process stops), then
/// the connection as over plain TCP.
async fn serve_tls_connection(
    stream: TcpStream,
    tls: TlsAcceptor,
    state: &IngestState,
    max_line: usize,
    mut stopping: watch::Receiver<bool>,
) {
    let peer = stream.peer_addr().ok();
    let handshake = tokio::select! {
        _ = stopped(&mut stopping) => return,
        handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)) => handshake,
    };
    let failure = match handshake {
        Ok(Ok(stream)) => return serve_connection(stream, state, max_line, stopping).await,
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
    };
    // Counted rather than logged at warn: anyone can connect and fail.
    Metrics::add(&state.metrics.syslog_tls_handshake_failures, 1);
    tracing::debug!(?peer, error = %failure, "syslog TLS handshake failed");
}

async fn serve_connection<S: AsyncRead + Unpin>(
    mut stream: S,
    state: &IngestState,
    max_line: usize,
    mut stopping: watch::Receiver<bool>,
) {
    let metrics = &state.metrics;
    metrics.syslog_connections.fetch_add(1, Ordering::Relaxed);
    let mut framer = Framer::new(max_line);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let read = tokio::select! {
            biased;
            _ = stopped(&mut stopping) => break,
            read = stream.read(&mut chunk) => read,
        };
        let at_end = match read {
            Ok(0) | Err(_) => true,
            Ok(read) => {
                framer.extend(&chunk[..read]);
                false
            }
        };
        let batch = decode_frames(&mut framer, at_end, state);
        // Not reading while this waits is the back-pressure.
        if !publish_patiently(state, batch).await || at_end {
            break;
        }
    }
    metrics.syslog_connections.fetch_sub(1, Ordering::Relaxed);
}

/// Every whole frame in the framer (and at the end, what is left) as logs.
fn decode_frames(framer: &mut Framer, at_end: bool, state: &IngestState) -> LogBatch {
    let received = now_micros();
    let mut records = Vec::new();
    let mut refused = [0u64; 2];
    let mut take = |frame: Frame<'_>| match frame {
        Frame::Message(bytes) => match decode(bytes, received, &state.config.limits) {
            Ok(log) => records.push(state.stamp(log, received, &state.syslog_tenant)),
            Err(_) => refused[0] += 1,
        },
        Frame::TooLong => refused[1] += 1,
    };
    while let Some(frame) = framer.next_frame() {
        take(frame);
    }
    if at_end && let Some(frame) = framer.finish() {
        take(frame);
    }
    state
        .metrics
        .reject(Protocol::Syslog, Rejection::Invalid, refused[0]);
    state
        .metrics
        .reject(Protocol::Syslog, Rejection::TooLarge, refused[1]);
    LogBatch::from(records)
}

/// Publishes, retrying while the bus is full or away; `false` once the bus
/// is closed (shutting down), when nothing more can be published.
async fn publish_patiently(state: &IngestState, batch: LogBatch) -> bool {
    let mut delay = FIRST_RETRY;
    loop {
        match state.publish_to_bus(Protocol::Syslog, batch.clone()).await {
            Ok(()) => return true,
            Err(BusError::Closed) => {
                tracing::warn!(
                    logs = batch.len(),
                    "syslog logs lost: the bus closed before taking them"
                );
                return false;
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(LONGEST_RETRY);
            }
        }
    }
}

async fn serve_udp(
    socket: UdpSocket,
    state: web::Data<IngestState>,
    max_line: usize,
    mut stopping: watch::Receiver<bool>,
) {
    // A datagram longer than the buffer is cut by the kernel: one byte more
    // than the limit tells a too-long one apart.
    let mut datagram = vec![0u8; max_line.min(65_535) + 1];
    loop {
        let first = tokio::select! {
            biased;
            _ = stopped(&mut stopping) => break,
            received = socket.recv(&mut datagram) => received,
        };
        let received_at = now_micros();
        let mut records = Vec::new();
        let mut refused = [0u64; 2];
        let mut length = first.ok();
        while let Some(read) = length {
            if read > max_line {
                refused[1] += 1;
            } else {
                match decode(&datagram[..read], received_at, &state.config.limits) {
                    Ok(log) => records.push(state.stamp(log, received_at, &state.syslog_tenant)),
                    Err(_) => refused[0] += 1,
                }
            }
            // Datagrams already waiting join this batch.
            length = if records.len() + (refused[0] + refused[1]) as usize >= UDP_BATCH {
                None
            } else {
                socket.try_recv(&mut datagram).ok()
            };
        }
        let metrics = &state.metrics;
        metrics.reject(Protocol::Syslog, Rejection::Invalid, refused[0]);
        metrics.reject(Protocol::Syslog, Rejection::TooLarge, refused[1]);
        let count = records.len() as u64;
        if state
            .publish_to_bus(Protocol::Syslog, LogBatch::from(records))
            .await
            .is_err()
        {
            metrics.reject(Protocol::Syslog, Rejection::Overloaded, count);
        }
    }
}
