//! Elasticsearch's bulk API (`POST`/`PUT` `/_bulk` and `/{index}/_bulk`)
//! and the cluster information (`GET`/`HEAD /`) its clients ask for first.
//! Answers in Elasticsearch's shapes, with `X-Elastic-Product:
//! Elasticsearch` (the official clients refuse a server without it; `app`
//! adds it to every answer on these paths, refusals included).

use super::{IngestState, decode_error, refusal_head};
use crate::domain::shippers::elasticsearch::{Item, ItemError, decode_bulk};
use crate::domain::time::now_micros;
use crate::http::body::media_type;
use crate::http::error::ApiError;
use crate::metrics::{Protocol, Rejection};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Value, json};
use std::time::Instant;

pub const PRODUCT_HEADER: (&str, &str) = ("x-elastic-product", "Elasticsearch");

/// The Elasticsearch version we answer as: what clients check.
const VERSION: &str = "8.17.0";

pub(super) fn routes(config: &mut web::ServiceConfig) {
    for path in ["/_bulk", "/{index}/_bulk"] {
        config.service(
            web::resource(path)
                .route(web::post().to(post_bulk))
                .route(web::put().to(post_bulk)),
        );
    }
}

/// `GET /` and `HEAD /` answer like Elasticsearch unless a browser asks for
/// a page (`Accept` with `text/html`): the query role's dashboard is there.
pub fn wants_cluster_info(request: &actix_web::dev::RequestHead) -> bool {
    !request
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/html"))
}

pub async fn cluster_info() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "oglogstream",
        "cluster_name": "oglogstream",
        "cluster_uuid": "oglogstream",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "oglogstream",
            "build_hash": env!("CARGO_PKG_VERSION"),
            "build_snapshot": false,
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    }))
}

async fn post_bulk(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> HttpResponse {
    let started = Instant::now();
    let result = accept(&request, payload, &state, started).await;
    result.unwrap_or_else(|error| {
        state.count_refusal(Protocol::Elasticsearch, &error);
        refusal(&error)
    })
}

/// JSON, NDJSON and their Elasticsearch-versioned forms (`compatible-with`
/// is a parameter); a missing type is taken as NDJSON, as curl users send.
fn is_bulk_media_type(media: Option<&str>) -> bool {
    match media {
        None => true,
        Some(media) => {
            let subtype = media.strip_prefix("application/").unwrap_or("");
            let subtype = subtype
                .strip_prefix("vnd.elasticsearch+")
                .unwrap_or(subtype);
            matches!(subtype, "json" | "x-ndjson")
        }
    }
}

async fn accept(
    request: &HttpRequest,
    payload: web::Payload,
    state: &IngestState,
    started: Instant,
) -> Result<HttpResponse, ApiError> {
    if !is_bulk_media_type(media_type(request).as_deref()) {
        return Err(ApiError::unsupported_media_type(
            "application/x-ndjson or application/json (action and document lines)",
        ));
    }
    let body = state.read_shipper_body(request, payload).await?;
    // Two lines per document bound the logs from above.
    state.ensure_room(memchr::memchr_iter(b'\n', &body).count() / 2)?;
    let path_index = request.match_info().get("index");
    let bulk = decode_bulk(&body, path_index, &state.config.limits).map_err(decode_error)?;
    if bulk.items.is_empty() {
        return Err(ApiError::bad_request(
            None,
            "request body is required: action and document lines",
        ));
    }
    state.metrics.reject(
        Protocol::Elasticsearch,
        Rejection::Invalid,
        bulk.refused() as u64,
    );
    let batch = state.stamp_all(bulk.logs, now_micros());
    state
        .publish(Protocol::Elasticsearch, batch.clone())
        .await?;
    let items: Vec<Value> = bulk
        .items
        .iter()
        .map(|item| {
            let stored_id = item.result.as_ref().ok().map(|at| batch[*at].id.as_str());
            answer_item(item, stored_id)
        })
        .collect();
    let errors = items.iter().any(|item| {
        item.as_object()
            .and_then(|item| item.values().next())
            .is_some_and(|result| result.get("error").is_some())
    });
    Ok(HttpResponse::Ok().json(json!({
        "took": started.elapsed().as_millis() as u64,
        "errors": errors,
        "items": items,
    })))
}

/// `{"index": {"_index", "_id", "status": 201, "result": "created", ...}}`
/// or the item's `400` with its `error`.
fn answer_item(item: &Item, stored_id: Option<&str>) -> Value {
    let id = item.id.as_deref().or(stored_id);
    let result = match &item.result {
        Ok(_) => json!({
            "_index": item.index,
            "_id": id,
            "_version": 1,
            "result": "created",
            "_shards": {"total": 1, "successful": 1, "failed": 0},
            "_seq_no": 0,
            "_primary_term": 1,
            "status": 201,
        }),
        Err(ItemError { kind, reason }) => json!({
            "_index": item.index,
            "_id": id,
            "status": 400,
            "error": {"type": kind, "reason": reason},
        }),
    };
    json!({ item.action.as_str(): result })
}

/// Elasticsearch's error shape: `{"error": {"root_cause": [...], "type",
/// "reason"}, "status"}`.
fn refusal(error: &ApiError) -> HttpResponse {
    let status = error.status_code();
    let kind = match status.as_u16() {
        413 => "content_too_long_exception",
        415 => "media_type_header_exception",
        503 => "es_rejected_execution_exception",
        408 => "timeout_exception",
        _ => "illegal_argument_exception",
    };
    let cause = json!({"type": kind, "reason": error.message()});
    let mut response = refusal_head(error);
    response.insert_header((
        header::HeaderName::from_static(PRODUCT_HEADER.0),
        HeaderValue::from_static(PRODUCT_HEADER.1),
    ));
    response.json(json!({
        "error": {"root_cause": [cause], "type": kind, "reason": error.message()},
        "status": status.as_u16(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_media_types() {
        for accepted in [
            None,
            Some("application/json"),
            Some("application/x-ndjson"),
            Some("application/vnd.elasticsearch+x-ndjson"),
            Some("application/vnd.elasticsearch+json"),
        ] {
            assert!(is_bulk_media_type(accepted), "{accepted:?}");
        }
        assert!(!is_bulk_media_type(Some("text/plain")));
        assert!(!is_bulk_media_type(Some("application/x-protobuf")));
    }
}
