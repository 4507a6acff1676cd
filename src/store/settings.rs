//! `[storage]`: the embedded store's directory, how long logs are kept, how
//! much they may take, and how much of the disk must stay free.

use crate::domain::byte_size::RawByteSize;
use crate::domain::settings::{InvalidSetting, in_range};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub data_dir: PathBuf,
    pub retention_days: i64,
    /// `"auto"` (1% of the filesystem or 256 MiB, the smaller), or a size.
    pub min_free_bytes: RawByteSize,
    /// `0` for no bound, or a size.
    pub max_bytes: RawByteSize,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            data_dir: PathBuf::from("data"),
            retention_days: 0,
            min_free_bytes: RawByteSize::Text("auto".into()),
            max_bytes: RawByteSize::Bytes(0),
        }
    }
}

/// The embedded store's space settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageConfig {
    /// Writes (and so ingest) are refused below this much free space;
    /// `None`: 1% of the filesystem or 256 MiB, the smaller.
    pub min_free_bytes: Option<u64>,
    /// The oldest logs are deleted while the stored logs take more; `None`:
    /// no bound.
    pub max_bytes: Option<u64>,
}

impl RawStorage {
    /// Days of logs to keep; `None` keeps everything.
    pub fn retention_days(&self) -> Result<Option<u32>, InvalidSetting> {
        let days = in_range("storage.retention_days", self.retention_days, 0, 36_500)?;
        Ok((days > 0).then_some(days as u32))
    }

    pub fn validate(&self) -> Result<StorageConfig, InvalidSetting> {
        let max_bytes = self
            .max_bytes
            .resolve("storage.max_bytes")?
            .filter(|bytes| *bytes > 0);
        if max_bytes.is_some_and(|bytes| bytes < 1 << 20) {
            return Err(InvalidSetting::new(
                "storage.max_bytes",
                "must be at least 1MiB (or 0 for no bound)",
            ));
        }
        Ok(StorageConfig {
            min_free_bytes: self.min_free_bytes.resolve("storage.min_free_bytes")?,
            max_bytes,
        })
    }
}
