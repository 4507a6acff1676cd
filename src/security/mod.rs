//! Who may call what, and how often: API keys, per-client rate limits, CORS,
//! and the client address they all key on. Each is a pure piece, tested on
//! its own; `guard.rs` applies them to requests in one middleware.

pub mod auth;
pub mod client_ip;
pub mod cors;
pub mod guard;
pub mod rate_limit;
mod settings;

pub use settings::{RateLimit, RawRateLimit, RawSecurity, SecurityConfig};

/// What a request touches, which decides the key and the limit it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `/log`, `/log/bulk` and the shippers' paths (`/v1/logs`,
    /// `/loki/api/v1/push`, `/_bulk`, `/{index}/_bulk`): needs an ingest
    /// key, counts against the ingest limit.
    Ingest,
    /// `/api/*`, `/ws/*`, `/metrics` and the Loki query API
    /// (`/loki/api/*` but push): needs a read key, counts against the query
    /// limit.
    Read,
    /// Changes under `/api/alerts` (any method but `GET`/`HEAD`): needs an
    /// admin key when admin keys are set (else what reads need), counts
    /// against the query limit.
    Admin,
    /// `/health` (load balancers) and the dashboard's static files.
    Open,
}

impl Access {
    pub fn of(method: &actix_web::http::Method, path: &str) -> Access {
        use actix_web::http::Method;
        let changes = !matches!(*method, Method::GET | Method::HEAD);
        if changes && (path == "/api/alerts" || path.starts_with("/api/alerts/")) {
            Access::Admin
        } else if crate::metrics::Protocol::of_path(path).is_some() {
            Access::Ingest
        } else if path.starts_with("/api/")
            || path.starts_with("/ws/")
            || path == "/metrics"
            || path.starts_with("/loki/")
        {
            Access::Read
        } else {
            Access::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified() {
        use actix_web::http::Method;
        let of = |path| Access::of(&Method::GET, path);
        assert_eq!(Access::of(&Method::POST, "/log"), Access::Ingest);
        assert_eq!(Access::of(&Method::POST, "/log/bulk"), Access::Ingest);
        assert_eq!(of("/logs"), Access::Open);
        assert_eq!(Access::of(&Method::POST, "/v1/logs"), Access::Ingest);
        assert_eq!(
            Access::of(&Method::POST, "/loki/api/v1/push"),
            Access::Ingest
        );
        assert_eq!(Access::of(&Method::POST, "/_bulk"), Access::Ingest);
        assert_eq!(Access::of(&Method::POST, "/my-index/_bulk"), Access::Ingest);
        assert_eq!(of("/"), Access::Open);
        assert_eq!(of("/api/stats"), Access::Read);
        assert_eq!(of("/ws/live"), Access::Read);
        assert_eq!(of("/loki/api/v1/query_range"), Access::Read);
        assert_eq!(of("/loki/api/v1/tail"), Access::Read);
        assert_eq!(
            Access::of(&Method::POST, "/loki/api/v1/series"),
            Access::Read
        );
        assert_eq!(
            Access::of(&Method::GET, "/loki/api/v1/push"),
            Access::Ingest
        );
        assert_eq!(of("/metrics"), Access::Read);
        assert_eq!(of("/health"), Access::Open);
        assert_eq!(of("/explorer"), Access::Open);
        assert_eq!(of("/api/alerts"), Access::Read);
        assert_eq!(
            Access::of(&Method::POST, "/api/alerts/rules"),
            Access::Admin
        );
        assert_eq!(
            Access::of(&Method::PUT, "/api/alerts/rules/x"),
            Access::Admin
        );
        assert_eq!(
            Access::of(&Method::DELETE, "/api/alerts/rules/x"),
            Access::Admin
        );
        assert_eq!(Access::of(&Method::POST, "/api/alertsx"), Access::Read);
        assert_eq!(Access::of(&Method::POST, "/api/logs"), Access::Read);
    }
}
