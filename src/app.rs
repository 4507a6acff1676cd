//! The one place that picks implementations (bus, store) and starts the
//! roles this process runs, then serves HTTP until told to stop.

use crate::bus::Bus;
use crate::bus::memory::MemoryBus;
use crate::bus::nats::{NatsBus, NatsSettings};
use crate::config::Config;
use crate::domain::id::IdGenerator;
use crate::http;
use crate::http::health::HealthState;
use crate::ingest::{self, IngestState};
use crate::metrics::Metrics;
use crate::process::Batcher;
use crate::process::dead_letter::DeadLetterFile;
use crate::query::{self, QueryState};
use crate::store::Store;
use crate::store::clickhouse::ClickHouseStore;
use crate::store::sqlite::SqliteStore;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Runs until `stop` resolves, then shuts down gracefully: stop accepting,
/// finish in-flight requests, drain the bus into the store, close the store.
pub async fn run(config: Config, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let roles = config.roles;
    let metrics = Arc::new(Metrics::default());

    let bus: Arc<dyn Bus> = match &config.nats_url {
        None => Arc::new(MemoryBus::new(config.ingest.queue_capacity)),
        Some(url) => Arc::new(
            NatsBus::connect(NatsSettings {
                url: url.clone(),
                config: config.nats.clone(),
                live: roles.query,
                client_name: format!("oglogstream {roles}"),
            })
            .await
            .context("starting the NATS bus")?,
        ),
    };
    // An ingest-only process never touches a store.
    let store: Option<Arc<dyn Store>> = if roles.process || roles.query {
        match &config.clickhouse_url {
            None => Some(Arc::new(
                SqliteStore::open(&config.data_dir).context("opening the embedded store")?,
            )),
            Some(url) => Some(Arc::new(
                ClickHouseStore::open(url).context("opening the ClickHouse store")?,
            )),
        }
    } else {
        None
    };

    let dead_letters = DeadLetterFile::new(&config.data_dir);
    let health = web::Data::new(HealthState {
        roles,
        bus: Arc::clone(&bus),
        store: store.clone(),
        metrics: Arc::clone(&metrics),
        dead_letters_before_start: dead_letters.count_existing(),
    });

    let batcher = match (&store, roles.process) {
        (Some(store), true) => Some(tokio::spawn(
            Batcher {
                bus: Arc::clone(&bus),
                store: Arc::clone(store),
                config: config.process.clone(),
                dead_letters,
                metrics: Arc::clone(&metrics),
            }
            .run(),
        )),
        _ => None,
    };

    let (stopping_sender, stopping) = watch::channel(false);
    let ingest_state = roles.ingest.then(|| {
        web::Data::new(IngestState {
            bus: Arc::clone(&bus),
            config: config.ingest.clone(),
            ids: IdGenerator::new(),
            metrics: Arc::clone(&metrics),
        })
    });
    let query_state = match (&store, roles.query) {
        (Some(store), true) => Some(web::Data::new(QueryState {
            store: Arc::clone(store),
            bus: Arc::clone(&bus),
            metrics: Arc::clone(&metrics),
            stopping,
        })),
        _ => None,
    };

    let shutdown_timeout = config.server.shutdown_timeout;
    let mut server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(health.clone())
            .route("/health", web::get().to(http::health::health));
        if let Some(state) = &ingest_state {
            app = app.app_data(state.clone()).configure(ingest::routes);
        }
        if let Some(state) = &query_state {
            app = app.app_data(state.clone()).configure(query::routes);
        }
        app.default_service(web::to(http::not_found))
    })
    .disable_signals()
    .shutdown_timeout(shutdown_timeout.as_secs().max(1))
    .client_request_timeout(Duration::from_secs(10));
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    let server = server
        .bind(&config.server.listen)
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    for address in server.addrs() {
        tracing::info!(%address, roles = %roles, "listening");
    }
    let server = server.run();
    let handle = server.handle();
    let serving = tokio::spawn(server);

    stop.await;
    tracing::info!("stopping: finishing requests, then draining the pipeline");
    let _ = stopping_sender.send(true);
    let deadline = tokio::time::Instant::now() + shutdown_timeout;
    handle.stop(true).await;
    let _ = serving.await;
    bus.close().await;
    if let Some(batcher) = batcher {
        match tokio::time::timeout_at(deadline, batcher).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::error!(%error, "batcher failed"),
            Ok(Err(error)) => tracing::error!(%error, "batcher task failed"),
            Err(_) => tracing::error!(
                pending = bus.pending().unwrap_or(0),
                "shutdown timeout reached before every batch was stored"
            ),
        }
    }
    if let Some(store) = store {
        store.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
