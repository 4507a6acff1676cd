//! `[nats]` through the layers.

use super::load;
use crate::cli::Cli;
use figment::Jail;
use std::time::Duration;

#[test]
fn nats_settings_have_defaults_and_are_checked() {
    Jail::expect_with(|jail| {
        let config = load(Cli::default()).unwrap();
        assert_eq!(config.nats.stream, "OGLOGSTREAM");
        assert_eq!(config.nats.subject_prefix, "oglogstream");
        assert_eq!(config.nats.ack_wait, Duration::from_secs(30));
        jail.set_env("OGLOGSTREAM_NATS__STREAM_MAX_BYTES", "1048576");
        jail.set_env("OGLOGSTREAM_NATS__SUBJECT_PREFIX", "team.logs");
        let config = load(Cli::default()).unwrap();
        assert_eq!(config.nats.stream_max_bytes, 1 << 20);
        assert_eq!(config.nats.subject_prefix, "team.logs");
        jail.set_env("OGLOGSTREAM_NATS__STREAM", "with.dot");
        assert!(load(Cli::default()).unwrap_err().contains("nats.stream"));
        jail.set_env("OGLOGSTREAM_NATS__STREAM", "OK");
        jail.set_env("OGLOGSTREAM_NATS__SUBJECT_PREFIX", "wild.*");
        assert!(
            load(Cli::default())
                .unwrap_err()
                .contains("nats.subject_prefix")
        );
        jail.set_env("OGLOGSTREAM_NATS__SUBJECT_PREFIX", "ok");
        jail.set_env("OGLOGSTREAM_NATS__ACK_WAIT", "10ms");
        assert!(load(Cli::default()).unwrap_err().contains("nats.ack_wait"));
        Ok(())
    });
}

#[test]
fn cluster_settings() {
    Jail::expect_with(|jail| {
        let config = load(Cli::default()).unwrap();
        assert!(config.nats.servers.is_empty());
        assert_eq!(config.nats.replicas, 1);
        assert_eq!(config.nats.publish_timeout, Duration::from_secs(10));
        assert_eq!(config.nats.lease_ttl, Duration::from_secs(9));
        jail.set_env(
            "NATS_URL",
            "nats://u:p@10.0.0.1:4222, nats://10.0.0.2:4222,10.0.0.3",
        );
        jail.set_env("OGLOGSTREAM_NATS__REPLICAS", "3");
        let config = load(Cli::default()).unwrap();
        // Credentials leave the addresses (the client logs those).
        assert_eq!(
            config.nats.servers,
            ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222", "10.0.0.3"]
        );
        assert_eq!(config.nats.credentials.settings(), "nats.url");
        assert_eq!(config.nats.replicas, 3);
        assert!(
            config
                .summary()
                .contains("nats=nats://10.0.0.1:4222,nats://10.0.0.2:4222,10.0.0.3 (nats.url) ")
        );
        jail.set_env("OGLOGSTREAM_NATS__REPLICAS", "6");
        assert!(load(Cli::default()).unwrap_err().contains("nats.replicas"));
        jail.set_env("OGLOGSTREAM_NATS__REPLICAS", "3");
        jail.set_env("NATS_URL", "nats://a:4222,,nats://b:4222");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("nats.url") && error.contains("NATS_URL"),
            "{error}"
        );
        jail.set_env("NATS_URL", "nats://a:4222");
        jail.set_env("OGLOGSTREAM_NATS__PUBLISH_TIMEOUT", "100ms");
        assert!(
            load(Cli::default())
                .unwrap_err()
                .contains("nats.publish_timeout")
        );
        Ok(())
    });
}
