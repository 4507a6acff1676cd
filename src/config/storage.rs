//! `[storage]`: the embedded store's directory, how long logs are kept, how
//! much they may take, and how much of the disk must stay free.

use super::{ConfigError, in_range, invalid};
use crate::domain::byte_size::RawByteSize;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
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
    pub(super) fn retention_days(&self) -> Result<Option<u32>, ConfigError> {
        let days = in_range("storage.retention_days", self.retention_days, 0, 36_500)?;
        Ok((days > 0).then_some(days as u32))
    }

    pub(super) fn validate(&self) -> Result<StorageConfig, ConfigError> {
        let max_bytes = self
            .max_bytes
            .resolve("storage.max_bytes")?
            .filter(|bytes| *bytes > 0);
        if max_bytes.is_some_and(|bytes| bytes < 1 << 20) {
            return Err(invalid(
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

#[cfg(test)]
// figment's Jail API returns its large error type from every closure.
#[allow(clippy::result_large_err)]
mod tests {
    use crate::cli::Cli;
    use figment::Jail;

    #[test]
    fn sizes_come_as_numbers_or_text() {
        Jail::expect_with(|jail| {
            let config = super::super::tests::load(Cli::default()).unwrap();
            assert_eq!(config.storage.min_free_bytes, None);
            assert_eq!(config.storage.max_bytes, None);
            jail.set_env("OGLOGSTREAM_STORAGE__MIN_FREE_BYTES", "64MiB");
            jail.set_env("OGLOGSTREAM_STORAGE__MAX_BYTES", "1073741824");
            let config = super::super::tests::load(Cli::default()).unwrap();
            assert_eq!(config.storage.min_free_bytes, Some(64 << 20));
            assert_eq!(config.storage.max_bytes, Some(1 << 30));
            jail.set_env("OGLOGSTREAM_STORAGE__MAX_BYTES", "lots");
            let error = super::super::tests::load(Cli::default()).unwrap_err();
            assert!(error.contains("storage.max_bytes"), "{error}");
            Ok(())
        });
    }
}
