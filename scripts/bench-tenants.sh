#!/usr/bin/env bash
# `make bench-tenants`: what tenancy costs, on the embedded store (or on a
# private clickhouse-server with --clickhouse, one database per server).
#
# 1. Ingest with tenants off and on: the `bulk` phase against a fresh server
#    with tenancy off, then against a fresh one with it on (every log in the
#    default tenant, as a deployment turning tenancy on sees it).
# 2. A small tenant's reads among 100: the `tenants` phase fills a server
#    (tenancy on) with the largest of --sizes logs (default 10M) from 100
#    tenants, one holding half, and a second server with exactly the logs
#    of one small tenant, then times its newest page, level filter, stats
#    and histogram on both, interleaved.
#
# Extra arguments go to the load generator (e.g. --sizes 1000000).
# BENCH_PROFILE=debug uses the debug build (see scripts/bench.sh).
profile=${BENCH_PROFILE:-release}
set -euo pipefail
cd "$(dirname "$0")/.."
store=sqlite
if [ "${1:-}" = "--clickhouse" ]; then
    store=clickhouse
    shift
fi
if [ "$profile" = release ]; then
    cargo build --release --locked --bins --example floor_server
else
    cargo build --locked --bins --example floor_server
fi
workdir=$(mktemp -d "${TMPDIR:-/tmp}/oglogstream-bench-tenants.XXXXXX")
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
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
if [ "$store" = clickhouse ]; then
    start_clickhouse
    dsn_base=${CLICKHOUSE_DSN%/*}
fi

# start NAME [ENV=VALUE...]: a --role all server on a fresh data directory
# (and its own ClickHouse database); sets $url and $pid.
start() {
    local name=$1 port
    shift
    port=$(free_port)
    if [ "$store" = clickhouse ]; then
        set -- "$@" "CLICKHOUSE_DSN=$dsn_base/bench_${name//-/_}"
    fi
    env "$@" target/$profile/oglogstream --role all --config config/oglogstream.toml \
        --listen "127.0.0.1:$port" --data-dir "$workdir/$name" 2>"$workdir/$name.log" &
    pid=$!
    pids+=("$pid")
    url="http://127.0.0.1:$port"
    wait_for "$url/health" "$workdir/$name.log"
}
stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

echo "## bulk ingest, tenants off"
start off
target/$profile/oglogstream-bench --url "$url" --pid "$pid" --phases bulk "$@"
stop "$pid"
echo "## bulk ingest, tenants on (every log in the default tenant)"
start on OGLOGSTREAM_TENANTS__ENABLED=true OGLOGSTREAM_TENANTS__DEFAULT_TENANT=default
target/$profile/oglogstream-bench --url "$url" --pid "$pid" --phases bulk "$@"
stop "$pid"

echo "## a small tenant among 100"
start solo OGLOGSTREAM_TENANTS__ENABLED=true
solo_url=$url
start shared OGLOGSTREAM_TENANTS__ENABLED=true
target/$profile/oglogstream-bench --url "$url" --pid "$pid" --phases tenants \
    --solo-url "$solo_url" "$@"
