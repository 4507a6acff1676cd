//! `[syslog]`: the syslog listeners of the ingest role (TCP, TLS and UDP,
//! each off unless given an address) and their limits.
//!
//! Syslog over TLS (RFC 5425) has a listener of its own, `tls_listen`,
//! rather than TLS on `tcp_listen`: the RFC gives it its own port (6514),
//! senders choose TLS by port, and a plain listener for old senders can run
//! beside it.

use crate::domain::TenantId;
use crate::domain::settings::{InvalidSetting, in_range, optional_address};
use crate::tls::server::{ClientCertificates, ListenerTls};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslog {
    pub tcp_listen: String,
    pub udp_listen: String,
    pub max_connections: i64,
    pub max_line_bytes: i64,
    /// Syslog over TLS: the address (RFC 5425's port is 6514), the PEM
    /// certificate chain and key, and optionally the CA whose client
    /// certificates senders must present.
    pub tls_listen: String,
    pub tls_cert: String,
    pub tls_key: String,
    pub tls_client_ca: String,
    /// With tenants on, the tenant the listeners' logs are stored under
    /// (syslog carries none of its own). Empty: `tenants.default_tenant`,
    /// else `default`.
    pub tenant: String,
}

impl Default for RawSyslog {
    fn default() -> Self {
        RawSyslog {
            tcp_listen: String::new(),
            udp_listen: String::new(),
            max_connections: 1000,
            max_line_bytes: 64 * 1024,
            tls_listen: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_client_ca: String::new(),
            tenant: String::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SyslogConfig {
    /// `None`: no TCP listener.
    pub tcp_listen: Option<SocketAddr>,
    /// `None`: no UDP listener.
    pub udp_listen: Option<SocketAddr>,
    /// `None`: no syslog over TLS; else its address and TLS settings.
    pub tls_listen: Option<(SocketAddr, ListenerTls)>,
    /// Open TCP connections at most; more are closed at once (and counted).
    pub max_connections: usize,
    /// A longer message (line or octet-counted frame, or datagram) is
    /// skipped and counted; the rest of the connection goes on.
    pub max_line_bytes: usize,
    /// `None`: the default tenant.
    pub tenant: Option<TenantId>,
}

impl RawSyslog {
    pub fn validate(&self) -> Result<SyslogConfig, InvalidSetting> {
        // A CA here means senders must present a certificate it signed:
        // RFC 5425 expects both ends to authenticate when they can.
        let tls = ListenerTls::from_settings(
            "syslog",
            &self.tls_cert,
            &self.tls_key,
            &self.tls_client_ca,
            ClientCertificates::Required,
        )?;
        let tls_listen = match (
            optional_address("syslog.tls_listen", &self.tls_listen, "0.0.0.0:6514")?,
            tls,
        ) {
            (None, None) => None,
            (Some(address), Some(tls)) => Some((address, tls)),
            (Some(_), None) => {
                return Err(InvalidSetting::new(
                    "syslog.tls_cert",
                    "syslog.tls_listen is set: give the certificate (syslog.tls_cert) and key (syslog.tls_key) to present",
                ));
            }
            (None, Some(_)) => {
                return Err(InvalidSetting::new(
                    "syslog.tls_listen",
                    "syslog.tls_cert is set: give the address to listen on for syslog over TLS (RFC 5425's port is 6514, e.g. 0.0.0.0:6514)",
                ));
            }
        };
        let tenant = match self.tenant.trim() {
            "" => None,
            text => {
                Some(TenantId::parse(text).map_err(|e| InvalidSetting::new("syslog.tenant", e))?)
            }
        };
        Ok(SyslogConfig {
            tenant,
            tcp_listen: optional_address("syslog.tcp_listen", &self.tcp_listen, "0.0.0.0:5514")?,
            udp_listen: optional_address("syslog.udp_listen", &self.udp_listen, "0.0.0.0:5514")?,
            tls_listen,
            max_connections: in_range(
                "syslog.max_connections",
                self.max_connections,
                1,
                1_000_000,
            )?,
            max_line_bytes: in_range("syslog.max_line_bytes", self.max_line_bytes, 256, 1 << 24)?,
        })
    }
}
