//! `[security]` and `[rate_limit]` through the layers.

use super::load;
use crate::cli::Cli;
use figment::Jail;

#[test]
fn security_and_rate_limits_from_the_environment() {
    Jail::expect_with(|jail| {
        jail.set_env("OGLOGSTREAM_RATE_LIMIT__INGEST_PER_SECOND", "2.5");
        jail.set_env(
            "OGLOGSTREAM_SECURITY__READ_KEYS",
            "[\"read-key-0123456789abcdef\"]",
        );
        jail.set_env("OGLOGSTREAM_SECURITY__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]");
        jail.set_env(
            "OGLOGSTREAM_SECURITY__ADMIN_KEYS",
            "[\"admin-key-0123456789abcdef\"]",
        );
        let config = load(Cli::default()).unwrap();
        assert!(!config.security.admin_keys.is_open());
        let rate = config.security.ingest_rate.expect("ingest rate limit");
        assert_eq!((rate.per_second, rate.burst), (2.5, 5.0));
        assert!(config.security.query_rate.is_none());
        assert!(!config.security.read_keys.is_open());
        assert!(config.security.ingest_keys.is_open());
        assert_eq!(config.security.trusted_proxies.len(), 1);
        Ok(())
    });
}
