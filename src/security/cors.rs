//! CORS: which browser origins may call the API. By default only the
//! dashboard's own origin (the request's Host), since the dashboard is served
//! by the same process; other origins must be listed (`*` allows any).

#[derive(Clone, Debug, Default)]
pub struct CorsPolicy {
    allowed: Vec<String>,
    any: bool,
}

pub const ALLOWED_METHODS: &str = "GET, POST, OPTIONS";
pub const ALLOWED_HEADERS: &str = "Content-Type, Authorization, X-API-Key, X-Request-Id";
pub const EXPOSED_HEADERS: &str = "Retry-After, X-Request-Id";

impl CorsPolicy {
    pub fn new(origins: &[String]) -> CorsPolicy {
        let allowed: Vec<String> = origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        CorsPolicy {
            any: allowed.iter().any(|o| o == "*"),
            allowed,
        }
    }

    /// `host` is the request's Host header: an origin on the same host and
    /// port is the dashboard itself.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.any || self.allowed.contains(&origin) {
            return true;
        }
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        matches!((origin_host, host), (Some(origin_host), Some(host)) if origin_host == host.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_origin_and_listed_origins_only() {
        let policy = CorsPolicy::new(&["https://Grafana.example.com/".into()]);
        assert!(policy.allows("http://localhost:8080", Some("localhost:8080")));
        assert!(policy.allows("https://grafana.example.com", Some("logs.example.com")));
        assert!(!policy.allows("https://evil.example", Some("localhost:8080")));
        assert!(!policy.allows("http://localhost:9999", Some("localhost:8080")));
        assert!(CorsPolicy::new(&["*".into()]).allows("https://any.example", None));
    }
}
