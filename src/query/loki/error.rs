//! Errors in Loki's shape: a plain-text body with the message (what Loki's
//! HTTP layer writes and Grafana shows as is), the status Loki uses: 400
//! for a query that does not parse (`parse error at line 1, col N: …`), a
//! bad parameter or a limit, 503 (with `Retry-After`) when the read took
//! longer than `query.timeout` or the store is away.

use crate::domain::logql::{EvalError, ParseError};
use crate::http::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

#[derive(Debug)]
pub struct LokiError {
    status: StatusCode,
    message: String,
    retry_after_secs: Option<u32>,
}

impl LokiError {
    /// 400: a bad parameter, a limit, a query we cannot answer.
    pub fn bad_request(message: impl Into<String>) -> LokiError {
        LokiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400 naming the parameter, as Loki words it.
    pub fn bad_parameter(name: &str, problem: impl fmt::Display) -> LokiError {
        LokiError::bad_request(format!("invalid parameter {name:?}: {problem}"))
    }

    pub fn not_found(message: impl Into<String>) -> LokiError {
        LokiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ParseError> for LokiError {
    fn from(error: ParseError) -> LokiError {
        LokiError::bad_request(error.to_string())
    }
}

impl From<EvalError> for LokiError {
    fn from(error: EvalError) -> LokiError {
        LokiError::bad_request(error.to_string())
    }
}

/// Our API's failures (timeouts, the store away, a client gone) keep
/// their status and message; only the shape changes.
impl From<ApiError> for LokiError {
    fn from(error: ApiError) -> LokiError {
        LokiError {
            status: error.status_code(),
            message: error.message().to_string(),
            retry_after_secs: error.retry_after_secs(),
        }
    }
}

impl From<crate::store::StoreError> for LokiError {
    fn from(error: crate::store::StoreError) -> LokiError {
        LokiError::from(ApiError::from(error))
    }
}

impl fmt::Display for LokiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl ResponseError for LokiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        ));
        if let Some(seconds) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        response.body(format!("{}\n", self.message))
    }
}
