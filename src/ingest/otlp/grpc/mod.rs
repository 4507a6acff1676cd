//! OTLP over gRPC (`otlp.grpc_listen`, off by default; 4317 by convention):
//! `opentelemetry.proto.collector.logs.v1.LogsService/Export`, what the
//! OpenTelemetry Collector's default `otlp` exporter and the SDKs' gRPC
//! exporters send. The same mapping and limits as OTLP/HTTP (the request's
//! bytes go to the same zero-copy decoder), the ingest keys as metadata,
//! gzip, partial success, and gRPC status codes (`status.rs`).
//!
//! tonic serves HTTP/2 (server side only, no generated code: `codec.rs`
//! hands the message's bytes over as they are); `service.rs` is the one
//! method; `gate.rs` is how `app` hands in the HTTP ingest paths' key and
//! rate-limit rules.

mod codec;
mod gate;
mod service;
mod status;

pub use gate::{Caller, Gate, Open};
pub use service::EXPORT_PATH;

use super::settings::OtlpConfig;
use crate::ingest::state::IngestState;
use actix_web::web;
use anyhow::Context;
use service::LogsService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// A running listener: where it listens, and the task serving it (ends
/// once the stop is signalled and its calls have finished).
pub struct GrpcListener {
    pub address: SocketAddr,
    pub serving: JoinHandle<()>,
}

/// Binds `otlp.grpc_listen` (an error names the address) and serves it
/// until `stopping` turns true: then no new call is taken and the calls in
/// flight finish (HTTP/2 GOAWAY). `None` when the listener is off.
pub async fn start(
    config: &OtlpConfig,
    state: web::Data<IngestState>,
    gate: Arc<dyn Gate>,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<Option<GrpcListener>> {
    let Some(address) = config.grpc_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for OTLP over gRPC on {address}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "listening for OTLP over gRPC");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = Server::builder()
        .max_concurrent_streams(config.grpc_max_concurrent_streams)
        // Idle connections of exporters that went away are noticed.
        .http2_keepalive_interval(Some(Duration::from_secs(60)));
    let service = LogsService::new(state, gate);
    let serving = tokio::spawn(async move {
        let stop = async move {
            // The guard `wait_for` returns is not `Send`: drop it here.
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        if let Err(error) = server
            .serve_with_incoming_shutdown(service, incoming, stop)
            .await
        {
            tracing::error!(%error, "the OTLP gRPC listener failed");
        }
    });
    Ok(Some(GrpcListener { address, serving }))
}
