//! Who may call what, and how often: API keys, per-client rate limits, CORS,
//! and the client address they all key on. Each is a pure piece, tested on
//! its own; `guard.rs` applies them to requests in one middleware.

pub mod auth;
pub mod client_ip;
pub mod cors;
pub mod guard;
pub mod rate_limit;

/// What a request touches, which decides the key and the limit it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `/log`, `/log/bulk` and the shippers' paths (`/v1/logs`,
    /// `/loki/api/v1/push`, `/_bulk`, `/{index}/_bulk`): needs an ingest
    /// key, counts against the ingest limit.
    Ingest,
    /// `/api/*`, `/ws/*`, `/metrics`: needs a read key, counts against the query limit.
    Read,
    /// `/health` (load balancers) and the dashboard's static files.
    Open,
}

impl Access {
    pub fn of(path: &str) -> Access {
        if crate::metrics::Protocol::of_path(path).is_some() {
            Access::Ingest
        } else if path.starts_with("/api/") || path.starts_with("/ws/") || path == "/metrics" {
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
        assert_eq!(Access::of("/log"), Access::Ingest);
        assert_eq!(Access::of("/log/bulk"), Access::Ingest);
        assert_eq!(Access::of("/logs"), Access::Open);
        assert_eq!(Access::of("/v1/logs"), Access::Ingest);
        assert_eq!(Access::of("/loki/api/v1/push"), Access::Ingest);
        assert_eq!(Access::of("/_bulk"), Access::Ingest);
        assert_eq!(Access::of("/my-index/_bulk"), Access::Ingest);
        assert_eq!(Access::of("/"), Access::Open);
        assert_eq!(Access::of("/api/stats"), Access::Read);
        assert_eq!(Access::of("/ws/live"), Access::Read);
        assert_eq!(Access::of("/metrics"), Access::Read);
        assert_eq!(Access::of("/health"), Access::Open);
        assert_eq!(Access::of("/explorer"), Access::Open);
    }
}
