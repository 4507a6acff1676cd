//! `GET /api/tenants` (admins, while tenancy is on): every tenant holding
//! logs, with how many in all and over the last 24 hours — the Overview's
//! per-tenant volume. Counted from the rollups, one tenant at a time, over
//! the whole store rather than the request's own tenant scope: it is the
//! deployment's view. An admin bound to some tenants sees only those.

use super::client_gone::ClientSocket;
use super::state::QueryState;
use crate::domain::principal::Caller;
use crate::domain::tenant::TenantId;
use crate::domain::time::now_micros;
use crate::http::error::ApiError;
use crate::store::filter::{LogFilter, Scope};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Serialize;

const DAY: i64 = 24 * 3600 * 1_000_000;

#[derive(Serialize)]
struct TenantVolume {
    tenant: TenantId,
    logs: u64,
    logs_24h: u64,
}

pub async fn tenants(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let bound: Option<Vec<String>> = request
        .extensions()
        .get::<Caller>()
        .and_then(|caller| caller.principal.as_ref())
        .and_then(|principal| principal.tenants.clone());
    let socket = ClientSocket::of(&request);
    let mut tenants = state.read(socket, state.store.tenants()).await?;
    if let Some(bound) = &bound {
        tenants.retain(|tenant| bound.iter().any(|b| b == tenant.as_str()));
    }
    let day_ago = now_micros() - DAY;
    let mut volumes = Vec::with_capacity(tenants.len());
    for tenant in tenants {
        let all = LogFilter {
            scope: Scope::tenant(tenant.clone()),
            ..LogFilter::default()
        };
        let recent = LogFilter {
            from: Some(day_ago),
            ..all.clone()
        };
        let logs = count(&state, socket, &all).await?;
        if logs == 0 {
            // Known to the store (named once), holding nothing now.
            continue;
        }
        let logs_24h = count(&state, socket, &recent).await?;
        volumes.push(TenantVolume {
            tenant,
            logs,
            logs_24h,
        });
    }
    volumes.sort_by(|a, b| b.logs.cmp(&a.logs).then_with(|| a.tenant.cmp(&b.tenant)));
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tenants": volumes })))
}

async fn count(
    state: &QueryState,
    socket: Option<ClientSocket>,
    filter: &LogFilter,
) -> Result<u64, ApiError> {
    let counts = state
        .read(socket, state.store.level_service_counts(filter))
        .await?;
    Ok(counts.iter().map(|group| group.count).sum())
}
