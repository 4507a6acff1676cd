//! `GET /health`: 200 when every part this process's roles need is ready,
//! 503 naming the failing part otherwise, so a load balancer routes around it.

use crate::bus::Bus;
use crate::config::Roles;
use crate::domain::time::{format_rfc3339, now_micros};
use crate::metrics::Metrics;
use crate::store::Store;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub struct HealthState {
    pub roles: Roles,
    pub bus: Arc<dyn Bus>,
    /// Absent for an ingest-only process, which never touches a store.
    pub store: Option<Arc<dyn Store>>,
    pub metrics: Arc<Metrics>,
    pub dead_letters_before_start: u64,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
    roles: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage_status: Option<String>,
    bus: &'static str,
    bus_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_depth: Option<u64>,
    dead_letters: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    timestamp: String,
}

pub async fn health(state: web::Data<HealthState>) -> HttpResponse {
    let mut failing = Vec::new();
    let mut problems = Vec::new();

    let bus_status = match timeout(CHECK_TIMEOUT, state.bus.check()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(error)) => {
            failing.push("bus");
            problems.push(error.to_string());
            format!("unavailable: {error}")
        }
        Err(_) => {
            failing.push("bus");
            problems.push(format!("{} bus did not answer in time", state.bus.kind()));
            "unavailable: no answer in time".to_string()
        }
    };
    let storage_status = match &state.store {
        None => None,
        Some(store) => Some(match timeout(CHECK_TIMEOUT, store.check()).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(error)) => {
                failing.push("storage");
                problems.push(error.to_string());
                format!("unavailable: {error}")
            }
            Err(_) => {
                failing.push("storage");
                problems.push(format!("{} store did not answer in time", store.kind()));
                "unavailable: no answer in time".to_string()
            }
        }),
    };
    let healthy = failing.is_empty();
    let body = Health {
        status: if healthy { "ok" } else { "unavailable" },
        service: "oglogstream",
        version: env!("CARGO_PKG_VERSION"),
        roles: state.roles.list().into_iter().map(|r| r.as_str()).collect(),
        storage: state.store.as_ref().map(|s| s.kind()),
        storage_status,
        bus: state.bus.kind(),
        bus_status,
        queue_depth: state.bus.pending(),
        dead_letters: state.dead_letters_before_start
            + Metrics::get(&state.metrics.dead_letter_logs),
        failing,
        error: (!healthy).then(|| problems.join("; ")),
        timestamp: format_rfc3339(now_micros()),
    };
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "2"))
            .json(body)
    }
}
