//! The one place that picks implementations (bus, store) and starts the
//! roles this process runs, then serves HTTP until told to stop. Start-up is
//! a sequence of build steps, each a function whose name says what it
//! builds (`wiring`: store and bus; `pipeline`: the process role's tasks;
//! `roles`: ingest, query and alerting; `build_gate`: keys, sessions and the
//! audit log; `server`: HTTP), and the stop
//! unwinds them in the order that loses nothing.

mod pipeline;
mod roles;
mod server;
mod wiring;

use crate::auth::gate::Gate;
use crate::auth::provider::Provider;
use crate::auth::routes::SignIn;
use crate::auth::session::Sessions;
use crate::bus::Bus;
use crate::config::Config;
use crate::http::audit::AuditLog;
use crate::http::health::HealthState;
use crate::http::telemetry::MetricsState;
use crate::metrics::Metrics;
use crate::process::dead_letter::DeadLetterFile;
use crate::security::auth::KeyRoles;
use crate::security::cors::CorsPolicy;
use crate::security::guard::Guard;
use crate::security::rate_limit::RateLimiter;
use crate::tenants::TenantLimiter;
use actix_web::web;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// Runs until `stop` resolves, then shuts down gracefully: stop accepting,
/// finish in-flight requests, drain the bus into the store (or the spill
/// file), close the store. An error means acknowledged logs could not be
/// stored before the stop (the process then exits non-zero).
pub async fn run(config: Config, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    if config.tenants.enabled {
        metrics.tenants.enable();
    }
    let stores = wiring::build_stores(&config)?;
    let store = stores.as_ref().map(|stores| Arc::clone(&stores.logs));
    let bus = wiring::build_bus(&config, store.as_ref(), &metrics).await?;

    let dead_letters = DeadLetterFile::new(&config.data_dir);
    let dead_letters_before_start = dead_letters.count_existing();
    let (stopping_sender, stopping) = watch::channel(false);
    let tenant_limits = start_tenant_limits(&config, stopping.clone());
    let pipeline = pipeline::start_pipeline(
        &config,
        &bus,
        store.as_ref(),
        dead_letters,
        &metrics,
        tenant_limits.as_ref(),
    );

    let guard = Arc::new(build_guard(&config, &metrics));
    let roles = roles::start_roles(
        &config,
        &bus,
        stores.as_ref(),
        &metrics,
        &guard,
        tenant_limits.as_ref(),
        stopping,
    )
    .await?;
    let (audit, audit_task) = AuditLog::start(Arc::clone(&bus), Arc::clone(&metrics));
    let gate = Arc::new(build_gate(&config, &bus, guard, audit));

    let server = server::serve(
        &config,
        server::Routes {
            health: web::Data::new(HealthState {
                roles: config.roles,
                bus: Arc::clone(&bus),
                store: store.clone(),
                metrics: Arc::clone(&metrics),
                dead_letters_before_start,
            }),
            metrics: web::Data::new(MetricsState {
                metrics: Arc::clone(&metrics),
                bus: Arc::clone(&bus),
                store: store.clone(),
                dead_letters_before_start,
            }),
            sign_in: web::Data::new(SignIn {
                gate: Arc::clone(&gate),
                provider: config
                    .auth
                    .oidc
                    .clone()
                    .map(|oidc| Arc::new(Provider::new(oidc))),
            }),
            gate,
            ingest: roles.ingest.clone(),
            query: roles.query.clone(),
            alerts: roles
                .alerting
                .as_ref()
                .map(|alerting| web::Data::from(Arc::clone(&alerting.alerts))),
        },
    )?;
    let handle = server.handle();
    let serving = tokio::spawn(server);

    stop.await;
    tracing::info!("stopping: finishing requests, then draining the pipeline");
    let _ = stopping_sender.send(true);
    let deadline = tokio::time::Instant::now() + config.server.shutdown_timeout;
    pipeline.stopping(deadline);
    handle.stop(true).await;
    let _ = serving.await;
    roles.stop(deadline).await;
    // What the last requests audited goes out before the bus closes.
    audit_task.stop().await;
    bus.close().await;
    let unstored = pipeline.stop(deadline, &bus).await;
    if let Some(store) = store {
        store.close().await;
    }
    pipeline::outcome(&config, unstored)?;
    tracing::info!("stopped");
    Ok(())
}

/// Each tenant's limits (tenancy on), kept current from
/// `tenants.overrides_file` while the process runs.
fn start_tenant_limits(
    config: &Config,
    stopping: watch::Receiver<bool>,
) -> Option<Arc<TenantLimiter>> {
    let tenants = &config.tenants;
    if !tenants.enabled {
        return None;
    }
    let limiter = TenantLimiter::new(tenants.limits.clone());
    if let Some(path) = &tenants.overrides_file {
        tokio::spawn(crate::tenants::overrides::watch_file(
            path.clone(),
            tenants.configured_defaults.clone(),
            tenants.configured_overrides.clone(),
            Arc::clone(&limiter),
            stopping,
        ));
    }
    Some(limiter)
}

/// The security settings' CORS, rate limits, client certificates and keys.
fn build_guard(config: &Config, metrics: &Arc<Metrics>) -> Guard {
    let security = &config.security;
    let sign_in = config.auth.oidc.is_some();
    Guard {
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
        ingest_needs_client_certificate: config.server.ingest_needs_client_certificate(),
    }
}

/// The gate every request passes: the guard, sessions when sign-in is on
/// (their revocations on the bus's coordination, shared by every instance
/// on the bus), the audit log.
fn build_gate(config: &Config, bus: &Arc<dyn Bus>, guard: Arc<Guard>, audit: AuditLog) -> Gate {
    let sign_in = config.auth.oidc.is_some();
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
        tenants: config.tenants.clone(),
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
