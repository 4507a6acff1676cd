//! Refusals as the gRPC statuses OTLP exporters act on: a full pipeline is
//! `RESOURCE_EXHAUSTED` carrying `google.rpc.RetryInfo` (exporters retry
//! that code only when the server says when: the OpenTelemetry spec's
//! "throttling"), the bus away `UNAVAILABLE` (retried with their own
//! back-off), a missing or wrong key `UNAUTHENTICATED`, a request that is not
//! an `ExportLogsServiceRequest` `INVALID_ARGUMENT` (never retried).
//!
//! The retry delay travels in both places clients read it: in
//! `grpc-status-details-bin` (a `google.rpc.Status` whose details hold the
//! `RetryInfo`: Go's and Java's exporters, the Collector) and as the
//! `google.rpc.retryinfo-bin` trailer (the Python exporter).

use crate::bus::BusError;
use crate::domain::shippers::DecodeError;
use crate::domain::shippers::protobuf::{put_bytes_field, put_varint_field};
use crate::http::error::ApiError;
use actix_web::ResponseError;
use actix_web::http::StatusCode;
use bytes::Bytes;
use tonic::metadata::BinaryMetadataValue;
use tonic::{Code, Status};

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";
const RETRY_INFO_TRAILER: &str = "google.rpc.retryinfo-bin";

/// `google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; }`
fn retry_info(seconds: u32) -> Vec<u8> {
    let mut duration = Vec::new();
    // Duration { int64 seconds = 1; int32 nanos = 2; }
    put_varint_field(&mut duration, 1, u64::from(seconds));
    let mut info = Vec::new();
    put_bytes_field(&mut info, 1, &duration);
    info
}

/// `google.rpc.Status { int32 code = 1; string message = 2;
/// repeated google.protobuf.Any details = 3; }` with one `Any { string
/// type_url = 1; bytes value = 2; }` holding `info`.
fn status_details(code: Code, message: &str, info: &[u8]) -> Vec<u8> {
    let mut any = Vec::new();
    put_bytes_field(&mut any, 1, RETRY_INFO_TYPE.as_bytes());
    put_bytes_field(&mut any, 2, info);
    let mut status = Vec::new();
    put_varint_field(&mut status, 1, code as u64);
    put_bytes_field(&mut status, 2, message.as_bytes());
    put_bytes_field(&mut status, 3, &any);
    status
}

/// `code` with a retry delay the exporter waits before it sends again.
pub fn retry_after(code: Code, message: impl Into<String>, seconds: u32) -> Status {
    let message = message.into();
    let info = retry_info(seconds.max(1));
    let details = status_details(code, &message, &info);
    let mut status = Status::with_details(code, message, Bytes::from(details));
    status
        .metadata_mut()
        .insert_bin(RETRY_INFO_TRAILER, BinaryMetadataValue::from_bytes(&info));
    status
}

/// The bus did not take the logs (or has no room for them).
pub fn of_bus(error: BusError) -> Status {
    let api = ApiError::from(error.clone());
    let seconds = api.retry_after_secs().unwrap_or(1);
    match error {
        BusError::Full(_) | BusError::StoreFull(_) => {
            retry_after(Code::ResourceExhausted, api.message(), seconds)
        }
        BusError::Unavailable(_) | BusError::Closed => {
            retry_after(Code::Unavailable, api.message(), seconds)
        }
    }
}

/// What the gate refused: no or a wrong key, or over the rate limit.
pub fn of_gate(error: ApiError) -> Status {
    match error.status_code() {
        StatusCode::UNAUTHORIZED => Status::unauthenticated(error.message()),
        StatusCode::FORBIDDEN => Status::permission_denied(error.message()),
        StatusCode::BAD_REQUEST => Status::invalid_argument(error.message()),
        StatusCode::TOO_MANY_REQUESTS => retry_after(
            Code::ResourceExhausted,
            error.message(),
            error.retry_after_secs().unwrap_or(1),
        ),
        _ => Status::unavailable(error.message()),
    }
}

/// A message that is not an `ExportLogsServiceRequest`.
pub fn of_decode(error: DecodeError) -> Status {
    Status::invalid_argument(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::shippers::protobuf::{Fields, values_of};

    #[test]
    fn a_full_pipeline_says_when_to_retry_in_both_places() {
        let status = of_bus(BusError::Full("50000 logs are waiting".into()));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("queue is full"),
            "{}",
            status.message()
        );
        // grpc-status-details-bin: Status { code, message, details: [Any] }
        let mut fields = Fields::new(status.details());
        let code = fields.next().unwrap().unwrap();
        assert_eq!((code.0, code.1.integer().unwrap()), (1, 8));
        let any = values_of(status.details(), 3).next().unwrap().unwrap();
        let any = any.bytes().unwrap();
        let type_url = values_of(any, 1).next().unwrap().unwrap();
        assert_eq!(type_url.string().unwrap(), RETRY_INFO_TYPE);
        let info = values_of(any, 2).next().unwrap().unwrap().bytes().unwrap();
        assert_eq!(info, retry_info(1).as_slice());
        // RetryInfo { retry_delay: Duration { seconds: 1 } }
        let delay = values_of(info, 1).next().unwrap().unwrap().bytes().unwrap();
        let seconds = values_of(delay, 1)
            .next()
            .unwrap()
            .unwrap()
            .integer()
            .unwrap();
        assert_eq!(seconds, 1);
        let trailer = status.metadata().get_bin(RETRY_INFO_TRAILER).unwrap();
        assert_eq!(trailer.to_bytes().unwrap().as_ref(), info);

        let away = of_bus(BusError::Unavailable("no responders".into()));
        assert_eq!(away.code(), Code::Unavailable);
        let store_full = of_bus(BusError::StoreFull("disk".into()));
        assert_eq!(store_full.code(), Code::ResourceExhausted);
    }

    #[test]
    fn refusals_keep_their_meaning() {
        assert_eq!(
            of_gate(ApiError::unauthorized()).code(),
            Code::Unauthenticated
        );
        let limited = of_gate(ApiError::rate_limited(3));
        assert_eq!(limited.code(), Code::ResourceExhausted);
        let info = limited.metadata().get_bin(RETRY_INFO_TRAILER).unwrap();
        assert_eq!(info.to_bytes().unwrap().as_ref(), retry_info(3).as_slice());
        let malformed = of_decode(DecodeError::Malformed("malformed protobuf: x".into()));
        assert_eq!(malformed.code(), Code::InvalidArgument);
    }
}
