# The two commands: `make run` (the platform on the embedded store,
# dashboard at http://localhost:8080) and `make test` (every test, installing
# what the tests need).

.PHONY: run test build lint

run:
	cargo run --release

test:
	scripts/test.sh

build:
	cargo build --release

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
