//! The roles' shared state and background parts: ingest (and its syslog
//! and OTLP/gRPC listeners), query, and alerting on a query instance.

use crate::alerts::Alerts;
use crate::alerts::evaluator::Evaluator;
use crate::alerts::lease::{LEASE_NAME, Leadership};
use crate::alerts::notify::deliver::{Notifier, NotifierSettings, NotifierTask};
use crate::auth::gate::tenant_error;
use crate::bus::Bus;
use crate::bus::coordination::LeaseKeeper;
use crate::config::Config;
use crate::domain::TenantId;
use crate::domain::id::IdGenerator;
use crate::http::error::ApiError;
use crate::ingest::otlp::ExportTenants;
use crate::ingest::otlp::grpc::{Caller, Gate, GrpcListener};
use crate::ingest::{self, IngestState};
use crate::metrics::{Metrics, Protocol};
use crate::query::QueryState;
use crate::security::guard::Guard;
use crate::store::Store;
use crate::store::alert_records::AlertRecords;
use crate::tenants::{self, TenantLimiter, TenantsConfig};
use actix_web::web;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::wiring::Stores;

/// What the enabled roles hand the HTTP server, and what they run beside it.
pub struct Roles {
    pub ingest: Option<web::Data<IngestState>>,
    pub syslog: Option<JoinSet<()>>,
    pub otlp_grpc: Option<GrpcListener>,
    pub query: Option<web::Data<QueryState>>,
    pub alerting: Option<Alerting>,
}

/// `stopping` turns true when the process starts stopping (live streams,
/// syslog connections and gRPC calls end on it). `guard` holds the HTTP
/// ingest paths' key and rate-limit rules, which OTLP/gRPC applies too.
pub async fn start_roles(
    config: &Config,
    bus: &Arc<dyn Bus>,
    stores: Option<&Stores>,
    metrics: &Arc<Metrics>,
    guard: &Arc<Guard>,
    tenant_limits: Option<&Arc<TenantLimiter>>,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<Roles> {
    let roles = config.roles;
    let ingest = roles.ingest.then(|| {
        web::Data::new(IngestState {
            bus: Arc::clone(bus),
            config: config.ingest.clone(),
            ids: IdGenerator::new(),
            metrics: Arc::clone(metrics),
            tenant_limits: tenant_limits.cloned(),
            syslog_tenant: config
                .syslog
                .tenant
                .clone()
                .or_else(|| config.tenants.default_tenant.clone())
                .unwrap_or_default(),
        })
    });
    let syslog = match &ingest {
        Some(state) => Some(
            ingest::syslog::start(&config.syslog, state.clone(), stopping.clone())
                .await
                .context("starting the syslog listeners")?,
        ),
        None => None,
    };
    let otlp_grpc = match &ingest {
        Some(state) => ingest::otlp::grpc::start(
            &config.otlp,
            state.clone(),
            Arc::new(IngestGate {
                guard: Arc::clone(guard),
                tenants: config.tenants.clone(),
            }),
            stopping.clone(),
        )
        .await
        .context("starting the OTLP gRPC listener")?,
        None => None,
    };
    let (query, alerting) = match stores {
        Some(stores) if roles.query => (
            Some(web::Data::new(QueryState {
                store: Arc::clone(&stores.logs),
                records: Arc::clone(&stores.alert_records),
                bus: Arc::clone(bus),
                metrics: Arc::clone(metrics),
                stopping,
                timeout: config.query.timeout,
                loki: config.loki.clone(),
                tenant_limits: tenant_limits.cloned(),
                ui: config.ui.clone(),
            })),
            Some(start_alerting(
                config,
                bus,
                Arc::clone(&stores.logs),
                Arc::clone(&stores.alert_records),
                Arc::clone(metrics),
            )),
        ),
        _ => (None, None),
    };
    Ok(Roles {
        ingest,
        syslog,
        otlp_grpc,
        query,
        alerting,
    })
}

impl Roles {
    /// After the HTTP server has stopped: alerting stops, gRPC calls in
    /// flight finish (new ones were refused with GOAWAY at the stop) and
    /// syslog connections publish what they have read, before the bus
    /// closes.
    pub async fn stop(self, deadline: tokio::time::Instant) {
        if let Some(alerting) = self.alerting {
            alerting.stop().await;
        }
        if let Some(listener) = self.otlp_grpc {
            match tokio::time::timeout_at(deadline, listener.serving).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "the OTLP gRPC listener task failed"),
                Err(_) => tracing::error!(
                    "shutdown timeout reached before the OTLP gRPC calls in flight finished"
                ),
            }
        }
        if let Some(mut syslog) = self.syslog
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
    }
}

/// The HTTP ingest paths' key and rate-limit rules, for OTLP over gRPC
/// (`ingest` cannot import `security`).
struct IngestGate {
    guard: Arc<Guard>,
    tenants: TenantsConfig,
}

impl Gate for IngestGate {
    fn admit(&self, caller: &Caller<'_>) -> Result<ExportTenants, ApiError> {
        let allowed = self.guard.admit_ingest(
            Protocol::Otlp,
            caller.peer,
            caller.forwarded_for,
            caller.authorization,
            caller.api_key,
        )?;
        if !self.tenants.enabled {
            return Ok(ExportTenants::One(TenantId::default()));
        }
        if let Some(resources) =
            tenants::resolve_by_resource(&self.tenants, &allowed, caller.tenant)
        {
            return resources
                .map(ExportTenants::PerResource)
                .map_err(|refusal| tenant_error(&refusal));
        }
        let tenants = tenants::resolve(
            &self.tenants,
            &allowed,
            caller.tenant,
            tenants::Access::Write,
        )
        .map_err(|refusal| tenant_error(&refusal))?;
        Ok(ExportTenants::One(
            tenants.into_iter().next().unwrap_or_default(),
        ))
    }
}

/// Alerting on a query instance: the notifier, the API's shared state and
/// the evaluation loop, which acts only while this instance holds the
/// `alerts` lease (kept by the lease keeper on the bus's coordination).
pub struct Alerting {
    pub alerts: Arc<Alerts>,
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
