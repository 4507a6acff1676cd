//! The one place that picks implementations (bus, store) and starts the
//! roles this process runs, then serves HTTP until told to stop.

use crate::alerts::evaluator::Evaluator;
use crate::alerts::lease::{LEASE_NAME, Leadership};
use crate::alerts::notify::deliver::{Notifier, NotifierSettings, NotifierTask};
use crate::alerts::{self, Alerts};
use crate::auth::gate::Gate;
use crate::auth::middleware::GateMiddleware;
use crate::auth::provider::Provider;
use crate::auth::routes::SignIn;
use crate::auth::session::Sessions;
use crate::bus::Bus;
use crate::bus::coordination::LeaseKeeper;
use crate::bus::memory::MemoryBus;
use crate::bus::nats::{NatsBus, NatsSettings};
use crate::config::Config;
use crate::domain::id::IdGenerator;
use crate::http;
use crate::http::audit::AuditLog;
use crate::http::health::HealthState;
use crate::http::telemetry::{self, MetricsState};
use crate::ingest::{self, IngestState};
use crate::metrics::{Metrics, Protocol};
use crate::process::dead_letter::DeadLetterFile;
use crate::process::retention::Retention;
use crate::process::spill::{self, SpillFile};
use crate::process::{Batcher, Drained};
use crate::query::{self, QueryState};
use crate::security::auth::KeyRoles;
use crate::security::cors::CorsPolicy;
use crate::security::guard::Guard;
use crate::security::rate_limit::RateLimiter;
use crate::store::Store;
use crate::store::alert_records::AlertRecords;
use crate::store::clickhouse::{self, ClickHouseStore};
use crate::store::disk::DiskWatch;
use crate::store::sqlite::{SqliteOptions, SqliteStore};
use actix_web::dev::Service;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use futures_util::FutureExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// Runs until `stop` resolves, then shuts down gracefully: stop accepting,
/// finish in-flight requests, drain the bus into the store, close the store.
pub async fn run(config: Config, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let roles = config.roles;
    let metrics = Arc::new(Metrics::default());

    // An ingest-only process never touches a store. Alerting keeps its
    // records in the same store.
    let stores: Option<(Arc<dyn Store>, Arc<dyn AlertRecords>)> = if roles.process || roles.query {
        match &config.clickhouse_url {
            None => {
                let options = SqliteOptions {
                    min_free_bytes: config.storage.min_free_bytes,
                };
                let store = Arc::new(
                    SqliteStore::open_with(&config.data_dir, options)
                        .context("opening the embedded store")?,
                );
                Some((store.clone(), store))
            }
            Some(url) => {
                let options = clickhouse::Options {
                    cluster: config.clickhouse.cluster.clone(),
                    replicated: config.clickhouse.replicated,
                    // The server stops a read at the same bound the query
                    // endpoints answer 503 at.
                    read_timeout: config.query.timeout,
                    ..clickhouse::Options::default()
                };
                let store = Arc::new(
                    ClickHouseStore::open_with(url, options)
                        .context("opening the ClickHouse store")?,
                );
                Some((store.clone(), store))
            }
        }
    } else {
        None
    };
    let store: Option<Arc<dyn Store>> = stores.as_ref().map(|(store, _)| Arc::clone(store));
    let bus: Arc<dyn Bus> = match &config.nats_url {
        None => {
            let mut bus = MemoryBus::new(config.ingest.queue_capacity, config.nats.lease_ttl)
                .with_max_bytes(config.ingest.queue_max_bytes);
            // The queue's logs go to this process's store: it takes no more
            // than that store's disk has room for.
            if let Some(watch) = store.as_ref().and_then(|store| store.disk_watch()) {
                bus = bus.with_admission(Arc::new(DiskAdmission(watch)));
            }
            Arc::new(bus)
        }
        Some(_) => Arc::new(
            NatsBus::connect(NatsSettings {
                config: config.nats.clone(),
                live: roles.query,
                client_name: format!("oglogstream {roles}"),
                metrics: Arc::clone(&metrics),
            })
            .await
            .context("starting the NATS bus")?,
        ),
    };

    let dead_letters = DeadLetterFile::new(&config.data_dir);
    let dead_letters_before_start = dead_letters.count_existing();
    let health = web::Data::new(HealthState {
        roles,
        bus: Arc::clone(&bus),
        store: store.clone(),
        metrics: Arc::clone(&metrics),
        dead_letters_before_start,
    });
    let metrics_state = web::Data::new(MetricsState {
        metrics: Arc::clone(&metrics),
        bus: Arc::clone(&bus),
        store: store.clone(),
        dead_letters_before_start,
    });
    let (audit, audit_task) = AuditLog::start(Arc::clone(&bus), Arc::clone(&metrics));
    let gate = Arc::new(build_gate(&config, &bus, &metrics, audit.clone()));
    let sign_in = web::Data::new(SignIn {
        gate: Arc::clone(&gate),
        provider: config
            .auth
            .oidc
            .clone()
            .map(|oidc| Arc::new(Provider::new(oidc))),
    });
    let request_ids = Arc::new(IdGenerator::new());

    let retention = match (&store, roles.process) {
        (Some(store), true)
            if config.retention_days.is_some() || config.storage.max_bytes.is_some() =>
        {
            Some(tokio::spawn(
                Retention {
                    store: Arc::clone(store),
                    metrics: Arc::clone(&metrics),
                    max_age_days: config.retention_days,
                    max_bytes: config.storage.max_bytes,
                }
                .run(),
            ))
        }
        _ => None,
    };

    // An in-memory queue loses what it holds with the process: what a stop
    // cannot store goes to the spill file, stored first at the next start.
    let spill = (roles.process && !bus.durable())
        .then(|| SpillFile::new(&config.data_dir, config.ingest.queue_max_bytes));
    if let Some(spill) = &spill
        && let Err(error) = spill.reserve_room()
    {
        tracing::warn!(%error, bytes = config.ingest.queue_max_bytes, "cannot reserve room for a spill file: a stop on a full disk may not be able to keep what it could not store");
    }
    let spill_recovery = match (&spill, &store) {
        (Some(_), Some(store)) => Some(tokio::spawn(spill::store_spilled(
            SpillFile::new(&config.data_dir, config.ingest.queue_max_bytes),
            Arc::clone(store),
        ))),
        _ => None,
    };
    let (batcher_stop, batcher_stopped) = watch::channel(None);
    let batcher = match (&store, roles.process) {
        (Some(store), true) => Some(tokio::spawn(
            Batcher {
                bus: Arc::clone(&bus),
                store: Arc::clone(store),
                config: config.process.clone(),
                dead_letters,
                metrics: Arc::clone(&metrics),
                spill,
                stop: batcher_stopped,
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
    let syslog = match &ingest_state {
        Some(state) => Some(
            ingest::syslog::start(&config.syslog, state.clone(), stopping.clone())
                .await
                .context("starting the syslog listeners")?,
        ),
        None => None,
    };
    let query_state = match (&store, roles.query) {
        (Some(store), true) => Some(web::Data::new(QueryState {
            store: Arc::clone(store),
            bus: Arc::clone(&bus),
            metrics: Arc::clone(&metrics),
            stopping,
            timeout: config.query.timeout,
        })),
        _ => None,
    };

    let alerting = match (&stores, roles.query) {
        (Some((store, records)), true) => Some(start_alerting(
            &config,
            &bus,
            Arc::clone(store),
            Arc::clone(records),
            Arc::clone(&metrics),
        )),
        _ => None,
    };
    let alerts_state = alerting
        .as_ref()
        .map(|a| web::Data::from(Arc::clone(&a.alerts)));

    let shutdown_timeout = config.server.shutdown_timeout;
    let mut server = HttpServer::new(move || {
        let gate = Arc::clone(&gate);
        let request_ids = Arc::clone(&request_ids);
        let request_metrics = Arc::clone(&metrics_state.metrics);
        let mut app = App::new()
            .app_data(health.clone())
            .app_data(metrics_state.clone())
            .app_data(sign_in.clone())
            .route("/health", web::get().to(http::health::health))
            .route("/metrics", web::get().to(telemetry::metrics));
        if let Some(state) = &ingest_state {
            app = app.app_data(state.clone()).configure(ingest::routes);
        }
        if let Some(state) = &alerts_state {
            app = app.app_data(state.clone()).configure(alerts::api::routes);
        }
        // Elasticsearch clients ask `GET /` what they talk to before
        // shipping; behind HAProxy `/` reaches a query instance, so both
        // roles answer it. A browser (Accept: text/html) gets the dashboard.
        if ingest_state.is_some() || query_state.is_some() {
            app = app.service(
                web::resource("/")
                    .guard(actix_web::guard::fn_guard(|context| {
                        ingest::wants_cluster_info(context.head())
                    }))
                    .route(web::get().to(ingest::cluster_info))
                    .route(web::head().to(ingest::cluster_info)),
            );
        }
        // The query role also serves the dashboard, on every path it does not route.
        let app = match &query_state {
            Some(state) => app
                .app_data(state.clone())
                .configure(crate::auth::routes::routes)
                .configure(query::routes)
                .default_service(web::to(query::dashboard::serve)),
            None => app.default_service(web::to(http::not_found)),
        };
        // Inner: the gate (CORS, rate limit, keys, sessions, roles, audit),
        // then the Elasticsearch header on every answer, refusals included;
        // outermost: telemetry, so refusals are counted and logged with a
        // request id too.
        app.wrap(GateMiddleware(Arc::clone(&gate)))
        .wrap_fn(|request, service| {
            // Elasticsearch clients refuse any answer without this header,
            // refusals included.
            let elastic = (request.path() == "/" && ingest::wants_cluster_info(request.head()))
                || Protocol::of_path(request.path()) == Some(Protocol::Elasticsearch);
            let answer = service.call(request);
            async move {
                let mut response = answer.await?;
                if elastic {
                    response.headers_mut().insert(
                        actix_web::http::header::HeaderName::from_static(ingest::PRODUCT_HEADER.0),
                        actix_web::http::header::HeaderValue::from_static(ingest::PRODUCT_HEADER.1),
                    );
                }
                Ok(response)
            }
            .boxed_local()
        })
        .wrap_fn(move |request, service| {
            let started = std::time::Instant::now();
            let id = telemetry::request_id(request.headers().get(telemetry::REQUEST_ID), &request_ids);
            let method = request.method().to_string();
            let span = tracing::info_span!("request", request_id = %id);
            let answer = span.in_scope(|| service.call(request));
            let answer = telemetry::with_request_id(id.clone(), answer);
            let metrics = Arc::clone(&request_metrics);
            async move {
                let mut response = answer.await?;
                let route = telemetry::route_label(response.request().match_pattern());
                let status = response.status();
                let elapsed = started.elapsed();
                metrics.observe_request(&route, &method, status.as_u16(), elapsed);
                if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&id) {
                    response.headers_mut().insert(
                        actix_web::http::header::HeaderName::from_static(telemetry::REQUEST_ID),
                        value,
                    );
                }
                if status.is_server_error() {
                    tracing::warn!(%method, %route, status = status.as_u16(), elapsed_ms = elapsed.as_secs_f64() * 1e3, "request failed");
                } else {
                    tracing::debug!(%method, %route, status = status.as_u16(), elapsed_ms = elapsed.as_secs_f64() * 1e3, "request");
                }
                Ok(response)
            }
            .instrument(span)
            .boxed_local()
        })
    })
    // Queries stop when their client goes away: see query::client_gone.
    .on_connect(query::client_gone::remember_socket)
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
    // From now on the batcher gives up on a full disk at once, and on
    // anything else at the deadline: what it cannot store is spilled.
    let _ = batcher_stop.send(Some(deadline));
    handle.stop(true).await;
    let _ = serving.await;
    if let Some(alerting) = alerting {
        alerting.stop().await;
    }
    // What the last requests audited goes out before the bus closes.
    audit_task.stop().await;
    // Syslog connections stop reading at once and publish what they have
    // read, before the bus closes.
    if let Some(mut syslog) = syslog
        && tokio::time::timeout_at(deadline, async {
            while syslog.join_next().await.is_some() {}
        })
        .await
        .is_err()
    {
        tracing::error!(
            "shutdown timeout reached before the syslog listeners published what they read"
        );
    }
    bus.close().await;
    let mut unstored = Drained::default();
    if let Some(batcher) = batcher {
        // Past the deadline the batcher spills what is left: give it time to
        // write that out.
        match tokio::time::timeout_at(deadline + SPILL_GRACE, batcher).await {
            Ok(Ok(Ok(drained))) => unstored = drained,
            Ok(Ok(Err(error))) => tracing::error!(%error, "batcher failed"),
            Ok(Err(error)) => tracing::error!(%error, "batcher task failed"),
            Err(_) => {
                unstored.lost = bus.pending().unwrap_or(0);
                tracing::error!(
                    pending = unstored.lost,
                    "shutdown timeout reached before every batch was stored or spilled"
                );
            }
        }
    }
    if let Some(retention) = retention {
        retention.abort();
    }
    if let Some(recovery) = spill_recovery {
        recovery.abort();
    }
    if let Some(store) = store {
        store.close().await;
    }
    if unstored.returned_to_bus > 0 {
        tracing::warn!(
            logs = unstored.returned_to_bus,
            "stopped with logs the store could not take: the stream keeps them for the next process instance"
        );
    }
    if unstored.spilled > 0 || unstored.lost > 0 {
        let spill_file = config.data_dir.join(spill::FILE_NAME);
        let message = match unstored.lost {
            0 => format!(
                "{} acknowledged logs could not be stored before the stop: they are in {}, which the next start stores first",
                unstored.spilled,
                spill_file.display()
            ),
            lost => format!(
                "{lost} acknowledged logs were lost: neither the store nor the spill file {} could take them ({} others spilled)",
                spill_file.display(),
                unstored.spilled
            ),
        };
        return Err(anyhow::anyhow!(message));
    }
    tracing::info!("stopped");
    Ok(())
}

/// The gate every request passes: the security settings' keys, limits and
/// CORS, sessions when sign-in is on (their revocations on the bus's
/// coordination, shared by every instance on the bus).
fn build_gate(
    config: &Config,
    bus: &Arc<dyn Bus>,
    metrics: &Arc<Metrics>,
    audit: AuditLog,
) -> Gate {
    let security = &config.security;
    let sign_in = config.auth.oidc.is_some();
    let guard = Guard {
        cors: CorsPolicy::new(&security.cors_allowed_origins),
        ingest_keys: security.ingest_keys.clone(),
        keys: KeyRoles {
            read: security.read_keys.clone(),
            editor: security.editor_keys.clone(),
            admin: security.admin_keys.clone(),
            sign_in,
        },
        ingest_limit: security
            .ingest_rate
            .map(|r| RateLimiter::new(r.per_second, r.burst)),
        query_limit: security
            .query_rate
            .map(|r| RateLimiter::new(r.per_second, r.burst)),
        trusted_proxies: security.trusted_proxies.clone(),
        metrics: Arc::clone(metrics),
    };
    let sessions = match (&config.auth.session_secret, sign_in) {
        (Some(secret), true) => Some(Arc::new(Sessions::new(
            secret.expose(),
            config.auth.session_ttl,
            bus.coordination(),
        ))),
        _ => None,
    };
    Gate {
        guard,
        sessions,
        audit,
    }
}

/// How long after the stop's deadline a batcher has to write its spill.
const SPILL_GRACE: Duration = Duration::from_secs(10);

/// The embedded store's disk as the in-memory queue's admission.
struct DiskAdmission(Arc<DiskWatch>);

impl crate::bus::Admission for DiskAdmission {
    fn admit(&self, queued: u64, incoming: u64) -> Result<(), String> {
        self.0
            .admit(queued, incoming)
            .map_err(|full| full.to_string())
    }
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

/// Alerting on a query instance: the notifier, the API's shared state and
/// the evaluation loop, which acts only while this instance holds the
/// `alerts` lease (kept by the lease keeper on the bus's coordination).
struct Alerting {
    alerts: Arc<Alerts>,
    notifier: NotifierTask,
    evaluator: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
    lease: LeaseKeeper,
}

fn start_alerting(
    config: &Config,
    bus: &Arc<dyn Bus>,
    store: Arc<dyn Store>,
    records: Arc<dyn AlertRecords>,
    metrics: Arc<Metrics>,
) -> Alerting {
    // Unique per process, readable in the broker's key-value bucket.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let holder = format!("{host}-{}-{}", std::process::id(), config.server.listen)
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-");
    let lease = LeaseKeeper::start(bus.coordination(), LEASE_NAME, &holder);
    let leadership = Leadership::new(lease.held());
    let (notifier, notifier_task) = Notifier::start(
        Arc::clone(&records),
        Arc::clone(&metrics),
        leadership.clone(),
        NotifierSettings {
            external_url: config.alerts.external_url.clone(),
            max_delivery_time: config.alerts.max_delivery_time,
            request_timeout: Duration::from_secs(10),
        },
    );
    let alerts = Arc::new(Alerts {
        config: config.alerts.clone(),
        store,
        records,
        notifier,
        metrics,
        ids: IdGenerator::new(),
        read_timeout: config.query.timeout,
    });
    let (stop, stopped) = watch::channel(false);
    let evaluator = actix_web::rt::spawn(
        Evaluator {
            alerts: Arc::clone(&alerts),
            leadership,
            stop: stopped,
        }
        .run(),
    );
    Alerting {
        alerts,
        notifier: notifier_task,
        evaluator,
        stop,
        lease,
    }
}

impl Alerting {
    /// Stops evaluating and abandons deliveries in flight (they stay pending
    /// in the store): a shutdown resolves nothing and sends nothing new.
    async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.evaluator.await {
            tracing::error!(%error, "alert evaluator failed");
        }
        self.notifier.stop().await;
        // Released, so another instance takes over without waiting out the TTL.
        self.lease.stop().await;
    }
}
