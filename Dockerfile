# syntax=docker/dockerfile:1
#
# The OgLogStream image: one binary, any role.
#
#   docker build -t oglogstream .
#   docker run -p 8080:8080 oglogstream                        # --role all, embedded store
#   docker run -e OGLOGSTREAM_ROLE=ingest -e NATS_URL=nats://nats:4222 oglogstream
#   docker run oglogstream --role query                        # flags work too
#
# Stages: the dashboard (Node) -> the binary with the dashboard embedded
# (Rust) -> a slim Debian runtime running as a non-root user. Needs BuildKit
# (the default builder since Docker 23) for the cargo cache mounts.

ARG NODE_VERSION=20
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---- dashboard: web/ -> web/dist ----------------------------------------------
FROM node:${NODE_VERSION}-${DEBIAN_RELEASE}-slim AS web
WORKDIR /src/web
# Dependencies first: this layer is reused until the lock file changes.
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

# ---- binary --------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
COPY --from=web /src/web/dist web/dist
# build.rs would otherwise run npm itself; the dashboard is built above.
ENV OGLOGSTREAM_SKIP_WEB_BUILD=1
# The registry and target caches survive between builds (BuildKit cache
# mounts), so a source change recompiles our crate only. The binary is copied
# out of the cached target directory, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin oglogstream \
    && install -D -m 0755 target/release/oglogstream /out/oglogstream

# ---- runtime -------------------------------------------------------------------
# The same Debian release as the build stage, so the binary finds the glibc it
# was linked against. SQLite is compiled in and nothing links OpenSSL;
# ca-certificates is for TLS connections to NATS or ClickHouse.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 oglogstream \
    && useradd --system --uid 10001 --gid oglogstream \
        --home-dir /var/lib/oglogstream --shell /usr/sbin/nologin oglogstream \
    && install -d -o oglogstream -g oglogstream /var/lib/oglogstream/data
COPY --from=build /out/oglogstream /usr/local/bin/oglogstream
COPY docker/healthcheck.sh /usr/local/bin/oglogstream-healthcheck

USER oglogstream
WORKDIR /var/lib/oglogstream
# The role comes from OGLOGSTREAM_ROLE (or `--role` as the command). The data
# directory holds the embedded SQLite store (--role all) and dead letters; it
# is created owned by the service user, so a named volume mounted on it is too.
ENV OGLOGSTREAM_ROLE=all \
    OGLOGSTREAM_STORAGE__DATA_DIR=/var/lib/oglogstream/data \
    HTTP_PORT=8080
EXPOSE 8080

# GET /health must answer 200: 503 (bus or store down) makes the container
# unhealthy, which compose shows and `depends_on: service_healthy` waits on.
# Set the port with HTTP_PORT, not --listen, so the check finds it.
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/oglogstream-healthcheck"]

# SIGTERM (docker stop) stops gracefully: in-flight requests finish and queued
# logs are stored. Give it the time it needs: `docker stop -t 35` (the
# default shutdown_timeout is 30 s; compose.yaml sets stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/oglogstream"]
