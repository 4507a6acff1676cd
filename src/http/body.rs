//! Request bodies read with a hard size limit, so a client cannot make us
//! buffer more than the limit, whatever its Content-Length says.

use super::error::ApiError;
use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{BytesMut, Payload};
use futures_util::StreamExt;

/// The media type without parameters, lowercased (`application/json`).
pub fn media_type(request: &HttpRequest) -> Option<String> {
    let value = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

pub fn is_json(media_type: &str) -> bool {
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// Reads the whole body, refusing more than `limit` bytes (413) and clients
/// that take longer than `timeout` to send it (408): a slow client must not
/// hold a worker's memory open indefinitely.
pub async fn read_limited(
    request: &HttpRequest,
    payload: Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<BytesMut, ApiError> {
    tokio::time::timeout(timeout, read_body(request, payload, limit))
        .await
        .map_err(|_| {
            ApiError::request_timeout(format!(
                "the request body did not arrive within {timeout:?}"
            ))
        })?
}

async fn read_body(
    request: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(None, format!("could not read the request body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
