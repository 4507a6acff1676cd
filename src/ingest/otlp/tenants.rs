//! Whose logs an OTLP export holds. Usually the request's tenant, as for
//! every protocol; with `tenants.otlp_attribute` set, each `ResourceLogs`
//! may name its own in that resource attribute (as the Collector's
//! pipelines and Loki's exporter route per resource). The records of a
//! resource naming a tenant the key may not write, or an invalid id, are
//! refused and the rest stored: OTLP's partial success. Each tenant's
//! records are taken from its own ingest rate and daily quota; the bus
//! carries every record's tenant, so what passes goes out as one batch.
//! Both transports (`mod.rs`, `grpc/service.rs`) store through here.

use super::decoder::{ResourceRun, rejection_message};
use crate::bus::BusError;
use crate::domain::parse::NewLog;
use crate::domain::shippers::Decoded;
use crate::domain::time::Micros;
use crate::domain::{LogBatch, TenantId};
use crate::http::error::ApiError;
use crate::ingest::state::IngestState;
use crate::metrics::{Protocol, Rejection};
use crate::tenants::{ResourceTenants, TENANT_HEADER, TenantRefusal};

/// Whose logs an export holds, as the gate resolved it.
#[derive(Clone, Debug)]
pub enum ExportTenants {
    /// All of them the request's (tenancy off: `default`).
    One(TenantId),
    /// Each resource's, from `tenants.otlp_attribute`.
    PerResource(ResourceTenants),
}

impl ExportTenants {
    /// The resource attribute to read while decoding, if any.
    pub fn attribute(&self) -> Option<&str> {
        match self {
            ExportTenants::One(_) => None,
            ExportTenants::PerResource(resources) => Some(&resources.attribute),
        }
    }
}

/// What was not stored of an export that was (in part).
#[derive(Debug, Default)]
pub struct Stored {
    pub rejected: usize,
    /// `partial_success.error_message`: why, naming the tenants.
    pub error_message: String,
}

/// Nothing was stored.
#[derive(Debug)]
pub enum NotStored {
    /// Every record was refused for its tenant (401, 400, 403) or a
    /// tenant's limit (429, which wins: waiting helps).
    Tenants(ApiError),
    /// The bus did not take the logs.
    Bus(BusError),
}

/// Splits the decoded logs by tenant, applies each tenant's limits and
/// publishes what passes.
pub async fn store(
    state: &IngestState,
    decoded: Decoded,
    runs: Vec<ResourceRun>,
    tenants: &ExportTenants,
    received: Micros,
) -> Result<Stored, NotStored> {
    let metrics = &state.metrics;
    let mut why = Refusals::default();
    why.add(decoded.rejected.len(), rejection_message(&decoded.rejected));
    metrics.reject(
        Protocol::Otlp,
        Rejection::Invalid,
        decoded.rejected.len() as u64,
    );
    let mut tenant_refusal = None;
    let groups = match tenants {
        ExportTenants::One(tenant) => vec![(tenant.clone(), decoded.logs)],
        ExportTenants::PerResource(resources) => {
            let mut groups: Vec<(TenantId, Vec<NewLog>)> = Vec::new();
            let mut logs = decoded.logs.into_iter();
            for run in runs {
                let of_run = logs.by_ref().take(run.logs);
                match resources.of_resource(run.tenant.as_deref()) {
                    Ok(tenant) => match groups.iter_mut().find(|(t, _)| *t == tenant) {
                        Some((_, group)) => group.extend(of_run),
                        None => groups.push((tenant, of_run.collect())),
                    },
                    Err(refusal) => {
                        let count = of_run.count();
                        metrics.reject(Protocol::Otlp, rejection_of(&refusal), count as u64);
                        let reason = explain(&refusal, &resources.attribute);
                        why.add(count, format!("{count} log record(s) refused: {reason}"));
                        tenant_refusal.get_or_insert(refusal);
                    }
                }
            }
            groups
        }
    };
    let mut limited = None;
    let mut passed: Vec<LogBatch> = Vec::new();
    for (tenant, logs) in groups {
        let count = logs.len();
        let group = state.stamp_all(logs, received, &tenant);
        match state.admit_tenant(Protocol::Otlp, &group) {
            Ok(()) => passed.push(group),
            Err(exceeded) => {
                why.add(
                    count,
                    format!("{count} log record(s) refused: {}", exceeded.message()),
                );
                limited.get_or_insert(exceeded);
            }
        }
    }
    if passed.iter().all(|group| group.is_empty()) {
        if let Some(exceeded) = limited {
            return Err(NotStored::Tenants(exceeded));
        }
        if let Some(refusal) = tenant_refusal {
            let mut error = tenant_error(&refusal);
            if let (TenantRefusal::Missing, ExportTenants::PerResource(resources)) =
                (&refusal, tenants)
            {
                error = ApiError::unauthorized_because(explain(&refusal, &resources.attribute))
                    .with_field(TENANT_HEADER);
            }
            return Err(NotStored::Tenants(error));
        }
    }
    // One tenant (the usual case) goes out as stamped; several as one batch.
    let batch = match passed.len() {
        1 => passed.pop().unwrap_or_default(),
        _ => passed
            .iter()
            .flat_map(|group| group.iter().cloned())
            .collect(),
    };
    state
        .publish_to_bus(Protocol::Otlp, batch)
        .await
        .map_err(NotStored::Bus)?;
    Ok(Stored {
        rejected: why.records,
        error_message: why.messages.join("; "),
    })
}

/// The records refused and why, one message per distinct reason.
#[derive(Default)]
struct Refusals {
    records: usize,
    messages: Vec<String>,
}

impl Refusals {
    fn add(&mut self, records: usize, message: String) {
        if records == 0 {
            return;
        }
        self.records += records;
        if !self.messages.contains(&message) {
            self.messages.push(message);
        }
    }
}

/// A refusal as a resource's records get it: one naming no tenant is told
/// of the attribute too.
fn explain(refusal: &TenantRefusal, attribute: &str) -> String {
    match refusal {
        TenantRefusal::Missing => format!(
            "their resource has no attribute {attribute} and the request names no tenant ({TENANT_HEADER})"
        ),
        other => other.to_string(),
    }
}

fn rejection_of(refusal: &TenantRefusal) -> Rejection {
    match refusal {
        TenantRefusal::Missing | TenantRefusal::NotAllowed(_) => Rejection::Unauthorized,
        TenantRefusal::Invalid(_) | TenantRefusal::Several => Rejection::Invalid,
    }
}

/// When every record was refused for its tenant: the status the gate gives
/// a request for the same reason, naming the attribute beside the header.
fn tenant_error(refusal: &TenantRefusal) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        TenantRefusal::Missing => ApiError::unauthorized_because(message).with_field(TENANT_HEADER),
        TenantRefusal::Invalid(_) | TenantRefusal::Several => {
            ApiError::bad_request(Some(TENANT_HEADER.to_string()), message)
        }
        TenantRefusal::NotAllowed(_) => ApiError::forbidden_field(TENANT_HEADER, message),
    }
}
