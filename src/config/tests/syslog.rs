//! `[syslog]` through the layers.

use super::load;
use crate::cli::Cli;
use figment::Jail;

#[test]
fn off_by_default_and_set_from_the_environment() {
    Jail::expect_with(|jail| {
        let config = load(Cli::default()).unwrap();
        assert!(config.syslog.tcp_listen.is_none() && config.syslog.udp_listen.is_none());
        jail.set_env("OGLOGSTREAM_SYSLOG__TCP_LISTEN", "127.0.0.1:5514");
        jail.set_env("OGLOGSTREAM_SYSLOG__UDP_LISTEN", "[::1]:5515");
        jail.set_env("OGLOGSTREAM_SYSLOG__MAX_CONNECTIONS", "10");
        let config = load(Cli::default()).unwrap();
        assert_eq!(
            config.syslog.tcp_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:5514")
        );
        assert_eq!(config.syslog.udp_listen.map(|a| a.port()), Some(5515));
        assert_eq!(config.syslog.max_connections, 10);
        jail.set_env("OGLOGSTREAM_SYSLOG__TCP_LISTEN", "localhost");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("syslog.tcp_listen") && error.contains("OGLOGSTREAM_SYSLOG__TCP_LISTEN"),
            "{error}"
        );
        Ok(())
    });
}
