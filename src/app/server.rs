//! The HTTP server: every enabled role's routes behind the gate (keys,
//! sessions, roles, CSRF, audit) and the per-request telemetry, bound to
//! `server.listen`.

use crate::auth::gate::Gate;
use crate::auth::middleware::GateMiddleware;
use crate::auth::routes::SignIn;
use crate::http;
use crate::http::health::HealthState;
use crate::http::telemetry::{self, MetricsState};
use crate::ingest::{self, IngestState};
use crate::metrics::Protocol;
use crate::query::{self, QueryState};
use actix_web::dev::{Server, Service};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use futures_util::FutureExt;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// What the server's routes serve from.
pub struct Routes {
    pub health: web::Data<HealthState>,
    pub metrics: web::Data<MetricsState>,
    pub gate: Arc<Gate>,
    /// The sign-in flow's endpoints (served by the query role).
    pub sign_in: web::Data<SignIn>,
    pub ingest: Option<web::Data<IngestState>>,
    pub query: Option<web::Data<QueryState>>,
    pub alerts: Option<web::Data<crate::alerts::Alerts>>,
}

/// Binds and starts the server (not yet awaited: the caller holds it).
pub fn serve(config: &crate::config::Config, routes: Routes) -> anyhow::Result<Server> {
    let Routes {
        health,
        metrics: metrics_state,
        gate,
        sign_in,
        ingest: ingest_state,
        query: query_state,
        alerts: alerts_state,
    } = routes;
    let request_ids = Arc::new(crate::domain::id::IdGenerator::new());
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
            app = app
                .app_data(state.clone())
                .configure(crate::alerts::api::routes);
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
            // A DEBUG span: at INFO (the default) it is never built. An
            // enabled span cost the single-log path about 10k instructions
            // per request (callgrind: the fmt layer formats its fields when
            // it is created), the largest item beside actix itself. Lines
            // that matter name the request themselves: the failure below,
            // and `ApiError::internal`'s.
            let span = tracing::debug_span!("request", request_id = %id);
            let answer = span.in_scope(|| service.call(request));
            let answer = telemetry::with_request_id(id.clone(), answer);
            let metrics = Arc::clone(&request_metrics);
            async move {
                let request_id = &id;
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
                    tracing::warn!(%request_id, %method, %route, status = status.as_u16(), elapsed_ms = elapsed.as_secs_f64() * 1e3, "request failed");
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
    // Under mutual TLS, ingest asks whether the client had a certificate.
    .on_connect(|connection, extensions| {
        query::client_gone::remember_socket(connection, extensions);
        http::tls::remember_client_certificate(connection, extensions);
    })
    .disable_signals()
    .shutdown_timeout(config.server.shutdown_timeout.as_secs().max(1))
    .client_request_timeout(Duration::from_secs(10));
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    // HTTPS when `[server]` has a certificate, read now: an unusable file
    // stops start-up naming its setting.
    let server = match http::tls::rustls_config(&config.server)? {
        None => server.bind(&config.server.listen),
        Some(tls) => server.bind_rustls_0_23(&config.server.listen, tls),
    }
    .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    for address in server.addrs() {
        tracing::info!(%address, roles = %config.roles, scheme = %config.server.scheme(), "listening");
    }
    Ok(server.run())
}
