//! The configuration through its layers (defaults, file, environment,
//! flags): what each section resolves to and how a mistake is named.

mod alerts;
mod auth;
mod nats;
mod otlp;
mod security;
mod storage;
mod syslog;
mod tls;

use super::*;
use crate::cli::Cli;
use figment::Jail;

pub(super) fn load(cli: Cli) -> Result<Config, String> {
    Config::load(&cli).map_err(|e| e.to_string())
}

#[test]
fn defaults_are_valid() {
    Jail::expect_with(|_| {
        let config = load(Cli::default()).unwrap();
        assert!(config.roles.is_all());
        assert_eq!(config.server.listen, "0.0.0.0:8080");
        assert_eq!(config.process.max_retries, 3);
        Ok(())
    });
}

#[test]
fn layers_override_in_order() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "custom.toml",
            "[process]\nbatch_size = 10\nmax_retries = 7\n[server]\nport = 9000\n",
        )?;
        jail.set_env("BATCH_SIZE", "20");
        jail.set_env("OGLOGSTREAM_PROCESS__BATCH_SIZE", "30");
        jail.set_env("HTTP_PORT", "9100");
        jail.set_env("OGLOGSTREAM_BIN", "/ignored/because/not/a/section");
        let cli = Cli {
            config: Some("custom.toml".into()),
            listen: Some("127.0.0.1:9200".into()),
            ..Cli::default()
        };
        let config = load(cli).unwrap();
        assert_eq!(config.process.batch_size, 30);
        assert_eq!(config.process.max_retries, 7);
        assert_eq!(config.server.listen, "127.0.0.1:9200");
        Ok(())
    });
}

#[test]
fn bad_values_name_their_key() {
    Jail::expect_with(|jail| {
        jail.set_env("FLUSH_TIMEOUT", "abc");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("process.flush_timeout") && error.contains("FLUSH_TIMEOUT"),
            "{error}"
        );
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("HTTP_PORT", "99999");
        let error = load(Cli::default()).unwrap_err();
        assert!(error.contains("server.port"), "{error}");
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("LOG_LEVEL", "loud");
        assert!(load(Cli::default()).unwrap_err().contains("log.level"));
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("HTTP_PORT", "eighty");
        assert!(load(Cli::default()).unwrap_err().contains("server.port"));
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.create_file("typo.toml", "[process]\nbatch_sise = 10\n")?;
        let cli = Cli {
            config: Some("typo.toml".into()),
            ..Cli::default()
        };
        assert!(load(cli).unwrap_err().contains("batch_sise"));
        Ok(())
    });
}

#[test]
fn split_roles_need_nats() {
    Jail::expect_with(|_| {
        let cli = Cli {
            role: Some("ingest".into()),
            ..Cli::default()
        };
        assert!(load(cli).unwrap_err().contains("NATS_URL"));
        let cli = Cli {
            role: Some("ingest,process,query".into()),
            ..Cli::default()
        };
        assert!(load(cli).is_ok());
        let cli = Cli {
            role: Some("ingest,nope".into()),
            ..Cli::default()
        };
        assert!(load(cli).unwrap_err().contains("unknown role"));
        Ok(())
    });
}

#[test]
fn a_component_refusal_names_the_key_and_its_variables() {
    let plain: ConfigError =
        InvalidSetting::new("process.flush_timeout", "must be more than 0").into();
    assert_eq!(
        plain.to_string(),
        "invalid configuration: process.flush_timeout \
         (OGLOGSTREAM_PROCESS__FLUSH_TIMEOUT or FLUSH_TIMEOUT): must be more than 0"
    );
    // No variable sets one item of a list: the key is named alone.
    let item: ConfigError =
        InvalidSetting::new("alerts.rules[0].window (\"slow\")", "too short").into();
    assert_eq!(
        item.to_string(),
        "invalid configuration: alerts.rules[0].window (\"slow\"): too short"
    );
}

#[test]
fn the_trace_url_comes_from_the_file_or_the_environment_as_written() {
    Jail::expect_with(|jail| {
        assert_eq!(load(Cli::default()).unwrap().ui.trace_url, None);
        jail.create_file(
            "ui.toml",
            "[ui]\ntrace_url = \"http://jaeger:16686/trace/{trace_id}\"\n",
        )?;
        let from_file = || Cli {
            config: Some("ui.toml".into()),
            ..Cli::default()
        };
        assert_eq!(
            load(from_file()).unwrap().ui.trace_url.as_deref(),
            Some("http://jaeger:16686/trace/{trace_id}")
        );
        // Grafana's Explore links hold braces, quotes and commas.
        let grafana = r#"https://grafana.example/explore?left={"datasource":"tempo","queries":[{"query":"{trace_id}"}]}"#;
        jail.set_env("OGLOGSTREAM_UI__TRACE_URL", grafana);
        assert_eq!(
            load(from_file()).unwrap().ui.trace_url.as_deref(),
            Some(grafana)
        );
        jail.set_env("OGLOGSTREAM_UI__TRACE_URL", "https://tempo.example/explore");
        let error = load(Cli::default()).unwrap_err();
        assert!(
            error.contains("ui.trace_url") && error.contains("OGLOGSTREAM_UI__TRACE_URL"),
            "{error}"
        );
        Ok(())
    });
}
