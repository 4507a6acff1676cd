#!/usr/bin/env bash
# Instructions per log, per ingest protocol, counted by valgrind's callgrind
# in the release server (`--role all`, embedded store): a figure that does
# not move with the machine's load, unlike CPU time on a shared machine.
#
# Starts target/release/oglogstream under callgrind on loopback ports, then
# for each protocol: zeroes the counters, sends ROUNDS requests of the same
# 1000 corpus logs (`oglogstream-bench --write-bodies`; the shippers phase's
# logs) on one keep-alive connection, waits until the store holds them all,
# and dumps the counters. Prints instructions per log and the ratio to
# `/log/bulk` NDJSON; with FLOOR=1 it also counts `POST /log` (one log per
# request) against the bare actix-web floor (benches/floor_server.rs) under
# the same tool. The dumps stay in OUT (callgrind.out.<pid>.<n>; read them
# with callgrind_annotate) for the stacks behind each figure.
#
#   cargo build --release --bins --example floor_server
#   scripts/profile-ingest.sh                 # ROUNDS=20 OUT=target/profile
#   FLOOR=1 SINGLE=2000 scripts/profile-ingest.sh
#
# Needs valgrind and curl; the gRPC and syslog senders use the tests'
# Python (target/test-venv, with grpcio: scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-20}
single=${SINGLE:-2000}
out=${OUT:-target/profile}
python=target/test-venv/bin/python
command -v valgrind >/dev/null || { echo "profile: valgrind is needed (apt-get install -y valgrind)" >&2; exit 1; }
[ -x target/release/oglogstream ] || { echo "profile: build first: cargo build --release --bins --example floor_server" >&2; exit 1; }

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
rm -rf "$out"
mkdir -p "$out/bodies"
target/release/oglogstream-bench --write-bodies "$out/bodies" --bulk-size 1000
port=$(free_port)
syslog_port=$(free_port)
grpc_port=$(free_port)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

OGLOGSTREAM_SYSLOG__TCP_LISTEN="127.0.0.1:$syslog_port" \
OGLOGSTREAM_OTLP__GRPC_LISTEN="127.0.0.1:$grpc_port" \
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
    target/release/oglogstream --role all --config config/oglogstream.toml \
    --listen "127.0.0.1:$port" --data-dir "$out/data" 2>"$out/server.log" &
server=$!
pids+=("$server")
url="http://127.0.0.1:$port"
for _ in $(seq 600); do
    curl -sf "$url/health" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -sf "$url/health" >/dev/null || { echo "profile: the server did not start: $out/server.log" >&2; exit 1; }

stored() { curl -sf "$url/api/stats" | sed -n 's/.*"total_logs":\([0-9]*\).*/\1/p'; }
expected=0
wait_stored() {
    for _ in $(seq 1200); do
        [ "$(stored)" -ge "$expected" ] && return 0
        sleep 0.5
    done
    echo "profile: the store did not reach $expected logs" >&2
    exit 1
}

# One keep-alive connection: curl reuses it for every URL it is given.
post() { # path content-type body count
    local urls=()
    for _ in $(seq "$4"); do urls+=("$url$1"); done
    curl -sf -X POST -H "Content-Type: $2" --data-binary "@$3" "${urls[@]}" >/dev/null
}

# `callgrind_control -d` returns before the dump is written: wait for it.
dump_counters() { # pid trigger file-prefix
    local before
    before=$(ls "$3".* 2>/dev/null | wc -l)
    callgrind_control -d "$2" "$1" >/dev/null
    for _ in $(seq 600); do
        [ "$(ls "$3".* 2>/dev/null | wc -l)" -gt "$before" ] && break
        sleep 0.2
    done
    sleep 0.5
    ls -t "$3".* | head -1
}

# Instructions under actix's HTTP/1 dispatcher: a request's whole handling
# on the HTTP worker (parsing, middleware, the handler, publishing to the
# queue), without what the batcher and the store do later on their threads.
dispatcher() { # dump
    inclusive "$1" 'actix_http::h1::dispatcher::Dispatcher<.*as core::future::future::Future>::poll'
}

inclusive() { # dump function-pattern: its inclusive instructions, 0 if absent
    local count
    count=$(callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null \
        | grep -m1 "$2" | awk '{gsub(",", "", $1); print $1}')
    echo "${count:-0}"
}

# The facet-block builder runs in the background once every few thousand
# stored logs, whatever their protocol: its work lands in whichever
# protocol's stretch crosses a block boundary (29% of one stretch, none of
# the next), so it is counted apart, not charged to that protocol.
facet_blocks() { # dump
    inclusive "$1" 'facet_blocks::builder::build_forever'
}

baseline=""
measure() { # name logs-per-round sender...
    local name=$1 logs=$2
    shift 2
    callgrind_control -z "$server" >/dev/null
    "$@"
    expected=$((expected + logs))
    wait_stored
    local dump
    # callgrind_control hands the trigger to sh: letters, digits and _ only.
    dump=$(dump_counters "$server" "${name//[^a-zA-Z0-9]/_}" "$out/callgrind.out.$server")
    local instructions blocks
    instructions=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$dump")
    blocks=$(facet_blocks "$dump")
    local per_log=$(((instructions - blocks) / logs))
    if [ -z "$baseline" ]; then
        baseline=$per_log
        printf '%-34s %12d instructions/log          (+%d facet blocks; %s)\n' "$name" "$per_log" \
            $((blocks / logs)) "$dump"
    else
        printf '%-34s %12d instructions/log %+6.1f%% vs NDJSON   (+%d facet blocks; %s)\n' "$name" "$per_log" \
            "$(echo "($per_log - $baseline) * 100 / $baseline" | bc -l)" $((blocks / logs)) "$dump"
    fi
}

b="$out/bodies"
measure "ndjson /log/bulk" $((rounds * 1000)) post /log/bulk application/x-ndjson "$b/ndjson" "$rounds"
measure "otlp protobuf /v1/logs" $((rounds * 1000)) post /v1/logs application/x-protobuf "$b/otlp.pb" "$rounds"
measure "loki snappy protobuf" $((rounds * 1000)) post /loki/api/v1/push application/x-protobuf "$b/loki.pb.sz" "$rounds"
measure "elasticsearch /_bulk" $((rounds * 1000)) post /_bulk application/x-ndjson "$b/elasticsearch.ndjson" "$rounds"
measure "otlp/grpc Export" $((rounds * 1000)) "$python" - "127.0.0.1:$grpc_port" "$b/otlp.pb" "$rounds" <<'PY'
import sys, grpc
address, path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = open(path, "rb").read()
export = grpc.insecure_channel(address).unary_unary(
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export")
for _ in range(rounds):
    export(body, timeout=600)
PY
measure "syslog tcp octet-counted" $((rounds * 1000)) "$python" - "$syslog_port" "$b/syslog.frames" "$rounds" <<'PY'
import socket, sys
port, path, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
frames = open(path, "rb").read()
with socket.create_connection(("127.0.0.1", port)) as connection:
    for _ in range(rounds):
        connection.sendall(frames)
PY
one_log='{"level":"info","message":"user 42 signed in from 10.0.0.7","service":"auth","attributes":{"region":"eu-west-1","request_id":"r-42"}}'
printf '%s' "$one_log" > "$out/bodies/one.json"
measure "POST /log (one log a request)" "$single" post /log application/json "$out/bodies/one.json" "$single"
# Stored one by one under valgrind's slowness, the logs' store cost is not
# the loaded server's: the HTTP worker's share is the comparable figure.
single_dump=$(ls -t "$out"/callgrind.out."$server".* | head -1)
printf '%-34s %12d instructions/request on the HTTP worker\n' "POST /log" $(($(dispatcher "$single_dump") / single))

if [ "${FLOOR:-0}" = 1 ]; then
    floor_port=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.floor.%p" \
        target/release/examples/floor_server "$floor_port" 2>"$out/floor.log" &
    floor=$!
    pids+=("$floor")
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$floor_port/health" >/dev/null 2>&1 && break
        sleep 0.5
    done
    callgrind_control -z "$floor" >/dev/null
    urls=()
    for _ in $(seq "$single"); do urls+=("http://127.0.0.1:$floor_port/log"); done
    curl -sf -X POST -H "Content-Type: application/json" --data-binary "@$out/bodies/one.json" "${urls[@]}" >/dev/null
    dump=$(dump_counters "$floor" floor "$out/callgrind.floor.$floor")
    instructions=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$dump")
    printf '%-34s %12d instructions/request   (%s)\n' "floor POST /log" $((instructions / single)) "$dump"
    printf '%-34s %12d instructions/request on the HTTP worker\n' "floor POST /log" $(($(dispatcher "$dump") / single))
fi
