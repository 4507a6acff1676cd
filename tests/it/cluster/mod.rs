//! Issue 14, NATS half: the bus on a three-node JetStream cluster and the
//! guarantees that rest on it — a killed stream leader loses nothing and
//! stores nothing twice, a processor killed between insert and ack stores
//! nothing twice, stream setup never lowers what an operator set, stale
//! acknowledged messages are purged, and leases for the alert evaluator.

mod coordination;
mod exactly_once;
mod failover;
mod stream_setup;

use crate::split::deps::ClickHouse;
use crate::support::Launch;
use oglogstream::bus::nats::{NatsBus, NatsSettings};
use oglogstream::config::NatsConfig;
use oglogstream::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// A role of the real binary on `nats_url` (one server or a comma list),
/// with short timings so redelivery shows within seconds.
pub fn role(role: &str, nats_url: &str, clickhouse: Option<(&ClickHouse, &str)>) -> Launch {
    let mut launch = Launch::default()
        .arg("--role")
        .arg(role)
        .env("NATS_URL", nats_url)
        .env("OGLOGSTREAM_NATS__ACK_WAIT", "3s")
        .env("FLUSH_TIMEOUT", "100ms")
        .env("BATCH_SIZE", "1000");
    if let Some((clickhouse, database)) = clickhouse {
        launch = launch.env("CLICKHOUSE_DSN", &clickhouse.dsn(database));
    }
    launch
}

/// The bus as a library, for what no role of the binary does yet (leases).
pub async fn bus(servers: &str, replicas: usize, lease_ttl: Duration) -> NatsBus {
    let bus = NatsBus::connect(NatsSettings {
        config: NatsConfig {
            servers: servers.split(',').map(str::to_string).collect(),
            stream: "OGLOGSTREAM".into(),
            subject_prefix: "oglogstream".into(),
            consumer: "oglogstream-process".into(),
            stream_max_bytes: 1 << 30,
            stream_max_age: Duration::from_secs(3600),
            ack_wait: Duration::from_secs(30),
            replicas,
            publish_timeout: Duration::from_secs(10),
            lease_ttl,
            tls: Default::default(),
            credentials: Default::default(),
        },
        live: false,
        client_name: "oglogstream test".into(),
        metrics: Arc::new(Metrics::default()),
    })
    .await
    .expect("bus");
    // Creating R3 streams waits for the cluster's leaders: 30 s was once too
    // short while the rest of the suite loaded both cores.
    crate::support::eventually("the bus to be ready", Duration::from_secs(90), || async {
        use oglogstream::bus::Bus;
        bus.check().await.ok()
    })
    .await;
    bus
}

/// A counter's value in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A server's `/metrics` text (empty when it does not answer).
pub async fn metrics_text(server: &crate::support::Server) -> String {
    let Ok(mut response) = server.client.get(server.url("/metrics")).send().await else {
        return String::new();
    };
    let body = response.body().await.unwrap_or_default();
    String::from_utf8_lossy(&body).into_owned()
}
