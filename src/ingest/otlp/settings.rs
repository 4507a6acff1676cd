//! `[otlp]`: OTLP over gRPC for the ingest role (OTLP/HTTP needs no setting:
//! it is `POST /v1/logs` on the HTTP port).

use crate::domain::settings::{InvalidSetting, in_range, optional_address};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOtlp {
    pub grpc_listen: String,
    pub grpc_max_concurrent_streams: i64,
}

impl Default for RawOtlp {
    fn default() -> Self {
        RawOtlp {
            grpc_listen: String::new(),
            grpc_max_concurrent_streams: 16,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// `None`: no gRPC listener.
    pub grpc_listen: Option<SocketAddr>,
    /// Exports one HTTP/2 connection may have in flight at once. Each holds
    /// its request (up to `ingest.max_bulk_bytes`) while it is decoded, so
    /// this bounds a connection's memory as the HTTP workers bound theirs.
    pub grpc_max_concurrent_streams: u32,
}

impl RawOtlp {
    pub fn validate(&self) -> Result<OtlpConfig, InvalidSetting> {
        Ok(OtlpConfig {
            grpc_listen: optional_address("otlp.grpc_listen", &self.grpc_listen, "0.0.0.0:4317")?,
            grpc_max_concurrent_streams: in_range(
                "otlp.grpc_max_concurrent_streams",
                self.grpc_max_concurrent_streams,
                1,
                1000,
            )? as u32,
        })
    }
}
