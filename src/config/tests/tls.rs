//! TLS and secrets through the layers: the keys of `[server]`, `[syslog]`,
//! `[nats]` and `[clickhouse]`, secrets from the environment taken
//! verbatim, mistakes named, and the security page's TOML blocks made of
//! real keys.

use super::load;
use crate::bus::nats::NatsCredentials;
use crate::cli::Cli;
use figment::Jail;

#[test]
fn tls_settings_resolve_and_half_settings_are_named() {
    Jail::expect_with(|jail| {
        let config = load(Cli::default()).unwrap();
        assert!(config.server.tls.is_none() && config.syslog.tls_listen.is_none());
        assert!(!config.nats.tls.is_set() && !config.clickhouse.tls.is_set());
        assert_eq!(config.server.scheme(), "http");

        jail.set_env("OGLOGSTREAM_SERVER__TLS_CERT", "/c.pem");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("server.tls_key") && error.contains("OGLOGSTREAM_SERVER__TLS_KEY"),
            "{error}"
        );
        jail.set_env("OGLOGSTREAM_SERVER__TLS_KEY", "/k.pem");
        jail.set_env("OGLOGSTREAM_SERVER__TLS_CLIENT_CA", "/ca.pem");
        let config = load(Cli::default()).unwrap();
        assert_eq!(config.server.scheme(), "https");
        assert!(config.server.ingest_needs_client_certificate());
        assert!(config.summary().contains("listen=https://0.0.0.0:8080"));
        // The dashboard's address for notifications follows the scheme.
        assert!(config.alerts.external_url.starts_with("https://"));
        jail.set_env("OGLOGSTREAM_SERVER__TLS_CLIENT_AUTH", "all");
        assert!(
            !load(Cli::default())
                .unwrap()
                .server
                .ingest_needs_client_certificate()
        );

        jail.set_env("OGLOGSTREAM_SYSLOG__TLS_LISTEN", "0.0.0.0:6514");
        assert!(
            load(Cli::default())
                .unwrap_err()
                .contains("syslog.tls_cert")
        );
        jail.set_env("OGLOGSTREAM_SYSLOG__TLS_CERT", "/c.pem");
        jail.set_env("OGLOGSTREAM_SYSLOG__TLS_KEY", "/k.pem");
        let config = load(Cli::default()).unwrap();
        assert_eq!(
            config
                .syslog
                .tls_listen
                .as_ref()
                .map(|(address, _)| address.port()),
            Some(6514)
        );

        jail.set_env("OGLOGSTREAM_NATS__TLS_KEY", "/k.pem");
        assert!(load(Cli::default()).unwrap_err().contains("nats.tls_cert"));
        jail.set_env("OGLOGSTREAM_NATS__TLS_CERT", "/c.pem");
        jail.set_env("OGLOGSTREAM_CLICKHOUSE__TLS_CA", "/ca.pem");
        let config = load(Cli::default()).unwrap();
        assert!(config.nats.tls.is_set() && config.clickhouse.tls.is_set());
        Ok(())
    });
}

#[test]
fn secrets_from_the_environment_are_verbatim_and_never_summarised() {
    Jail::expect_with(|jail| {
        jail.set_env("NATS_URL", "nats://10.0.0.1:4222");
        jail.set_env("OGLOGSTREAM_NATS__USER", "1234");
        // Read like TOML, this would be the number 123 (or refused).
        jail.set_env("OGLOGSTREAM_NATS__PASSWORD", "0123");
        let config = load(Cli::default()).unwrap();
        match &config.nats.credentials {
            NatsCredentials::UserPassword { user, password, .. } => {
                assert_eq!((user.as_str(), password.expose()), ("1234", "0123"));
            }
            other => panic!("{other:?}"),
        }
        let summary = config.summary();
        assert!(
            summary.contains("(nats.user and nats.password)"),
            "{summary}"
        );
        assert!(!summary.contains("0123"), "{summary}");

        // Two ways of signing in are refused, naming the second.
        jail.set_env("OGLOGSTREAM_NATS__TOKEN", "t0k3n");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("nats.token") && !error.contains("0123"),
            "{error}"
        );
        // A token that reads like a TOML list stays text.
        jail.set_env("OGLOGSTREAM_NATS__USER", "");
        jail.set_env("OGLOGSTREAM_NATS__PASSWORD", "");
        jail.set_env("OGLOGSTREAM_NATS__TOKEN", "[not, a, list]");
        match load(Cli::default()).unwrap().nats.credentials {
            NatsCredentials::Token { token, .. } => assert_eq!(token.expose(), "[not, a, list]"),
            other => panic!("{other:?}"),
        }

        jail.create_file("ch-password", "s3cret\n")?;
        jail.set_env("OGLOGSTREAM_CLICKHOUSE__PASSWORD_FILE", "ch-password");
        jail.set_env("OGLOGSTREAM_NATS__TOKEN", "");
        let config = load(Cli::default()).unwrap();
        assert_eq!(
            config.clickhouse.password.as_ref().map(|p| p.expose()),
            Some("s3cret")
        );
        jail.set_env("OGLOGSTREAM_CLICKHOUSE__PASSWORD_FILE", "absent");
        let error = load(Cli::default()).unwrap_err();
        assert!(error.contains("clickhouse.password_file"), "{error}");
        Ok(())
    });
}

/// Every TOML block of docs/security.md is made of keys the configuration
/// has, with values of the right type (its paths need not exist here).
#[test]
fn the_security_pages_toml_blocks_are_real_settings() {
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md"))
        .expect("docs/security.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    assert!(blocks.len() >= 5, "only {} TOML blocks found", blocks.len());
    for block in blocks {
        let raw: Result<super::super::RawConfig, _> =
            Figment::from(Serialized::defaults(super::super::RawConfig::default()))
                .merge(Toml::string(&block))
                .extract();
        assert!(raw.is_ok(), "{block}\n{:?}", raw.err());
    }
}
