#!/usr/bin/env bash
# `make bench`: builds the release binaries, starts a server with --role all
# on the embedded store in a temporary data directory on a free loopback
# port, runs the load generator against it (every phase, bounded in time and
# count), prints the table and stops the server. Extra arguments go to the
# load generator, e.g. `scripts/bench.sh --sizes 1000000 --seconds 5`.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins
workdir=$(mktemp -d "${TMPDIR:-/tmp}/oglogstream-bench.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

# The shipped configuration (what `make run` uses), with a fresh data
# directory and a loopback port. The server's own log goes next to the data.
target/release/oglogstream --role all --config config/oglogstream.toml \
    --listen "127.0.0.1:$port" --data-dir "$workdir/data" 2>"$workdir/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { cat "$workdir/server.log"; exit 1; }

target/release/oglogstream-bench --url "http://127.0.0.1:$port" --pid "$server_pid" "$@"
echo "database size: $(du -sh "$workdir/data" | cut -f1)"
