//! `POST /v1/logs`: OTLP/HTTP logs, protobuf or JSON. Answers `200` with an
//! `ExportLogsServiceResponse` in the request's encoding (records refused,
//! those without a body, counted in `partial_success`), or an error status
//! with a `google.rpc.Status` body, also in the request's encoding.

use super::{IngestState, decode_error, protobuf_or_json, refusal_head};
use crate::domain::shippers::otlp::{self, Encoding};
use crate::domain::time::now_micros;
use crate::http::error::ApiError;
use crate::metrics::{Protocol, Rejection};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

pub(super) fn routes(config: &mut web::ServiceConfig) {
    config.route("/v1/logs", web::post().to(post_logs));
}

fn content_type(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    }
}

async fn post_logs(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> HttpResponse {
    let encoding = protobuf_or_json(&request, Encoding::Protobuf, Encoding::Json);
    let result = match encoding {
        Some(encoding) => accept(&request, payload, &state, encoding).await,
        None => Err(ApiError::unsupported_media_type(
            "application/x-protobuf or application/json (OTLP/HTTP)",
        )),
    };
    result.unwrap_or_else(|error| {
        state.count_refusal(Protocol::Otlp, &error);
        refusal(&error, encoding.unwrap_or(Encoding::Json))
    })
}

async fn accept(
    request: &HttpRequest,
    payload: web::Payload,
    state: &IngestState,
    encoding: Encoding,
) -> Result<HttpResponse, ApiError> {
    let body = state.read_shipper_body(request, payload).await?;
    state.ensure_room(1)?;
    let decoded = otlp::decode(&body, encoding, &state.config.limits).map_err(decode_error)?;
    let rejected = decoded.rejected.len();
    state
        .metrics
        .reject(Protocol::Otlp, Rejection::Invalid, rejected as u64);
    let batch = state.stamp_all(decoded.logs, now_micros());
    state.publish(Protocol::Otlp, batch).await?;
    let error_message = decoded
        .rejected
        .first()
        .map(|first| {
            format!(
                "{rejected} log record(s) refused; the first, record {}: {}",
                first.index, first.error
            )
        })
        .unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type(content_type(encoding))
        .body(otlp::response(rejected, &error_message, encoding)))
}

/// The HTTP status stays ours; the body is the `google.rpc.Status` OTLP
/// clients log, with the gRPC code closest to the status.
fn refusal(error: &ApiError, encoding: Encoding) -> HttpResponse {
    let status = error.status_code();
    let code = match status {
        StatusCode::SERVICE_UNAVAILABLE => 14, // UNAVAILABLE
        StatusCode::TOO_MANY_REQUESTS | StatusCode::PAYLOAD_TOO_LARGE => 8, // RESOURCE_EXHAUSTED
        StatusCode::REQUEST_TIMEOUT => 4,      // DEADLINE_EXCEEDED
        StatusCode::INTERNAL_SERVER_ERROR => 13, // INTERNAL
        _ => 3,                                // INVALID_ARGUMENT
    };
    refusal_head(error)
        .content_type(content_type(encoding))
        .body(otlp::status(code, error.message(), encoding))
}
