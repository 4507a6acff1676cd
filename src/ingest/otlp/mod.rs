//! `POST /v1/logs`: OTLP/HTTP logs, protobuf or JSON (OTLP over gRPC, which
//! shares the decoder, is `grpc/`). Answers `200` with an
//! `ExportLogsServiceResponse` in the request's encoding (records refused,
//! those without a body, counted in `partial_success`), or an error status
//! with a `google.rpc.Status` body, also in the request's encoding.
//! `decoder.rs` reads the request.

mod decoder;
pub mod grpc;
mod settings;
mod tenants;

pub use decoder::{Encoding, ResourceRun, decode, decode_by_resource, rejection_message, response};
pub use settings::{OtlpConfig, RawOtlp};
pub use tenants::ExportTenants;

use super::body::{BodyFormat, BodySize, ContentEncoding, decode_error, protobuf_or_json};
use super::state::{IngestState, refusal_head};
use crate::domain::time::now_micros;
use crate::http::body::media_type;
use crate::http::error::ApiError;
use crate::metrics::Protocol;
use crate::tenants::ResourceTenants;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use tenants::NotStored;

pub(super) fn routes(config: &mut web::ServiceConfig) {
    config.route("/v1/logs", web::post().to(post_logs));
}

impl BodyFormat for Encoding {
    const EXPECTED: &'static str = "application/x-protobuf or application/json (OTLP/HTTP)";
    const SIZE: BodySize = BodySize::Bulk;
    const CONTENT_ENCODING: ContentEncoding = ContentEncoding::IdentityOrGzip;

    fn of_media_type(media_type: Option<&str>) -> Option<Encoding> {
        protobuf_or_json(media_type, Encoding::Protobuf, Encoding::Json)
    }
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
    let result = accept(&request, payload, &state).await;
    result.unwrap_or_else(|error| {
        state.count_refusal(Protocol::Otlp, &error);
        let encoding = Encoding::of_media_type(media_type(&request).as_deref());
        refusal(&error, encoding.unwrap_or(Encoding::Json))
    })
}

async fn accept(
    request: &HttpRequest,
    payload: web::Payload,
    state: &IngestState,
) -> Result<HttpResponse, ApiError> {
    let (encoding, body) = state.read_body::<Encoding>(request, payload).await?;
    let tenants = export_tenants(request);
    let limits = &state.config.limits;
    let (decoded, runs) = match tenants.attribute() {
        Some(attribute) => decode_by_resource(&body, encoding, limits, attribute),
        None => decode(&body, encoding, limits).map(|decoded| (decoded, Vec::new())),
    }
    .map_err(decode_error)?;
    let stored = tenants::store(state, decoded, runs, &tenants, now_micros())
        .await
        .map_err(|not_stored| match not_stored {
            NotStored::Tenants(error) => error,
            NotStored::Bus(error) => ApiError::from(error),
        })?;
    Ok(HttpResponse::Ok()
        .content_type(content_type(encoding))
        .body(response(stored.rejected, &stored.error_message, encoding)))
}

/// Whose logs the request holds, as the gate left it: each resource's when
/// `tenants.otlp_attribute` is set, else the request's.
fn export_tenants(request: &HttpRequest) -> ExportTenants {
    use actix_web::HttpMessage;
    match request.extensions().get::<ResourceTenants>() {
        Some(resources) => ExportTenants::PerResource(resources.clone()),
        None => ExportTenants::One(crate::ingest::state::request_tenant(request)),
    }
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
        .body(decoder::status(code, error.message(), encoding))
}
