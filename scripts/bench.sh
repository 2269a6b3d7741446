#!/usr/bin/env bash
# `make bench`: starts a scratch amd and prints ingest figures beside a raw SQLite
# baseline measured in the same run. Never fails on a figure.
set -euo pipefail
BUILD=${1:-build}
PID=""
DIR=$(mktemp -d /tmp/am-bench.XXXXXX)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD/am" --data-dir "$DIR/data" user add bench >/dev/null
TOKEN=$("$BUILD/am" --data-dir "$DIR/data" token create --user bench --scope ingest,read | tail -n 1)
AM_RATE_LIMIT_PER_S=0 "$BUILD/amd" --data-dir "$DIR/data" --listen "127.0.0.1:$PORT" \
  --log-level warn 2>"$DIR/amd.log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
echo "== AM bench $(date -u +%FT%TZ) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$BUILD/bench_ingest" "http://127.0.0.1:$PORT" "$TOKEN" "$PID" "$DIR"
echo "== database size: $(du -sh "$DIR/data" | cut -f1)"
