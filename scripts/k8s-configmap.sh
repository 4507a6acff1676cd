#!/usr/bin/env bash
# Prints k8s/configmap.yaml: the ConfigMap `oglogstream-config` holding
# config/oglogstream.toml byte for byte, which every Deployment mounts and
# passes with --config. After editing the TOML: `make k8s-configmap`.
# (cargo test fails while the two differ: tests/it/deployment/kubernetes.rs.)
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'HEADER'
# Generated from config/oglogstream.toml by scripts/k8s-configmap.sh
# (`make k8s-configmap`): edit the TOML, not this file. The Deployments'
# environment (NATS, ClickHouse, log format) overrides what it sets.
apiVersion: v1
kind: ConfigMap
metadata:
  name: oglogstream-config
  labels:
    app.kubernetes.io/name: oglogstream
    app.kubernetes.io/part-of: oglogstream
data:
  oglogstream.toml: |
HEADER
# Four spaces into the block scalar; blank lines stay blank.
sed -e 's/^\(.\)/    \1/' config/oglogstream.toml
