//! `[storage]` through the layers.

use super::load;
use crate::cli::Cli;
use figment::Jail;

#[test]
fn sizes_come_as_numbers_or_text() {
    Jail::expect_with(|jail| {
        let config = load(Cli::default()).unwrap();
        assert_eq!(config.storage.min_free_bytes, None);
        assert_eq!(config.storage.max_bytes, None);
        jail.set_env("OGLOGSTREAM_STORAGE__MIN_FREE_BYTES", "64MiB");
        jail.set_env("OGLOGSTREAM_STORAGE__MAX_BYTES", "1073741824");
        let config = load(Cli::default()).unwrap();
        assert_eq!(config.storage.min_free_bytes, Some(64 << 20));
        assert_eq!(config.storage.max_bytes, Some(1 << 30));
        jail.set_env("OGLOGSTREAM_STORAGE__MAX_BYTES", "lots");
        let error = load(Cli::default()).unwrap_err();
        assert!(error.contains("storage.max_bytes"), "{error}");
        Ok(())
    });
}
