#!/usr/bin/env bash
# The image's HEALTHCHECK: exit 0 only when GET /health on this container
# answers 200. The binary has no HTTP client and the image carries no curl;
# bash's /dev/tcp and an HTTP/1.0 request (the server closes after answering)
# are enough. The port is HTTP_PORT (default 8080): set the port with HTTP_PORT
# rather than --listen in a container, so this check finds it.
set -euo pipefail
port="${HTTP_PORT:-8080}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
# Status line: "HTTP/1.0 200 OK".
read -r -t 5 _version status _reason <&3
[ "${status}" = "200" ]
