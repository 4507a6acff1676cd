//! Elasticsearch's bulk API (`POST`/`PUT` `/_bulk` and `/{index}/_bulk`)
//! and the cluster information (`GET`/`HEAD /`) its clients ask for first.
//! Answers in Elasticsearch's shapes, with `X-Elastic-Product:
//! Elasticsearch` (the official clients refuse a server without it; `app`
//! adds it to every answer on these paths, refusals included). `decoder.rs`
//! reads the bulk body.

mod decoder;

pub use decoder::{Bulk, decode_bulk};

use super::body::{BodyFormat, BodySize, ContentEncoding, decode_error};
use super::state::{IngestState, refusal_head};
use crate::domain::LogRecord;
use crate::domain::time::now_micros;
use crate::http::error::ApiError;
use crate::metrics::{Protocol, Rejection};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use decoder::Item;
use serde_json::json;
use std::io::Write as _;
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

/// A bulk body: action and document lines.
#[derive(Clone, Copy, Debug)]
struct BulkBody;

impl BodyFormat for BulkBody {
    const EXPECTED: &'static str =
        "application/x-ndjson or application/json (action and document lines)";
    const SIZE: BodySize = BodySize::Bulk;
    const CONTENT_ENCODING: ContentEncoding = ContentEncoding::IdentityOrGzip;

    fn of_media_type(media_type: Option<&str>) -> Option<BulkBody> {
        is_bulk_media_type(media_type).then_some(BulkBody)
    }

    /// Two lines per document bound the logs from above.
    fn logs_at_most(self, body: &[u8]) -> usize {
        memchr::memchr_iter(b'\n', body).count() / 2
    }
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
    let (BulkBody, body) = state.read_body::<BulkBody>(request, payload).await?;
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
    let batch = state.stamp_all(
        logs,
        now_micros(),
        &crate::ingest::state::request_tenant(request),
    );
    state
        .publish(Protocol::Elasticsearch, batch.clone())
        .await?;
    let took = started.elapsed().as_millis() as u64;
    let body = bulk_answer(took, &items, &batch);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Bytes of a stored item's answer after its `_id` (ES's fixed shard
/// bookkeeping, which clients read but we have no use for).
const CREATED_TAIL: &[u8] = br#","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}}"#;

/// `{"took", "errors", "items": [...]}`, one item per action in order:
/// `{"index": {"_index", "_id", "_version": 1, "result": "created",
/// "_shards", "_seq_no", "_primary_term", "status": 201}}` or the item's
/// `400` with its `error`. Written straight into one buffer sized for the
/// answer: serde per item (its `Option` fields and nested structs) cost
/// about as much CPU as decoding the document did (callgrind).
fn bulk_answer(took: u64, items: &[Item<'_>], batch: &[LogRecord]) -> Vec<u8> {
    let errors = items.iter().any(|item| item.result.is_err());
    let mut out = Vec::with_capacity(64 + items.len() * (CREATED_TAIL.len() + 80));
    let _ = write!(out, r#"{{"took":{took},"errors":{errors},"items":["#);
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(item.action.name().as_bytes());
        out.extend_from_slice(br#"":{"_index":"#);
        push_optional_str(&mut out, item.index.as_deref());
        out.extend_from_slice(br#","_id":"#);
        match &item.result {
            Ok(at) => {
                let stored_id = batch.get(*at).map(|record| record.id.as_str());
                push_optional_str(&mut out, item.id.as_deref().or(stored_id));
                out.extend_from_slice(CREATED_TAIL);
            }
            Err(error) => {
                push_optional_str(&mut out, item.id.as_deref());
                out.extend_from_slice(br#","status":400,"error":{"type":"#);
                push_str(&mut out, error.kind);
                out.extend_from_slice(br#","reason":"#);
                push_str(&mut out, &error.reason);
                out.extend_from_slice(b"}}}");
            }
        }
    }
    out.extend_from_slice(b"]}");
    out
}

fn push_optional_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string; copied as it is unless it needs escapes (index names and
/// ids nearly never do), which serde_json writes.
fn push_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
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

    #[test]
    fn the_bulk_answer_has_elasticsearch_shape_items_in_order() {
        use super::decoder::{Action, ItemError};
        use crate::domain::Level;
        use std::borrow::Cow;
        let record = |id: &str| LogRecord {
            id: id.into(),
            timestamp: 0,
            level: Level::Info,
            service: "s".into(),
            message: "m".into(),
            attributes: Default::default(),
            ..Default::default()
        };
        let batch = [record("0194a"), record("0194b")];
        let items = [
            Item {
                action: Action::Index,
                index: Some(Cow::Borrowed("logs")),
                id: None,
                result: Ok(0),
            },
            Item {
                action: Action::Create,
                index: Some(Cow::Borrowed("we\"ird\n")),
                id: Some(Cow::Borrowed("mine")),
                result: Ok(1),
            },
            Item {
                action: Action::Delete,
                index: None,
                id: Some(Cow::Borrowed("7")),
                result: Err(ItemError {
                    kind: "illegal_argument_exception",
                    reason: "a \"quoted\" reason".into(),
                }),
            },
        ];
        let answer = bulk_answer(12, &items, &batch);
        let created = |index: &str, id: &str| {
            json!({"_index": index, "_id": id, "_version": 1, "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": 0, "_primary_term": 1, "status": 201})
        };
        let expected = json!({"took": 12, "errors": true, "items": [
            {"index": created("logs", "0194a")},
            {"create": created("we\"ird\n", "mine")},
            {"delete": {"_index": null, "_id": "7", "status": 400,
                "error": {"type": "illegal_argument_exception", "reason": "a \"quoted\" reason"}}},
        ]});
        let parsed: serde_json::Value = serde_json::from_slice(&answer).expect("valid JSON");
        assert_eq!(parsed, expected);
        // Field order as Elasticsearch writes it (some clients scan for it).
        let text = String::from_utf8(answer).unwrap();
        assert!(text.starts_with(r#"{"took":12,"errors":true,"items":[{"index":{"_index":"logs","_id":"0194a","_version":1,"result":"created","_shards""#), "{text}");
        let no_errors = bulk_answer(0, &items[..1], &batch);
        assert!(no_errors.starts_with(br#"{"took":0,"errors":false,"#));
    }
}
