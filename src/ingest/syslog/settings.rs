//! `[syslog]`: the syslog listeners of the ingest role (TCP and UDP, each
//! off unless given an address) and their limits.

use crate::domain::settings::{InvalidSetting, in_range, optional_address};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslog {
    pub tcp_listen: String,
    pub udp_listen: String,
    pub max_connections: i64,
    pub max_line_bytes: i64,
}

impl Default for RawSyslog {
    fn default() -> Self {
        RawSyslog {
            tcp_listen: String::new(),
            udp_listen: String::new(),
            max_connections: 1000,
            max_line_bytes: 64 * 1024,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SyslogConfig {
    /// `None`: no TCP listener.
    pub tcp_listen: Option<SocketAddr>,
    /// `None`: no UDP listener.
    pub udp_listen: Option<SocketAddr>,
    /// Open TCP connections at most; more are closed at once (and counted).
    pub max_connections: usize,
    /// A longer message (line or octet-counted frame, or datagram) is
    /// skipped and counted; the rest of the connection goes on.
    pub max_line_bytes: usize,
}

impl RawSyslog {
    pub fn validate(&self) -> Result<SyslogConfig, InvalidSetting> {
        Ok(SyslogConfig {
            tcp_listen: optional_address("syslog.tcp_listen", &self.tcp_listen, "0.0.0.0:5514")?,
            udp_listen: optional_address("syslog.udp_listen", &self.udp_listen, "0.0.0.0:5514")?,
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
