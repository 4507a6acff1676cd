//! `POST /loki/api/v1/push`: Loki's push API, JSON (optionally gzip) or
//! snappy-compressed protobuf. Answers `204` (Loki clients treat `200` as a
//! failure); errors as plain text, like Loki.

use super::{IngestState, decode_error, protobuf_or_json, refusal_head};
use crate::domain::shippers::compression;
use crate::domain::shippers::loki::{self, Format};
use crate::domain::time::now_micros;
use crate::http::error::ApiError;
use crate::metrics::{Protocol, Rejection};
use actix_web::{HttpRequest, HttpResponse, web};

pub(super) fn routes(config: &mut web::ServiceConfig) {
    config.route("/loki/api/v1/push", web::post().to(post_push));
}

async fn post_push(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> HttpResponse {
    let format = protobuf_or_json(&request, Format::Protobuf, Format::Json);
    let result = match format {
        Some(format) => accept(&request, payload, &state, format).await,
        None => Err(ApiError::unsupported_media_type(
            "application/json or application/x-protobuf (snappy-compressed)",
        )),
    };
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
    format: Format,
) -> Result<HttpResponse, ApiError> {
    let body = state.read_shipper_body(request, payload).await?;
    state.ensure_room(1)?;
    let body = match format {
        Format::Protobuf => compression::unsnappy(&body, state.config.max_bulk_bytes)
            .map_err(decode_error)?
            .into(),
        Format::Json => body,
    };
    let decoded = loki::decode(&body, format, &state.config.limits).map_err(decode_error)?;
    state.metrics.reject(
        Protocol::Loki,
        Rejection::Invalid,
        decoded.rejected.len() as u64,
    );
    let batch = state.stamp_all(decoded.logs, now_micros());
    state.publish(Protocol::Loki, batch).await?;
    Ok(HttpResponse::NoContent().finish())
}
