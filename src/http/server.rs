//! `[server]`: where the HTTP server listens, how many workers it runs and
//! how long it waits, as written in the file and as validated for `app`.

use crate::domain::settings::{InvalidSetting, duration, in_range};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
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
    pub fn validate(&self) -> Result<ServerConfig, InvalidSetting> {
        let port = self.port;
        if !(0..=65535).contains(&port) {
            return Err(InvalidSetting::new(
                "server.port",
                format!("{port} is not a port (0-65535)"),
            ));
        }
        if self.host.trim().is_empty() {
            return Err(InvalidSetting::new("server.host", "must not be empty"));
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

impl RawServer {
    /// How long a client may take to send a request body: written in
    /// `[server]`, applied by ingest (`IngestConfig::body_read_timeout`).
    pub fn body_read_timeout(&self) -> Result<Duration, InvalidSetting> {
        duration("server.body_read_timeout", &self.body_read_timeout)
    }
}

/// `HOST:PORT` from `--listen`, IPv6 hosts in brackets.
pub fn split_listen(listen: &str) -> Option<(String, i64)> {
    let (host, port) = listen.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}
