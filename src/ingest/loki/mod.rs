//! `POST /loki/api/v1/push`: Loki's push API, JSON (optionally gzip) or
//! snappy-compressed protobuf. Answers `204` (Loki clients treat `200` as a
//! failure); errors as plain text, like Loki. `decoder.rs` reads the request.

mod decoder;

pub use decoder::{Format, decode};

use super::body::{BodyFormat, BodySize, ContentEncoding, decode_error, protobuf_or_json};
use super::state::{IngestState, refusal_head};
use crate::domain::audit::RESERVED_SERVICE_ERROR;
use crate::domain::shippers::{DecodeError, compression};
use crate::domain::time::now_micros;
use crate::http::error::ApiError;
use crate::metrics::{Protocol, Rejection};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

pub(super) fn routes(config: &mut web::ServiceConfig) {
    config.route("/loki/api/v1/push", web::post().to(post_push));
}

impl BodyFormat for Format {
    const EXPECTED: &'static str = "application/json or application/x-protobuf (snappy-compressed)";
    const SIZE: BodySize = BodySize::Bulk;
    const CONTENT_ENCODING: ContentEncoding = ContentEncoding::IdentityOrGzip;

    fn of_media_type(media_type: Option<&str>) -> Option<Format> {
        protobuf_or_json(media_type, Format::Protobuf, Format::Json)
    }

    /// Loki's protobuf is always snappy-compressed.
    fn unwrap(self, body: Bytes, limit: usize) -> Result<Bytes, DecodeError> {
        match self {
            Format::Protobuf => Ok(compression::unsnappy(&body, limit)?.into()),
            Format::Json => Ok(body),
        }
    }
}

async fn post_push(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> HttpResponse {
    let result = accept(&request, payload, &state).await;
    result.unwrap_or_else(|error| {
        state.count_refusal(Protocol::Loki, &error);
        refusal_head(&error)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}\n", error.message()))
    })
}

async fn accept(
    request: &HttpRequest,
    payload: web::Payload,
    state: &IngestState,
) -> Result<HttpResponse, ApiError> {
    let (format, body) = state.read_body::<Format>(request, payload).await?;
    let decoded = decode(&body, format, &state.config.limits).map_err(decode_error)?;
    state.metrics.reject(
        Protocol::Loki,
        Rejection::Invalid,
        decoded.rejected.len() as u64,
    );
    let reserved = decoded
        .rejected
        .iter()
        .filter(|rejected| rejected.error == RESERVED_SERVICE_ERROR)
        .count();
    let batch = state.stamp_all(
        decoded.logs,
        now_micros(),
        &crate::ingest::state::request_tenant(request),
    );
    state.publish(Protocol::Loki, batch).await?;
    // Loki answers 400 for entries it refuses (the others are kept): a
    // shipper writing the audit log's service must hear about it.
    if reserved > 0 {
        return Err(ApiError::bad_request(
            Some("service".into()),
            format!("{reserved} entries refused: {RESERVED_SERVICE_ERROR}"),
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}
