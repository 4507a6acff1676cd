//! HTTP plumbing shared by the roles: the error shape, bounded body reading,
//! health, the listener's settings and its TLS.

pub mod audit;
pub mod body;
pub mod error;
pub mod health;
pub mod server;
pub mod telemetry;
pub mod tls;

use actix_web::HttpRequest;
use error::ApiError;

/// Unknown paths answer in the same JSON shape as every other error.
pub async fn not_found(request: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}: see docs/api.md",
        request.method(),
        request.path()
    )))
}
