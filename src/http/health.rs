//! `GET /health`: 200 when every part this process's roles need is ready,
//! 503 naming the failing part otherwise, so a load balancer routes around it.

use crate::bus::Bus;
use crate::domain::roles::Roles;
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
    /// The embedded store's disk: free space and whether ingest is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    disk: Option<Disk>,
    dead_letters: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    timestamp: String,
}

#[derive(Serialize)]
struct Disk {
    free_bytes: u64,
    total_bytes: u64,
    min_free_bytes: u64,
    full: bool,
}

/// The outcome of checking one part, for the body and the failure list.
struct PartCheck {
    status: String,
    problem: Option<String>,
}

/// Runs a part's readiness check with a deadline, so one hung dependency
/// cannot hang the load balancer's probe.
async fn check_part<E: std::fmt::Display>(
    kind: &str,
    check: impl std::future::Future<Output = Result<(), E>>,
) -> PartCheck {
    match timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => PartCheck {
            status: "ok".to_string(),
            problem: None,
        },
        Ok(Err(error)) => PartCheck {
            status: format!("unavailable: {error}"),
            problem: Some(error.to_string()),
        },
        Err(_) => PartCheck {
            status: "unavailable: no answer in time".to_string(),
            problem: Some(format!("{kind} did not answer in time")),
        },
    }
}

/// The same check as `/health`'s, as a yes or no: for `/metrics`.
pub async fn is_up<E>(check: impl std::future::Future<Output = Result<(), E>>) -> bool {
    matches!(timeout(CHECK_TIMEOUT, check).await, Ok(Ok(())))
}

pub async fn health(state: web::Data<HealthState>) -> HttpResponse {
    let mut failing = Vec::new();
    let mut problems = Vec::new();
    let mut record = |part: &'static str, check: PartCheck| {
        if let Some(problem) = check.problem {
            failing.push(part);
            problems.push(problem);
        }
        check.status
    };
    let bus_status = record(
        "bus",
        check_part(&format!("{} bus", state.bus.kind()), state.bus.check()).await,
    );
    let storage_status = match &state.store {
        None => None,
        Some(store) => Some(record(
            "storage",
            check_part(&format!("{} store", store.kind()), store.check()).await,
        )),
    };
    // Reads, live tail and export still work on a full disk; the 503 tells a
    // load balancer to send this instance no more logs, and an operator why.
    let disk = state
        .store
        .as_ref()
        .and_then(|store| store.disk_watch())
        .map(|watch| watch.status());
    if let Some(status) = disk.filter(|status| status.full) {
        failing.push("disk_full");
        problems.push(format!(
            "the store's disk is full: {} free, {} must stay free",
            crate::store::disk::Bytes(status.free_bytes),
            crate::store::disk::Bytes(status.min_free_bytes)
        ));
    }
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
        disk: disk.map(|status| Disk {
            free_bytes: status.free_bytes,
            total_bytes: status.total_bytes,
            min_free_bytes: status.min_free_bytes,
            full: status.full,
        }),
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
