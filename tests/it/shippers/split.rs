//! The shippers through the scaled-out deployment: `haproxy/haproxy.cfg` in
//! front of `--role ingest`, `--role process` and `--role query` on a private
//! NATS JetStream and ClickHouse. HTTP shippers go through HAProxy (their
//! paths reach the ingest instance, `GET /` the query instance, which
//! answers as Elasticsearch), OTLP/gRPC exporters through its HTTP/2
//! frontend to the ingest instance's gRPC listener, syslog to the ingest instance's listeners, and
//! every log is read back through HAProxy from ClickHouse.

use super::real_clients::{KEY, Target, every_shipper};
use super::{free_udp_port, with_otlp_grpc, with_syslog};
use crate::deployment::HaProxy;
use crate::split::deps::{ClickHouse, Nats};
use crate::support::{Launch, Server, free_port};
use std::time::Instant;

fn role(role: &str, nats: &Nats, clickhouse: Option<&ClickHouse>) -> Launch {
    let mut launch = Launch::default()
        .arg("--role")
        .arg(role)
        .env("NATS_URL", &nats.url())
        .env("FLUSH_TIMEOUT", "100ms")
        // HAProxy's X-Forwarded-For is believed, as in compose.yaml.
        .env("OGLOGSTREAM_SECURITY__TRUSTED_PROXIES", "[\"127.0.0.1\"]");
    if let Some(clickhouse) = clickhouse {
        launch = launch.env("CLICKHOUSE_DSN", &clickhouse.dsn("shippers"));
    }
    launch
}

#[actix_web::test]
async fn the_real_shippers_deliver_through_haproxy_to_split_roles() {
    let started = Instant::now();
    let nats = Nats::start().await;
    let clickhouse = ClickHouse::start().await;
    let (tcp, udp, grpc) = (free_port(), free_udp_port(), free_port());
    let ingest = Server::launch(with_otlp_grpc(
        with_syslog(
            role("ingest", &nats, None)
                .env("OGLOGSTREAM_SECURITY__INGEST_KEYS", &format!("[\"{KEY}\"]")),
            tcp,
            udp,
        ),
        grpc,
    ))
    .await;
    let process = Server::launch(role("process", &nats, Some(&clickhouse))).await;
    let query = Server::launch(role("query", &nats, Some(&clickhouse))).await;
    let haproxy = HaProxy::one_of_each_with_grpc(ingest.port, grpc, process.port, query.port).await;
    let ready = started.elapsed();

    let target = Target {
        url: haproxy.url(""),
        reader: &query.client,
        key: Some(KEY),
        // OTLP over gRPC through HAProxy's HTTP/2 frontend.
        otlp_grpc: haproxy.grpc_address(),
        syslog_tcp: tcp,
        syslog_udp: Some(udp),
    };
    every_shipper(&target).await;
    // The ingest instance took them all: the protocols' paths went there.
    let (_, metrics) = ingest.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    for line in [
        // OTLP/HTTP and OTLP/gRPC (HAProxy's HTTP/2 frontend), each SDK.
        "oglogstream_logs_accepted_total{protocol=\"otlp\"} 20",
        "oglogstream_logs_accepted_total{protocol=\"loki\"} 10",
        "oglogstream_logs_accepted_total{protocol=\"elasticsearch\"} 10",
        "oglogstream_logs_accepted_total{protocol=\"syslog\"} 15",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    eprintln!(
        "ten real shippers through HAProxy into split roles: {:.1} s ({:.1} s to start NATS, ClickHouse, 3 roles and HAProxy)",
        started.elapsed().as_secs_f64(),
        ready.as_secs_f64()
    );
}
