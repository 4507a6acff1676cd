//! `[ingest]`: body limits, the in-memory queue and per-log limits.

use crate::domain::byte_size::RawByteSize;
use crate::domain::parse::LogLimits;
use crate::domain::settings::{InvalidSetting, in_range};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    pub max_body_bytes: i64,
    pub max_bulk_bytes: i64,
    pub queue_capacity: i64,
    pub queue_max_bytes: RawByteSize,
    pub max_message_bytes: i64,
    pub max_service_chars: i64,
    pub max_attributes: i64,
    pub max_attribute_key_bytes: i64,
    pub max_attribute_value_bytes: i64,
}

impl Default for RawIngest {
    fn default() -> Self {
        let limits = LogLimits::default();
        RawIngest {
            max_body_bytes: 50 * 1024,
            max_bulk_bytes: 10 * 1024 * 1024,
            queue_capacity: 20_000,
            queue_max_bytes: RawByteSize::Text("32MiB".into()),
            max_message_bytes: limits.max_message_bytes as i64,
            max_service_chars: limits.max_service_chars as i64,
            max_attributes: limits.max_attributes as i64,
            max_attribute_key_bytes: limits.max_attribute_key_bytes as i64,
            max_attribute_value_bytes: limits.max_attribute_value_bytes as i64,
        }
    }
}

#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub body_read_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_bulk_bytes: usize,
    pub queue_capacity: usize,
    /// The in-memory queue's bound in bytes (its logs' estimated size): also
    /// the space kept in reserve for a spill file at a stop that cannot
    /// store them (see `process::spill`).
    pub queue_max_bytes: u64,
    pub limits: LogLimits,
}

impl RawIngest {
    /// `body_read_timeout` lives in `[server]` but governs ingest bodies.
    pub fn validate(&self, body_read_timeout: Duration) -> Result<IngestConfig, InvalidSetting> {
        let limits = LogLimits {
            max_message_bytes: in_range(
                "ingest.max_message_bytes",
                self.max_message_bytes,
                1,
                1 << 20,
            )?,
            max_service_chars: in_range(
                "ingest.max_service_chars",
                self.max_service_chars,
                1,
                1000,
            )?,
            max_attributes: in_range("ingest.max_attributes", self.max_attributes, 0, 1000)?,
            max_attribute_key_bytes: in_range(
                "ingest.max_attribute_key_bytes",
                self.max_attribute_key_bytes,
                1,
                4096,
            )?,
            max_attribute_value_bytes: in_range(
                "ingest.max_attribute_value_bytes",
                self.max_attribute_value_bytes,
                1,
                1 << 20,
            )?,
        };
        Ok(IngestConfig {
            body_read_timeout,
            max_body_bytes: in_range("ingest.max_body_bytes", self.max_body_bytes, 256, 1 << 30)?,
            max_bulk_bytes: in_range("ingest.max_bulk_bytes", self.max_bulk_bytes, 256, 1 << 30)?,
            queue_capacity: in_range("ingest.queue_capacity", self.queue_capacity, 1, 100_000_000)?,
            queue_max_bytes: match self.queue_max_bytes.resolve("ingest.queue_max_bytes")? {
                Some(bytes) if (64 << 10..=1 << 40).contains(&bytes) => bytes,
                _ => {
                    return Err(InvalidSetting::new(
                        "ingest.queue_max_bytes",
                        "must be a size from 64KiB to 1TiB",
                    ));
                }
            },
            limits,
        })
    }
}
