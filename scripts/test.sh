#!/usr/bin/env bash
# Every test: installs what is missing, then runs the Rust tests (unit and
# integration, against the real binary and real NATS/ClickHouse/HAProxy),
# the dashboard's unit tests and its browser tests in headless Chromium,
# and the format/lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== Rust tests"
# A failing test's panic message and location, not a 40-frame backtrace of
# the async runtime, at the end of the output (where a CI log's tail shows
# it), even where the environment asks for backtraces;
# RUST_BACKTRACE_IN_TESTS=1 make test gives them back.
RUST_BACKTRACE="${RUST_BACKTRACE_IN_TESTS:-0}" cargo test --all-targets --locked

echo "== dashboard unit tests"
npm --prefix web test

echo "== dashboard browser tests (headless Chromium)"
OGLOGSTREAM_BIN="$PWD/target/debug/oglogstream" npm --prefix web run test:e2e
