#!/usr/bin/env bash
# `make bench`: builds the release binaries, starts a server with --role all
# on the embedded store in a temporary data directory on a free loopback
# port, runs the load generator against it (every phase, bounded in time and
# count), prints the table and stops everything it started. The single-log
# load also runs against a bare actix-web server (benches/floor_server.rs), so
# the table shows this machine's ceiling beside our figure.
#
# `make bench-split` (`scripts/bench.sh --split`): a private JetStream
# nats-server and one `--role ingest` instance instead; the ingest and bulk
# phases then measure 202s that wait for the broker's ack. Then
# scripts/bench-split-e2e.sh measures the stored rate end to end (ingest →
# JetStream → process → ClickHouse), on one nats-server and on a three-node
# R3 cluster.
#
# `make bench-clickhouse` (`scripts/bench.sh --clickhouse`): the same table
# as `make bench`, with the server storing into a private clickhouse-server
# (a config of our own, loopback ports, data in the temporary directory; it
# logs every query to system.query_log, so read_rows can be looked at).
#
# `make bench-soak` (`scripts/bench.sh --soak`): instead of the phases, a
# soak run of SOAK_MINUTES (30) minutes of mixed load on the embedded store,
# sampling the server every 10 s; the samples go to docs/soak.csv and a plot
# to docs/soak.svg.
#
# Extra arguments go to the load generator, e.g.
# `scripts/bench.sh --sizes 1000000 --seconds 5`.
#
# BENCH_PROFILE=debug uses the debug build instead of building release
# binaries (on a shared machine where a release build is not wanted; the
# store's own work, SQLite and ClickHouse, is optimised either way, the
# server's Rust is not: figures are upper bounds).
profile=${BENCH_PROFILE:-release}
set -euo pipefail
cd "$(dirname "$0")/.."

topology=all
store=sqlite
soak=()
if [ "${1:-}" = "--soak" ]; then
    soak=(--soak-minutes "${SOAK_MINUTES:-30}" --soak-csv docs/soak.csv --soak-plot docs/soak.svg)
    shift
elif [ "${1:-}" = "--split" ]; then
    topology=split
    shift
elif [ "${1:-}" = "--clickhouse" ]; then
    store=clickhouse
    shift
fi
command -v curl >/dev/null || { echo "bench: curl is needed (apt-get install -y curl)" >&2; exit 1; }
if [ "$topology" = split ] && ! command -v nats-server >/dev/null; then
    echo "bench: --split needs nats-server (apt-get install -y nats-server)" >&2
    exit 1
fi

if [ "$store" = clickhouse ] && ! command -v clickhouse-server >/dev/null; then
    echo "bench: --clickhouse needs clickhouse-server (apt-get install -y clickhouse-server)" >&2
    exit 1
fi

if [ "$profile" = release ]; then
    cargo build --release --locked --bins --example floor_server
else
    cargo build --locked --bins --example floor_server
fi
workdir=$(mktemp -d "${TMPDIR:-/tmp}/oglogstream-bench.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

# free_port, wait_for, start_clickhouse (shared with bench-split-e2e.sh).
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

port=$(free_port)
# The shippers phase sends syslog over TCP to the server's listener.
syslog_port=$(free_port)
export OGLOGSTREAM_SYSLOG__TCP_LISTEN="127.0.0.1:$syslog_port"
# ... and OTLP over gRPC to its gRPC listener.
grpc_port=$(free_port)
export OGLOGSTREAM_OTLP__GRPC_LISTEN="127.0.0.1:$grpc_port"
if [ "$store" = clickhouse ]; then
    start_clickhouse
fi
if [ "$topology" = split ]; then
    nats_port=$(free_port)
    nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$workdir/nats" 2>"$workdir/nats.log" &
    pids+=($!)
    export NATS_URL="nats://127.0.0.1:$nats_port"
    # No process instance drains the stream here: room for every phase, so
    # the figures are JetStream's, not its full-stream 503s.
    export OGLOGSTREAM_NATS__STREAM_MAX_BYTES=$((16 << 30))
    role=ingest
    phases=(--topology split --phases ingest,bulk)
else
    role=all
    phases=()
fi

# The alerts phase measures 100 rules evaluated every 10 s.
export OGLOGSTREAM_ALERTS__EVALUATION_INTERVAL=10s

# The shipped configuration (what `make run` uses), with a fresh data
# directory and a loopback port. The server's own log goes next to the data.
target/$profile/oglogstream --role "$role" --config config/oglogstream.toml \
    --listen "127.0.0.1:$port" --data-dir "$workdir/data" 2>"$workdir/server.log" &
server_pid=$!
pids+=("$server_pid")
wait_for "http://127.0.0.1:$port/health" "$workdir/server.log"

floor=()
if [ "$topology" = all ]; then
    floor_port=$(free_port)
    target/$profile/examples/floor_server "$floor_port" 2>"$workdir/floor.log" &
    floor_pid=$!
    pids+=("$floor_pid")
    wait_for "http://127.0.0.1:$floor_port/health" "$workdir/floor.log"
    floor=(--floor-url "http://127.0.0.1:$floor_port" --floor-pid "$floor_pid")
fi

target/$profile/oglogstream-bench --url "http://127.0.0.1:$port" --pid "$server_pid" \
    --syslog-tcp "127.0.0.1:$syslog_port" --otlp-grpc "127.0.0.1:$grpc_port" "${phases[@]}" "${floor[@]}" "${soak[@]}" "$@"
echo "database size: $(du -sh "$workdir" | cut -f1)"
if [ "$store" = clickhouse ]; then
    echo "clickhouse data: $(du -sh "$workdir/clickhouse/data" | cut -f1)"
fi
if [ "$topology" = split ]; then
    cleanup
    scripts/bench-split-e2e.sh "$@"
fi
