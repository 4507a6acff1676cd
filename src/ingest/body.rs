//! Reading a request body, the one way every ingest handler does it
//! ([`IngestState::read_body`]): the media type picks the protocol's format
//! (415 otherwise); the body is read within its size and time limits (413,
//! 408) and inflated from `Content-Encoding: gzip` where the protocol takes
//! one, within the same size limit (so a zip bomb gets 413 having cost at
//! most that much memory); the queue is asked for room (503) before the
//! body is paid for; and the format's own compression (Loki's snappy) is
//! undone. The handler then only decodes and answers.

use super::state::IngestState;
use crate::domain::shippers::{DecodeError, compression};
use crate::http::body::{media_type, read_limited};
use crate::http::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpRequest, web};
use bytes::Bytes;

/// Which ingest limit bounds a protocol's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodySize {
    /// `ingest.max_body_bytes`: one log.
    Single,
    /// `ingest.max_bulk_bytes`: a batch.
    Bulk,
}

/// Whether a protocol's clients may compress the body they send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    /// Shippers gzip: identity or gzip, any other 415.
    IdentityOrGzip,
    /// Our own JSON API never looked at the header; it still does not.
    Ignored,
}

/// A protocol's body formats, as its media types name them.
pub trait BodyFormat: Copy {
    /// What a 415 answer tells the client to send.
    const EXPECTED: &'static str;
    const SIZE: BodySize;
    const CONTENT_ENCODING: ContentEncoding;

    /// The format `media_type` (lowercased, without parameters; `None` when
    /// the request has none) names, if the protocol takes it.
    fn of_media_type(media_type: Option<&str>) -> Option<Self>;

    /// At most how many logs `body` holds, so that a full queue refuses the
    /// request before it is decoded.
    fn logs_at_most(self, _body: &[u8]) -> usize {
        1
    }

    /// The body as the decoder reads it: undone from the format's own
    /// compression, within `limit` bytes.
    fn unwrap(self, body: Bytes, _limit: usize) -> Result<Bytes, DecodeError> {
        Ok(body)
    }
}

impl IngestState {
    /// The request's body format and bytes, ready for the decoder.
    pub(super) async fn read_body<F: BodyFormat>(
        &self,
        request: &HttpRequest,
        payload: web::Payload,
    ) -> Result<(F, Bytes), ApiError> {
        let format = F::of_media_type(media_type(request).as_deref())
            .ok_or_else(|| ApiError::unsupported_media_type(F::EXPECTED))?;
        let gzipped = match F::CONTENT_ENCODING {
            ContentEncoding::Ignored => false,
            ContentEncoding::IdentityOrGzip => gzipped(request)?,
        };
        let limit = match F::SIZE {
            BodySize::Single => self.config.max_body_bytes,
            BodySize::Bulk => self.config.max_bulk_bytes,
        };
        let body = read_limited(request, payload, limit, self.config.body_read_timeout).await?;
        let body = if gzipped {
            Bytes::from(compression::gunzip(&body, limit).map_err(decode_error)?)
        } else {
            body.freeze()
        };
        // After reading the body, so the keep-alive connection stays usable.
        self.ensure_room(format.logs_at_most(&body))?;
        let body = format.unwrap(body, limit).map_err(decode_error)?;
        Ok((format, body))
    }
}

/// `Content-Encoding`: `true` for gzip, `false` for none; 415 for others.
fn gzipped(request: &HttpRequest) -> Result<bool, ApiError> {
    let encoding = request
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|value| value.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(false),
        Some("gzip" | "x-gzip") => Ok(true),
        Some(_) => Err(ApiError::unsupported_encoding(
            "the body as it is (identity) or gzip",
        )),
    }
}

/// For protocols that take protobuf or JSON: which one `media_type` names.
pub fn protobuf_or_json<T>(media_type: Option<&str>, protobuf: T, json: T) -> Option<T> {
    match media_type {
        Some("application/x-protobuf") => Some(protobuf),
        Some(media) if crate::http::body::is_json(media) => Some(json),
        _ => None,
    }
}

/// A body the decoder cannot read: 400, or 413 when it inflates too far.
pub fn decode_error(error: DecodeError) -> ApiError {
    match error {
        DecodeError::Malformed(message) => ApiError::bad_request(None, message),
        DecodeError::TooLarge(limit) => ApiError::payload_too_large(limit),
    }
}
