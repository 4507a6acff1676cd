//! `[server]`: where the HTTP server listens, how many workers it runs and
//! how long it waits, and its TLS (HTTPS, client certificates), as written
//! in the file and as validated for `app`.

use crate::domain::settings::{InvalidSetting, duration, in_range};
use crate::tls::server::{ClientCertificates, ListenerTls};
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
    /// PEM certificate chain and key: HTTPS instead of HTTP when both are set.
    pub tls_cert: String,
    pub tls_key: String,
    /// PEM CA whose client certificates are verified (mutual TLS).
    pub tls_client_ca: String,
    /// Who must present a client certificate when `tls_client_ca` is set:
    /// `ingest` (the ingest paths; browsers reach the rest without one) or
    /// `all` (no certificate, no connection).
    pub tls_client_auth: String,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            host: "0.0.0.0".into(),
            port: 8080,
            shutdown_timeout: "30s".into(),
            body_read_timeout: "30s".into(),
            workers: 0,
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_client_ca: String::new(),
            tls_client_auth: "ingest".into(),
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
    /// HTTPS; plain HTTP when `None`.
    pub tls: Option<ListenerTls>,
}

impl ServerConfig {
    /// Whether the ingest paths need a client certificate, checked per
    /// request (`tls_client_auth = "ingest"`); with `"all"` the handshake
    /// has already demanded one.
    pub fn ingest_needs_client_certificate(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| {
            tls.client_ca.is_some() && tls.client_certificates == ClientCertificates::WhenPresented
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
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
        let client_certificates = match self.tls_client_auth.trim() {
            "ingest" => ClientCertificates::WhenPresented,
            "all" => ClientCertificates::Required,
            other => {
                return Err(InvalidSetting::new(
                    "server.tls_client_auth",
                    format!(
                        "{other:?}: use \"ingest\" (the ingest paths need a client certificate) or \"all\" (every connection does)"
                    ),
                ));
            }
        };
        Ok(ServerConfig {
            listen,
            shutdown_timeout: duration("server.shutdown_timeout", &self.shutdown_timeout)?,
            workers: in_range("server.workers", self.workers, 0, 256)?,
            tls: ListenerTls::from_settings(
                "server",
                &self.tls_cert,
                &self.tls_key,
                &self.tls_client_ca,
                client_certificates,
            )?,
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
