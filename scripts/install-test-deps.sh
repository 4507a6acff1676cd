#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: Debian packages for
# the real dependencies the integration tests start privately (NATS,
# ClickHouse, ZooKeeper, HAProxy, Chromium, promtool, docker-compose for
# parsing, curl for scripts/smoke-test.sh, rsyslog with its Elasticsearch
# output and its GnuTLS driver and util-linux's logger for the syslog and
# Elasticsearch shipper tests and syslog over TLS, openssl for the TLS
# tests' private CAs), the tests' pinned Python packages (in a virtual
# environment under target/), the Node.js shippers and the OpenID Connect
# provider (oidc-provider) the tests drive (tests/clients) and the
# dashboard's npm packages. Safe to run again: it only installs what is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A wanted=(
  [nats-server]=nats-server
  [clickhouse-server]=clickhouse-server
  [clickhouse-client]=clickhouse-client
  [haproxy]=haproxy
  [chromium]=chromium
  [promtool]=prometheus
  [docker-compose]=docker-compose
  [curl]=curl
  [rsyslogd]=rsyslog
  [logger]=bsdutils
  [openssl]=openssl
)
missing=()
for command in "${!wanted[@]}"; do
  if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ] && [ ! -x "/usr/bin/$command" ]; then
    missing+=("${wanted[$command]}")
  fi
done
# Packages that bring no command of their own (rsyslog's omelasticsearch
# module, its gtls network stream driver for syslog over TLS).
for package in rsyslog-elasticsearch rsyslog-gnutls; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
# ZooKeeper (replicated ClickHouse tests) has no command on the PATH: its jar.
if [ ! -f /usr/share/java/zookeeper.jar ]; then
  missing+=(zookeeper)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # The packaged clickhouse-server would start a system-wide server on the
  # default ports; the tests run their own, so keep the service from starting.
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if command -v systemctl >/dev/null 2>&1; then
    $sudo systemctl disable --now clickhouse-server nats-server haproxy prometheus rsyslog >/dev/null 2>&1 || true
  fi
fi

# Python packages some tests drive (real client libraries, validators), pinned
# in tests/requirements.txt, go into a virtual environment of the project's
# own, never into the system interpreter. Tests find it at target/test-venv.
venv=target/test-venv
if [ ! -x "$venv/bin/python" ]; then
  echo "creating the tests' Python virtual environment ($venv)"
  python3 -m venv "$venv"
fi
if [ ! -f "$venv/.installed" ] || [ tests/requirements.txt -nt "$venv/.installed" ]; then
  echo "installing the tests' Python packages (tests/requirements.txt)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  touch "$venv/.installed"
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node 20+ (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
# The Node.js log shippers the shipper tests drive and the OpenID Connect
# provider the sign-in tests start (tests/clients), pinned by their lockfile.
if [ ! -d tests/clients/node_modules ] || [ tests/clients/package-lock.json -nt tests/clients/node_modules/.package-lock.json ]; then
  echo "installing the test clients' npm packages (tests/clients)"
  npm --prefix tests/clients ci --no-audit --no-fund
fi
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  echo "installing the dashboard's npm packages"
  npm --prefix web ci --no-audit --no-fund
fi
