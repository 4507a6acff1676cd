# The two commands: `make run` (the platform on the embedded store,
# dashboard at http://localhost:8080) and `make test` (every test, installing
# what the tests need).

.PHONY: run test build lint bench bench-split bench-clickhouse bench-soak bench-tenants k8s-configmap

run:
	cargo run --release

test:
	scripts/test.sh

build:
	cargo build --release

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

# k8s/configmap.yaml holds config/oglogstream.toml: regenerate it after
# editing the TOML (cargo test fails while they differ).
k8s-configmap:
	scripts/k8s-configmap.sh > k8s/configmap.yaml

# Throughput, latency and memory of a release build on the embedded store:
# starts a server on a temporary data directory, runs every load phase
# (bounded in time and count; pre-fills 1M and 10M logs), prints the table.
# Arguments for the load generator: make bench BENCH_ARGS="--sizes 1000000".
bench:
	scripts/bench.sh $(BENCH_ARGS)

# The same single-log and bulk load on `--role ingest` over a private JetStream,
# then end to end into a private ClickHouse on one nats-server and on a 3-node R3 cluster.
bench-split:
	scripts/bench.sh --split $(BENCH_ARGS)

# 30 minutes (SOAK_MINUTES) of mixed load on the embedded store: every
# ingest protocol, queries, live tails, exports and alert rules at once;
# the server's RSS, open descriptors and p99s every 10 s, into docs/soak.csv
# and the plot docs/soak.svg.
bench-soak:
	scripts/bench.sh --soak $(BENCH_ARGS)

# What tenancy costs: bulk ingest with tenants off and on, and a small
# tenant's reads among 100 tenants (10M logs) against a store of its own.
# BENCH_ARGS="--clickhouse" (first) for ClickHouse.
bench-tenants:
	scripts/bench-tenants.sh $(BENCH_ARGS)

# The `make bench` table with the server storing into a private
# clickhouse-server (needs clickhouse-server; its data stays in the temporary
# directory and goes with it).
bench-clickhouse:
	scripts/bench.sh --clickhouse $(BENCH_ARGS)

# ---- containers (compose.yaml; Docker Compose v2, or COMPOSE=docker-compose) --
# make dev          one --role all container on the embedded store: http://localhost:8080
# make prod         NATS + ClickHouse + SCALE (3) ingest/process/query behind HAProxy:
#                   http://localhost (app), http://localhost:8404/stats (HAProxy)
# make prod-cluster the same on 3 NATS nodes and ClickHouse 2 shards x 2 replicas
#                   (compose.cluster.yaml)
# make monitoring   Prometheus with the alert rules (127.0.0.1:9090), Grafana with
#                   the dashboard (127.0.0.1:3000)
# make status       containers, platform health, HAProxy's view of every instance
# make smoke-test   a log in and out through HAProxy (BASE_URL to point elsewhere)
# make down         stop everything (volumes kept; `$(COMPOSE) down -v` drops data)

COMPOSE ?= docker compose
SCALE ?= 3
BASE_URL ?= http://localhost:80
STATS_URL ?= http://localhost:8404/stats

.PHONY: dev prod prod-cluster monitoring status smoke-test down

dev:
	$(COMPOSE) --profile dev up -d --build dev
	BASE_URL=http://localhost:8080 STATS_URL= scripts/smoke-test.sh --wait-only

prod:
	$(COMPOSE) up -d --build --scale ingest=$(SCALE) --scale process=$(SCALE) --scale query=$(SCALE)
	BASE_URL=$(BASE_URL) STATS_URL=$(STATS_URL) scripts/smoke-test.sh --wait-only

status:
	$(COMPOSE) --profile dev ps
	@echo "== $(BASE_URL)/health"
	@curl -sS --max-time 5 $(BASE_URL)/health; echo
	@echo "== HAProxy: proxy/server status (check result)"
	@curl -sS --max-time 5 '$(STATS_URL);csv' \
		| awk -F, '$$1 !~ /^#/ && $$2 != "FRONTEND" && $$2 != "BACKEND" && $$1 != "stats" { printf "%-10s %-12s %s (%s)\n", $$1, $$2, $$18, $$37 }'

smoke-test:
	BASE_URL=$(BASE_URL) STATS_URL=$(STATS_URL) scripts/smoke-test.sh

# The production cluster: compose.yaml + compose.cluster.yaml (3 NATS nodes,
# ClickHouse 2 shards x 2 replicas with a 3-node ZooKeeper), SCALE of each role.
prod-cluster:
	$(COMPOSE) -f compose.yaml -f compose.cluster.yaml up -d --build --scale ingest=$(SCALE) --scale process=$(SCALE) --scale query=$(SCALE)
	BASE_URL=$(BASE_URL) STATS_URL=$(STATS_URL) scripts/smoke-test.sh --wait-only

# Prometheus (alert rules loaded) on 127.0.0.1:9090, Grafana (dashboard
# provisioned) on 127.0.0.1:3000, next to `make prod` or `make prod-cluster`.
monitoring:
	$(COMPOSE) --profile monitoring up -d prometheus grafana

down:
	$(COMPOSE) -f compose.yaml -f compose.cluster.yaml --profile dev --profile monitoring down
