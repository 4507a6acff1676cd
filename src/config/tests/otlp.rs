//! `[otlp]` through the layers.

use super::load;
use crate::cli::Cli;
use figment::Jail;

#[test]
fn the_grpc_listener_is_off_by_default_and_set_from_the_environment() {
    Jail::expect_with(|jail| {
        let config = load(Cli::default()).unwrap();
        assert!(config.otlp.grpc_listen.is_none());
        assert_eq!(config.otlp.grpc_max_concurrent_streams, 16);
        jail.set_env("OGLOGSTREAM_OTLP__GRPC_LISTEN", "0.0.0.0:4317");
        jail.set_env("OGLOGSTREAM_OTLP__GRPC_MAX_CONCURRENT_STREAMS", "4");
        let config = load(Cli::default()).unwrap();
        assert_eq!(
            config.otlp.grpc_listen.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:4317")
        );
        assert_eq!(config.otlp.grpc_max_concurrent_streams, 4);
        assert!(config.summary().contains("otlp_grpc=0.0.0.0:4317"));
        jail.set_env("OGLOGSTREAM_OTLP__GRPC_LISTEN", "collector:4317");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("otlp.grpc_listen")
                && error.contains("OGLOGSTREAM_OTLP__GRPC_LISTEN")
                && error.contains("0.0.0.0:4317"),
            "{error}"
        );
        jail.set_env("OGLOGSTREAM_OTLP__GRPC_LISTEN", "");
        jail.set_env("OGLOGSTREAM_OTLP__GRPC_MAX_CONCURRENT_STREAMS", "0");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("otlp.grpc_max_concurrent_streams"),
            "{error}"
        );
        Ok(())
    });
}
