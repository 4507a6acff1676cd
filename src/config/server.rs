//! `[server]`: where HTTP listens and how long it waits.

use super::{ConfigError, duration, in_range, invalid};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub host: String,
    pub port: i64,
    pub shutdown_timeout: String,
    pub body_read_timeout: String,
    pub workers: i64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            host: "0.0.0.0".into(),
            port: 8080,
            shutdown_timeout: "30s".into(),
            body_read_timeout: "30s".into(),
            workers: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `host:port`, resolved when binding.
    pub listen: String,
    pub shutdown_timeout: Duration,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

impl RawServer {
    pub(super) fn validate(&self) -> Result<ServerConfig, ConfigError> {
        let port = self.port;
        if !(0..=65535).contains(&port) {
            return Err(invalid(
                "server.port",
                format!("{port} is not a port (0-65535)"),
            ));
        }
        if self.host.trim().is_empty() {
            return Err(invalid("server.host", "must not be empty"));
        }
        let host = &self.host;
        let listen = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(ServerConfig {
            listen,
            shutdown_timeout: duration("server.shutdown_timeout", &self.shutdown_timeout)?,
            workers: in_range("server.workers", self.workers, 0, 256)?,
        })
    }
}

/// `HOST:PORT` from `--listen`, IPv6 hosts in brackets.
pub(super) fn split_listen(listen: &str) -> Option<(String, i64)> {
    let (host, port) = listen.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}
