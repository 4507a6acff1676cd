//! `[nats]`: the JetStream bus's settings (used by split roles, selected by
//! `nats.url`), as written in the file and as validated for [`NatsBus`](super::NatsBus).

use super::credentials::{CredentialSettings, NatsCredentials, take_from_urls};
use crate::domain::settings::{InvalidSetting, Secret, duration, in_range, redact_url};
use crate::tls::client::ClientTls;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNats {
    pub url: String,
    pub stream: String,
    pub subject_prefix: String,
    pub consumer: String,
    pub stream_max_bytes: i64,
    pub stream_max_age: String,
    pub ack_wait: String,
    pub replicas: i64,
    pub publish_timeout: String,
    pub lease_ttl: String,
    /// PEM files: the CA that signed the servers' certificates, and this
    /// client's certificate and key for servers that verify clients.
    pub tls_ca: String,
    pub tls_cert: String,
    pub tls_key: String,
    /// One way of signing in, at most (see `credentials.rs`).
    pub user: String,
    pub password: Secret,
    pub password_file: String,
    pub token: Secret,
    pub token_file: String,
    pub nkey_seed_file: String,
    pub creds_file: String,
}

impl Default for RawNats {
    fn default() -> Self {
        RawNats {
            url: String::new(),
            stream: "OGLOGSTREAM".into(),
            subject_prefix: "oglogstream".into(),
            consumer: "oglogstream-process".into(),
            stream_max_bytes: 1 << 30,
            stream_max_age: "168h".into(),
            ack_wait: "30s".into(),
            replicas: 1,
            publish_timeout: "10s".into(),
            // A takeover needs up to the TTL plus a third of it (the
            // survivor's next attempt): 12 s, within alerting's 15 s.
            lease_ttl: "9s".into(),
            tls_ca: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            user: String::new(),
            password: Secret::default(),
            password_file: String::new(),
            token: Secret::default(),
            token_file: String::new(),
            nkey_seed_file: String::new(),
            creds_file: String::new(),
        }
    }
}

/// JetStream names and limits; used only when `nats_url` is set.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// The servers from `nats.url` (a comma-separated list): the client
    /// connects to one and reconnects to any other, including the cluster's
    /// members it learns from the server.
    pub servers: Vec<String>,
    /// The JetStream stream holding batches until a process instance stores them.
    pub stream: String,
    /// Subjects are `<prefix>.logs` (work queue) and `<prefix>.live` (live tail).
    pub subject_prefix: String,
    /// The durable pull consumer shared by every process instance.
    pub consumer: String,
    /// When the stream holds this many bytes, publishes fail (ingest answers 503).
    pub stream_max_bytes: i64,
    /// Batches still unprocessed after this long are dropped by the broker.
    pub stream_max_age: Duration,
    /// How long a delivery may stay unacknowledged before it is redelivered.
    pub ack_wait: Duration,
    /// Copies JetStream keeps of the stream and the coordination buckets
    /// (1, or 3 on a three-node cluster). Never lowers an existing stream's.
    pub replicas: usize,
    /// How long ingest keeps retrying a publish the broker cannot take yet
    /// (no stream leader during an election, a lost ack) before answering 503.
    pub publish_timeout: Duration,
    /// How long a coordination lease outlives its holder's last renewal.
    pub lease_ttl: Duration,
    /// TLS to the servers: required when anything here is set (and used
    /// whenever a server asks for it).
    pub tls: ClientTls,
    pub credentials: NatsCredentials,
}

impl RawNats {
    /// NATS names end up in subjects and API subjects, where `.`, `*`, `>` and
    /// whitespace have meaning; the prefix may hold dots (it is a subject prefix).
    pub fn validate(&self) -> Result<NatsConfig, InvalidSetting> {
        let name_ok = |name: &str, dots: bool| {
            !name.is_empty()
                && name.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                })
                && (dots || !name.contains('.'))
        };
        for (key, value, dots) in [
            ("nats.stream", &self.stream, false),
            ("nats.consumer", &self.consumer, false),
            ("nats.subject_prefix", &self.subject_prefix, true),
        ] {
            if !name_ok(value, dots) {
                return Err(InvalidSetting::new(
                    key,
                    format!(
                        "{value:?}: use letters, digits, '-' and '_'{}",
                        if dots { " (and '.' between parts)" } else { "" }
                    ),
                ));
            }
        }
        let ack_wait = duration("nats.ack_wait", &self.ack_wait)?;
        if ack_wait < Duration::from_secs(1) {
            return Err(InvalidSetting::new("nats.ack_wait", "must be at least 1s"));
        }
        let stream_max_age = duration("nats.stream_max_age", &self.stream_max_age)?;
        if stream_max_age < Duration::from_secs(60) {
            return Err(InvalidSetting::new(
                "nats.stream_max_age",
                "must be at least 1m",
            ));
        }
        let publish_timeout = duration("nats.publish_timeout", &self.publish_timeout)?;
        if publish_timeout < Duration::from_secs(1) {
            return Err(InvalidSetting::new(
                "nats.publish_timeout",
                "must be at least 1s",
            ));
        }
        let lease_ttl = duration("nats.lease_ttl", &self.lease_ttl)?;
        if lease_ttl < Duration::from_secs(1) {
            return Err(InvalidSetting::new("nats.lease_ttl", "must be at least 1s"));
        }
        let mut servers = server_list(&self.url)?;
        let in_urls = take_from_urls(&mut servers)?;
        let credentials = match (
            in_urls,
            NatsCredentials::from_settings(&CredentialSettings {
                user: &self.user,
                password: &self.password,
                password_file: &self.password_file,
                token: &self.token,
                token_file: &self.token_file,
                nkey_seed_file: &self.nkey_seed_file,
                creds_file: &self.creds_file,
            })?,
        ) {
            (NatsCredentials::None, credentials) | (credentials, NatsCredentials::None) => {
                credentials
            }
            (_, settings) => {
                return Err(InvalidSetting::new(
                    "nats.url",
                    format!(
                        "carries credentials, and {} gives some too: give them one way",
                        settings.settings()
                    ),
                ));
            }
        };
        Ok(NatsConfig {
            servers,
            stream: self.stream.clone(),
            subject_prefix: self.subject_prefix.clone(),
            consumer: self.consumer.clone(),
            stream_max_bytes: in_range(
                "nats.stream_max_bytes",
                self.stream_max_bytes,
                1 << 16,
                i64::MAX,
            )? as i64,
            stream_max_age,
            ack_wait,
            // JetStream allows at most 5 replicas.
            replicas: in_range("nats.replicas", self.replicas, 1, 5)?,
            publish_timeout,
            lease_ttl,
            tls: ClientTls::from_settings("nats", &self.tls_ca, &self.tls_cert, &self.tls_key)?,
            credentials,
        })
    }
}

/// `nats://a:4222, nats://b:4222` -> one entry per server. Each must name a
/// host; the client checks the rest when it connects.
fn server_list(url: &str) -> Result<Vec<String>, InvalidSetting> {
    if url.trim().is_empty() {
        return Ok(Vec::new());
    }
    url.split(',')
        .map(str::trim)
        .map(|server| {
            let host = server.split_once("://").map_or(server, |(_, rest)| rest);
            let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
            if host.is_empty() || server.contains(char::is_whitespace) {
                Err(InvalidSetting::new(
                    "nats.url",
                    format!(
                        "{:?}: expected a comma-separated list of servers such as nats://10.0.0.1:4222,nats://10.0.0.2:4222",
                        redact_url(server)
                    ),
                ))
            } else {
                Ok(server.to_string())
            }
        })
        .collect()
}
