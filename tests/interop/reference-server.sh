#!/bin/sh
# Run the reference y-websocket server (@y/websocket-server 0.1.1, in-memory documents).
# Usage: tests/interop/reference-server.sh [PORT]   (default 1234; HOST defaults to 127.0.0.1)
# Clients connect to ws://HOST:PORT with the room as the path: ws://HOST:PORT/<room>.
# It checks no tokens: URL query parameters are ignored.
set -eu
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
PORT="${1:-${PORT:-1234}}" HOST="${HOST:-127.0.0.1}" exec node node_modules/@y/websocket-server/src/server.js
