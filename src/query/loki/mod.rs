//! The Loki query API under `/loki/api/v1/`, so Grafana's Loki data
//! source, Explore, dashboards and Logs Drilldown read OgLogStream as they
//! read Loki (issue 21; what Grafana sends and needs back:
//! `docs/grafana.md`). Served by the query role; push stays with ingest.
//!
//! LogQL is the domain's (`domain::logql`): parsed, pushed down into the
//! store-neutral `Expr` and evaluated on rows, or counted by the store
//! (`Store::grouped_counts`). This folder only reads parameters, runs the
//! reads and shapes answers:
//! - `params.rs`: Loki's parameters (times, steps, limits, `POST` forms);
//!   `settings.rs`: `[loki]` (the tenants come from the gate, as for
//!   every read: `X-Scope-OrgID` is resolved there).
//! - `execute.rs`: a query's store reads (rows page by page, or counts);
//!   `selection.rs`: the selectors of the metadata endpoints.
//! - `query.rs` (`query_range`, `query`), `labels.rs` (`labels`, values,
//!   `series`, `detected_labels`), `volume.rs` (`index/*`), `fields.rs`
//!   (`detected_fields`, field values), `patterns.rs`, `tail.rs`
//!   (WebSocket), `info.rs` (`drilldown-limits`, `buildinfo`,
//!   `format_query`).
//! - `answer.rs`, `error.rs`: Loki's JSON and its plain-text errors;
//!   `request.rs`: what the handlers share (one bound on every read).

mod answer;
mod error;
mod execute;
mod fields;
mod info;
mod labels;
mod params;
mod patterns;
mod query;
mod request;
mod selection;
mod settings;
mod tail;
mod volume;

pub use settings::{LokiConfig, RawLoki};

use actix_web::web;

const PREFIX: &str = "/loki/api/v1";

pub fn routes(config: &mut web::ServiceConfig) {
    // GET and form-encoded POST wherever Loki takes both.
    config.service(
        web::scope(PREFIX)
            .route("/query_range", web::get().to(query::query_range))
            .route("/query_range", web::post().to(query::query_range))
            .route("/query", web::get().to(query::query))
            .route("/query", web::post().to(query::query))
            .route("/labels", web::get().to(labels::labels))
            .route("/labels", web::post().to(labels::labels))
            .route("/label", web::get().to(labels::labels))
            .route(
                "/label/{name}/values",
                web::get().to(labels::label_values_of),
            )
            .route(
                "/label/{name}/values",
                web::post().to(labels::label_values_of),
            )
            .route("/series", web::get().to(labels::series))
            .route("/series", web::post().to(labels::series))
            .route("/index/stats", web::get().to(volume::index_stats))
            .route("/index/stats", web::post().to(volume::index_stats))
            .route("/index/volume", web::get().to(volume::volume))
            .route("/index/volume", web::post().to(volume::volume))
            .route("/index/volume_range", web::get().to(volume::volume_range))
            .route("/index/volume_range", web::post().to(volume::volume_range))
            .route("/detected_labels", web::get().to(labels::detected_labels))
            .route("/detected_fields", web::get().to(fields::detected_fields))
            .route(
                "/detected_field/{name}/values",
                web::get().to(fields::detected_field_values),
            )
            .route("/patterns", web::get().to(patterns::patterns))
            .route("/patterns", web::post().to(patterns::patterns))
            .route("/tail", web::get().to(tail::tail))
            .route("/drilldown-limits", web::get().to(info::drilldown_limits))
            .route("/status/buildinfo", web::get().to(info::buildinfo))
            .route("/format_query", web::get().to(info::format_query))
            .route("/format_query", web::post().to(info::format_query))
            .default_service(web::to(not_found)),
    );
}

/// An unknown path under the API: Loki's 404, never the dashboard.
async fn not_found(
    request: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, error::LokiError> {
    Err(error::LokiError::not_found(format!(
        "{} {} is not a Loki query endpoint here (push goes to the ingest role)",
        request.method(),
        request.path()
    )))
}
