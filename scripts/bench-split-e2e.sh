#!/usr/bin/env bash
# The end-to-end half of `make bench-split` (run by `scripts/bench.sh
# --split` after the ingest-only phases; runnable alone once the release
# binaries are built): 1000-log bulk requests through `--role ingest` →
# JetStream → `--role process` → a private ClickHouse 18.16 server, measured
# as the rate at which logs are *stored* (the load generator waits until the
# `--role query` instance counts every accepted log). It runs twice: on one
# nats-server, then on a three-node JetStream cluster with an R3 stream (and
# R3 consumer), each with a fresh ClickHouse server, and prints the ratio.
#
# Everything listens on 127.0.0.1 on free ports, keeps its data in a
# temporary directory, and is stopped at the end. Extra arguments go to the
# load generator (e.g. `--seconds 5`).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in nats-server clickhouse-server curl python3; do
    command -v "$tool" >/dev/null || {
        echo "bench: the end-to-end split bench needs $tool (make test installs the packages)" >&2
        exit 1
    }
done
[ -x target/release/oglogstream ] && [ -x target/release/oglogstream-bench ] ||
    cargo build --release --locked --bins

workdir=$(mktemp -d "${TMPDIR:-/tmp}/oglogstream-bench-e2e.XXXXXX")
pids=()
stop_all() {
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    pids=()
}
cleanup() {
    stop_all
    rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

# free_port, wait_for, start_clickhouse (shared with bench.sh).
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

# Starts `nodes` nats-servers (1: standalone; 3: one JetStream cluster) and
# sets nats_url to the comma-separated list.
start_nats() { # NODES NAME
    local nodes=$1 name=$2 dir="$workdir/$2" routes="" urls="" i
    mkdir -p "$dir"
    local ports=() cluster_ports=() monitor_ports=()
    for i in $(seq 1 "$nodes"); do
        ports+=("$(free_port)")
        cluster_ports+=("$(free_port)")
        monitor_ports+=("$(free_port)")
    done
    for i in $(seq 0 $((nodes - 1))); do
        routes+="${routes:+, }nats-route://127.0.0.1:${cluster_ports[$i]}"
        urls+="${urls:+,}nats://127.0.0.1:${ports[$i]}"
    done
    for i in $(seq 0 $((nodes - 1))); do
        {
            echo "server_name: n$((i + 1))"
            echo "listen: 127.0.0.1:${ports[$i]}"
            echo "http: 127.0.0.1:${monitor_ports[$i]}"
            echo "jetstream { store_dir: \"$dir/n$((i + 1))\" }"
            if [ "$nodes" -gt 1 ]; then
                echo "cluster { name: bench, listen: 127.0.0.1:${cluster_ports[$i]}, routes: [$routes] }"
            fi
        } >"$dir/n$((i + 1)).conf"
        nats-server -c "$dir/n$((i + 1)).conf" 2>"$dir/n$((i + 1)).log" &
        pids+=($!)
    done
    for i in $(seq 0 $((nodes - 1))); do
        wait_for "http://127.0.0.1:${monitor_ports[$i]}/healthz" "$dir/n$((i + 1)).log"
    done
    nats_url=$urls
}

start_role() { # ROLE NAME [extra env assignments...]
    local role=$1 name=$2 port
    shift 2
    port=$(free_port)
    env "$@" target/release/oglogstream --role "$role" --config config/oglogstream.toml \
        --listen "127.0.0.1:$port" --data-dir "$workdir/$name-data" 2>"$workdir/$name.log" &
    local pid=$!
    pids+=("$pid")
    wait_for "http://127.0.0.1:$port/health" "$workdir/$name.log"
    role_port=$port
    role_pid=$pid
}

run() { # NODES LABEL DATABASE [loadgen args...]
    local nodes=$1 label=$2 database=$3
    shift 3
    start_clickhouse
    start_nats "$nodes" "nats-$database"
    # ClickHouse prefers few large inserts: batches of up to 50,000 logs
    # (the shipped 5,000 suits SQLite) measured 75k against 50k logs/s.
    local common=(NATS_URL="$nats_url" OGLOGSTREAM_NATS__REPLICAS="$nodes"
        OGLOGSTREAM_NATS__STREAM_MAX_BYTES=$((8 << 30)) BATCH_SIZE=50000
        CLICKHOUSE_DSN="${CLICKHOUSE_DSN%/*}/$database")
    start_role process "process-$database" "${common[@]}"
    local process_port=$role_port
    start_role query "query-$database" "${common[@]}"
    local query_port=$role_port
    start_role ingest "ingest-$database" "${common[@]}"
    echo "bench: $label: ingest on :$role_port, process on :$process_port, query on :$query_port"
    target/release/oglogstream-bench --url "http://127.0.0.1:$role_port" --pid "$role_pid" \
        --topology split --phases bulk --stored-url "http://127.0.0.1:$query_port" \
        --label "$label" --result-file "$workdir/results" "$@"
    # Where the CPU went (the load generator aside): seconds per process.
    echo "bench: $label: CPU seconds used: $(ps -o comm=,times= -p "$(IFS=,; echo "${pids[*]}")" |
        awk '{ cpu[$1] += $2 } END { for (c in cpu) printf "%s %d  ", c, cpu[c] }')"
    stop_all
}

run 1 "one nats-server" bench_single "$@"
run 3 "3-node JetStream cluster, R3 stream" bench_r3 "$@"

awk -F'\t' '
    NR == 1 { single = $2 }
    NR == 2 { cluster = $2 }
    END {
        if (single > 0) {
            printf "end to end, stored: one nats-server %d logs/s, 3-node R3 cluster %d logs/s: ratio %.2f (expected >= 0.6)\n",
                single, cluster, cluster / single
        }
    }' "$workdir/results"
