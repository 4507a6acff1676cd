//! Elasticsearch's bulk API (`POST`/`PUT` `/_bulk` and `/{index}/_bulk`)
//! and the cluster information (`GET`/`HEAD /`) its clients ask for first.
//! Answers in Elasticsearch's shapes, with `X-Elastic-Product:
//! Elasticsearch` (the official clients refuse a server without it; `app`
//! adds it to every answer on these paths, refusals included).

use super::{IngestState, decode_error, refusal_head};
use crate::domain::shippers::elasticsearch::{Bulk, Item, decode_bulk};
use crate::domain::time::now_micros;
use crate::http::body::media_type;
use crate::http::error::ApiError;
use crate::metrics::{Protocol, Rejection};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use serde_json::json;
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
    let Bulk { logs, items } = bulk;
    let batch = state.stamp_all(logs, now_micros());
    state
        .publish(Protocol::Elasticsearch, batch.clone())
        .await?;
    let answer = BulkAnswer {
        took: started.elapsed().as_millis() as u64,
        errors: items.iter().any(|item| item.result.is_err()),
        items: items
            .iter()
            .map(|item| ItemAnswer {
                item,
                stored_id: item.result.as_ref().ok().map(|at| batch[*at].id.as_str()),
            })
            .collect(),
    };
    // Written straight from the items: a `serde_json::Value` per item cost
    // more than decoding the document did.
    let body = serde_json::to_vec(&answer).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

#[derive(Serialize)]
struct BulkAnswer<'a> {
    took: u64,
    errors: bool,
    items: Vec<ItemAnswer<'a>>,
}

/// `{"index": {"_index", "_id", "status": 201, "result": "created", ...}}`
/// or the item's `400` with its `error`.
struct ItemAnswer<'a> {
    item: &'a Item<'a>,
    stored_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Shards {
    total: u8,
    successful: u8,
    failed: u8,
}

#[derive(Serialize)]
struct ItemError<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct ItemResult<'a> {
    _index: Option<&'a str>,
    _id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    _version: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    _shards: Option<Shards>,
    #[serde(skip_serializing_if = "Option::is_none")]
    _seq_no: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    _primary_term: Option<u8>,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ItemError<'a>>,
}

impl Serialize for ItemAnswer<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let item = self.item;
        let mut result = ItemResult {
            _index: item.index.as_deref(),
            _id: item.id.as_deref().or(self.stored_id),
            _version: None,
            result: None,
            _shards: None,
            _seq_no: None,
            _primary_term: None,
            status: 400,
            error: None,
        };
        match &item.result {
            Ok(_) => {
                result._version = Some(1);
                result.result = Some("created");
                result._shards = Some(Shards {
                    total: 1,
                    successful: 1,
                    failed: 0,
                });
                result._seq_no = Some(0);
                result._primary_term = Some(1);
                result.status = 201;
            }
            Err(error) => {
                result.error = Some(ItemError {
                    kind: error.kind,
                    reason: &error.reason,
                });
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(item.action.name(), &result)?;
        map.end()
    }
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
