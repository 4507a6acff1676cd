//! The one JSON error shape, `{"error": "...", "field": "..."}`, and the one
//! mapping from failures to HTTP statuses.

use crate::bus::BusError;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after_secs: Option<u32>,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// For a `query` that does not parse: the 1-based character column.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<usize>,
    /// For a failure of ours: the request's id, which the log line of the
    /// failure carries too, so the client can quote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>, field: Option<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field,
                position: None,
                request_id: None,
            },
            retry_after_secs: None,
        }
    }

    pub fn bad_request(field: Option<String>, error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error, field)
    }

    pub fn bad_parameter(name: &str, error: impl fmt::Display) -> ApiError {
        ApiError::bad_request(
            Some(name.to_string()),
            format!("query parameter {name}: {error}"),
        )
    }

    /// Names the field or parameter at fault.
    pub fn with_field(mut self, field: &str) -> ApiError {
        self.body.field = Some(field.to_string());
        self
    }

    /// Points the error at a character column of the parameter's value.
    pub fn at_position(mut self, position: Option<usize>) -> ApiError {
        self.body.position = position;
        self
    }

    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the limit of {limit} bytes"),
            None,
        )
    }

    pub fn unsupported_media_type(expected: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type: send {expected}"),
            Some("Content-Type".into()),
        )
    }

    pub fn unsupported_encoding(expected: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding: send {expected}"),
            Some("Content-Encoding".into()),
        )
    }

    pub fn unavailable(error: impl Into<String>, retry_after_secs: u32) -> ApiError {
        ApiError {
            retry_after_secs: Some(retry_after_secs),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error, None)
        }
    }

    pub fn forbidden(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, error, None)
    }

    /// Forbidden because of what `field` names (a read-only alert rule's id).
    pub fn forbidden_field(field: &str, error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, error, Some(field.to_string()))
    }

    /// No detail: whether a key was missing or wrong is not the caller's business.
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid API key", None)
    }

    /// A 401 saying how to get in (sign in, or a key), no more.
    pub fn unauthorized_because(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, error, None)
    }

    pub fn rate_limited(retry_after_secs: u32) -> ApiError {
        ApiError {
            retry_after_secs: Some(retry_after_secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limit exceeded: retry after {retry_after_secs}s"),
                None,
            )
        }
    }

    /// A tenant's limit (`tenants.<limit>`): 429 with `Retry-After` when
    /// waiting helps, else 400.
    pub fn tenant_limit(
        limit: &str,
        error: impl Into<String>,
        retry_after: Option<std::time::Duration>,
    ) -> ApiError {
        let field = Some(format!("tenants.{limit}"));
        match retry_after {
            Some(wait) => ApiError {
                retry_after_secs: Some(wait.as_secs_f64().ceil().max(1.0) as u32),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, error, field)
            },
            None => ApiError::new(StatusCode::BAD_REQUEST, error, field),
        }
    }

    pub fn request_timeout(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, error, None)
    }

    pub fn not_found(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error, None)
    }

    /// The message, for protocols that answer in their own error shape.
    pub fn message(&self) -> &str {
        &self.body.error
    }

    pub fn retry_after_secs(&self) -> Option<u32> {
        self.retry_after_secs
    }

    /// A failure of ours: the client learns little (the request id to
    /// quote), the log learns all (under the same id).
    pub fn internal(cause: impl fmt::Display) -> ApiError {
        let request_id = super::telemetry::current_request_id();
        tracing::error!(error = %cause, request_id = request_id.as_deref().unwrap_or("-"), "request failed");
        let mut error = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: quote the request_id when reporting it",
            None,
        );
        error.body.request_id = request_id;
        error
    }
}

/// What a `401` or `403` said, kept in the response's extensions so the
/// audit record of the refusal can say it too.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub field: Option<String>,
    pub error: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.body.error)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(seconds) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        let mut response = response.json(&self.body);
        if matches!(
            self.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            response.extensions_mut().insert(Refusal {
                field: self.body.field.clone(),
                error: self.body.error.clone(),
            });
        }
        response
    }
}

impl From<BusError> for ApiError {
    fn from(error: BusError) -> ApiError {
        match error {
            BusError::Full(_) => ApiError::unavailable(format!("{error}; retry after a second"), 1),
            // Space comes back when someone frees it: not within a second.
            BusError::StoreFull(_) => ApiError::unavailable(error.to_string(), 5),
            BusError::Unavailable(_) | BusError::Closed => {
                ApiError::unavailable(format!("{error}; retry shortly"), 2)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Unavailable(_) => ApiError::unavailable(error.to_string(), 2),
            StoreError::DiskFull(_) => ApiError::unavailable(error.to_string(), 5),
            StoreError::OverLimit { field, message } => ApiError::bad_request(Some(field), message),
            StoreError::Rejected(_) | StoreError::Internal(_) => ApiError::internal(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[tokio::test]
    async fn a_failure_of_ours_names_the_request_for_the_client_to_quote() {
        let response = crate::http::telemetry::with_request_id("req-42".into(), async {
            ApiError::internal("clickhouse refused: DB::Exception (171)").error_response()
        })
        .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().try_into_bytes().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["request_id"], "req-42");
        assert!(
            !body.to_string().contains("DB::Exception"),
            "the cause stays in the log: {body}"
        );
        let unavailable = ApiError::from(StoreError::DiskFull("no room".into()));
        assert_eq!(unavailable.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.retry_after_secs(), Some(5));
    }
}
