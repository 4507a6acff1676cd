# The two commands: `make run` (the platform on the embedded store,
# dashboard at http://localhost:8080) and `make test` (every test, installing
# what the tests need).

.PHONY: run test build lint bench

run:
	cargo run --release

test:
	scripts/test.sh

build:
	cargo build --release

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

# Throughput, latency and memory of a release build on the embedded store:
# starts a server on a temporary data directory, runs every load phase
# (bounded in time and count; pre-fills 1M and 10M logs), prints the table.
# Arguments for the load generator: make bench BENCH_ARGS="--sizes 1000000".
bench:
	scripts/bench.sh $(BENCH_ARGS)
