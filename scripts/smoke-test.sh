#!/usr/bin/env bash
# Smoke test of a running OgLogStream (through HAProxy by default): waits for
# /health, sends a log and a bulk of two, finds them through the API, checks
# the dashboard and HAProxy's statistics page. Exits non-zero on the first
# failure, saying what failed.
#
#   scripts/smoke-test.sh               # BASE_URL (default http://localhost:80)
#   scripts/smoke-test.sh --wait-only   # only wait until /health answers 200
#
# BASE_URL: where to send requests. STATS_URL: HAProxy's statistics page
# (default http://localhost:8404/stats; empty to skip). WAIT_SECONDS: how long
# to wait for /health (default 120).
set -euo pipefail

base="${BASE_URL:-http://localhost:80}"
base="${base%/}"
stats="${STATS_URL-http://localhost:8404/stats}"
wait_seconds="${WAIT_SECONDS:-120}"

command -v curl >/dev/null || { echo "smoke-test: curl is needed" >&2; exit 2; }

fail() { echo "smoke-test: FAILED: $*" >&2; exit 1; }

# $1: method, $2: path, $3: content type (optional), $4: body (optional).
# Sets $status and $body.
request() {
  local output
  local args=(-sS --max-time 10 -o - -w '\n%{http_code}' -X "$1" "${base}$2")
  if [ -n "${3:-}" ]; then args+=(-H "Content-Type: $3" --data-binary "$4"); fi
  # GET / is the dashboard for a browser, Elasticsearch's root for its clients.
  if [ "$2" = / ]; then args+=(-H "Accept: text/html"); fi
  output="$(curl "${args[@]}" 2>&1)" || { status=000; body="$output"; return 0; }
  status="${output##*$'\n'}"
  body="${output%$'\n'*}"
}

echo "smoke-test: waiting up to ${wait_seconds}s for ${base}/health"
deadline=$((SECONDS + wait_seconds))
while :; do
  request GET /health
  [ "$status" = 200 ] && break
  [ "$SECONDS" -ge "$deadline" ] && fail "GET /health answered ${status}: ${body}"
  sleep 1
done
echo "smoke-test: healthy: ${body}"
[ "${1:-}" = "--wait-only" ] && exit 0

marker="smoke-$(date +%s)-$$-${RANDOM}"
request POST /log application/json \
  "{\"level\":\"info\",\"message\":\"${marker} single\",\"service\":\"smoke-test\"}"
[ "$status" = 202 ] || fail "POST /log answered ${status}: ${body}"
echo "smoke-test: POST /log -> 202 ${body}"

request POST /log/bulk application/x-ndjson \
  "{\"level\":\"warn\",\"message\":\"${marker} bulk 1\",\"service\":\"smoke-test\"}
{\"level\":\"error\",\"message\":\"${marker} bulk 2\",\"service\":\"smoke-test\"}"
[ "$status" = 202 ] || fail "POST /log/bulk answered ${status}: ${body}"
case "$body" in *'"accepted":2'*) ;; *) fail "POST /log/bulk did not accept both: ${body}" ;; esac
echo "smoke-test: POST /log/bulk -> 202 ${body}"

# Stored asynchronously (process role, batches): poll until all three show.
deadline=$((SECONDS + 30))
while :; do
  request GET "/api/logs?service=smoke-test&q=${marker}&limit=10"
  found="$(grep -o "\"message\":\"${marker}" <<<"$body" | wc -l || true)"
  [ "$status" = 200 ] && [ "$found" -eq 3 ] && break
  [ "$SECONDS" -ge "$deadline" ] && fail "the 3 logs were not found within 30s: GET /api/logs -> ${status} ${body}"
  sleep 0.5
done
echo "smoke-test: GET /api/logs -> the 3 logs"

request GET "/api/stats?service=smoke-test"
[ "$status" = 200 ] || fail "GET /api/stats answered ${status}: ${body}"
request GET /
[ "$status" = 200 ] || fail "GET / (dashboard) answered ${status}"
case "$body" in *"<"[hH][tT][mM][lL]*) ;; *) fail "GET / did not return the dashboard's HTML" ;; esac
echo "smoke-test: GET /api/stats, GET / -> 200"

if [ -n "$stats" ]; then
  code="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$stats")" || code=000
  [ "$code" = 200 ] || fail "HAProxy statistics ${stats} answered ${code}"
  echo "smoke-test: ${stats} -> 200"
fi
echo "smoke-test: OK"
