//! The query role: `/api/logs`, `/api/stats`, `/api/histogram` (split by
//! any field with `by=`: `split.rs`), `/api/services`, `/api/facets`,
//! `/api/fields`, `/api/export`, `/api/logs/{id}/context`, `/api/patterns`,
//! `/api/tenants` (per-tenant volume, for admins), saved views
//! (`/api/views`: `views.rs`), the dashboard's settings (`/api/ui`:
//! `ui.rs`), the `/ws/live` stream, and the Loki query API (`loki/`). Reads
//! go to the store, each bounded by `query.timeout`; live tail comes from
//! the bus, never from the store.

pub mod client_gone;
pub mod context;
pub mod cursor;
pub mod dashboard;
pub mod export;
pub mod facets;
pub mod live;
pub mod loki;
pub mod params;
pub mod patterns;
pub mod scope;
mod settings;
pub mod split;
mod state;
pub mod tenants;
pub mod ui;
pub mod views;

pub use settings::{QueryConfig, RawQuery};
pub use state::QueryState;
pub use ui::{RawUi, UiConfig};

use crate::domain::Level;
use crate::domain::log::Row;
use crate::domain::time::{Micros, format_rfc3339, now_micros};
use crate::http::error::ApiError;
use crate::store::LogKey;
use crate::store::Store;
use actix_web::{HttpRequest, HttpResponse, web};
use client_gone::ClientSocket;
use serde::Serialize;
use state::{decoded, scope_of};
use std::collections::{BTreeMap, HashMap};

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/logs", web::get().to(get_logs))
        .route("/api/logs/{id}/context", web::get().to(context::context))
        .route("/api/stats", web::get().to(get_stats))
        .route("/api/histogram", web::get().to(get_histogram))
        .route("/api/services", web::get().to(get_services))
        .route("/api/patterns", web::get().to(patterns::patterns))
        .route("/api/facets", web::get().to(facets::facets))
        .route("/api/fields", web::get().to(facets::fields))
        .route("/api/export", web::get().to(export::export))
        .route("/api/tenants", web::get().to(tenants::tenants))
        .route("/api/ui", web::get().to(get_ui))
        .configure(views::routes)
        .route("/ws/live", web::get().to(live::stream))
        .configure(loki::routes);
}

async fn get_logs(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = decoded(&request)?;
    let query = params::log_query(&pairs, &scope_of(&request))?;
    let logs = state
        .read(
            ClientSocket::of(&request),
            state.scoped(&request).logs(&query),
        )
        .await?;
    let mut response = HttpResponse::Ok();
    // A full page may have a next one: say where it starts.
    if logs.len() == query.limit
        && let Some(last) = logs.last()
    {
        let token = cursor::encode(&LogKey::of(last), &query.filter, query.order);
        let mut next: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(name, _)| name != "cursor" && name != "offset")
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        next.push(("cursor", &token));
        let link = format!(
            "<{}?{}>; rel=\"next\"",
            request.path(),
            serde_urlencoded::to_string(&next).unwrap_or_default()
        );
        response.insert_header(("X-Next-Cursor", token.clone()));
        response.insert_header(("Link", link));
    }
    if query.filter.scope.is_multi_tenant() {
        let rows: Vec<Row> = logs.iter().map(Row::with_tenant).collect();
        return Ok(response.json(rows));
    }
    Ok(response.json(logs))
}

#[derive(Serialize)]
struct Stats {
    total_logs: u64,
    logs_by_level: BTreeMap<&'static str, u64>,
    logs_by_service: BTreeMap<String, u64>,
}

async fn get_ui(state: web::Data<QueryState>) -> HttpResponse {
    ui::answer(&state.ui)
}

async fn get_stats(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let filter = params::filter_only(&decoded(&request)?, &scope_of(&request))?;
    let counts = state
        .read(
            ClientSocket::of(&request),
            state.scoped(&request).level_service_counts(&filter),
        )
        .await?;
    let mut stats = Stats {
        total_logs: 0,
        logs_by_level: Level::ALL.iter().map(|l| (l.as_str(), 0)).collect(),
        logs_by_service: BTreeMap::new(),
    };
    for group in counts {
        stats.total_logs += group.count;
        *stats.logs_by_level.entry(group.level.as_str()).or_default() += group.count;
        *stats.logs_by_service.entry(group.service).or_default() += group.count;
    }
    Ok(HttpResponse::Ok().json(stats))
}

#[derive(Serialize)]
struct ServiceCount {
    service: String,
    count: u64,
}

async fn get_services(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let (filter, limit) = params::services_query(&decoded(&request)?, &scope_of(&request))?;
    let counts = state
        .read(
            ClientSocket::of(&request),
            state.scoped(&request).level_service_counts(&filter),
        )
        .await?;
    let mut by_service: HashMap<String, u64> = HashMap::new();
    for group in counts {
        *by_service.entry(group.service).or_default() += group.count;
    }
    let mut services: Vec<ServiceCount> = by_service
        .into_iter()
        .map(|(service, count)| ServiceCount { service, count })
        .collect();
    services.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.service.cmp(&b.service))
    });
    services.truncate(limit);
    Ok(HttpResponse::Ok().json(services))
}

#[derive(Serialize)]
struct Histogram {
    from: String,
    to: String,
    interval: String,
    interval_ms: i64,
    buckets: Vec<Bucket>,
}

#[derive(Serialize)]
struct Bucket {
    start: String,
    start_ms: i64,
    debug: u64,
    info: u64,
    warn: u64,
    error: u64,
    fatal: u64,
    total: u64,
}

async fn get_histogram(
    request: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = decoded(&request)?;
    let query = params::histogram_query(&pairs, now_micros(), &scope_of(&request))?;
    if let Some(field) = params::histogram_split(&pairs)? {
        return split::split_histogram(&request, &state, query, field).await;
    }
    let counts = state
        .read(
            ClientSocket::of(&request),
            state.scoped(&request).bucket_counts(&query),
        )
        .await?;
    let (from, to) = query.filter.bounds();
    let interval = query.interval;
    let first = from - from.rem_euclid(interval);
    let slots = params::ceil_div(to - first, interval) as usize;
    let mut levels = vec![[0u64; 5]; slots];
    for cell in counts {
        let slot = (cell.bucket_start - first).div_euclid(interval);
        if let Some(row) = usize::try_from(slot).ok().and_then(|s| levels.get_mut(s)) {
            row[cell.level.code() as usize] += cell.count;
        }
    }
    let buckets = levels
        .into_iter()
        .enumerate()
        .map(|(slot, counts)| {
            let start: Micros = first + slot as i64 * interval;
            Bucket {
                start: format_rfc3339(start),
                start_ms: start / 1000,
                debug: counts[0],
                info: counts[1],
                warn: counts[2],
                error: counts[3],
                fatal: counts[4],
                total: counts.iter().sum(),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Histogram {
        from: format_rfc3339(from),
        to: format_rfc3339(to),
        interval: params::format_interval(interval),
        interval_ms: interval / 1000,
        buckets,
    }))
}
