#!/usr/bin/env bash
# `make bench` (scripts/bench.sh BUILD_DIR): starts a scratch amd with no rate limit and runs
# every BUILD_DIR/bench_* against it; figures are printed, never judged. BENCH_EVENTS=N scales
# the run (default 1000000 events). bench_pipeline runs last with amds of its own.
# Exits non-zero only when the benchmark could not run.
set -euo pipefail
BUILD=${1:-build}
for bin in am amd bench_ingest; do
  [ -x "$BUILD/$bin" ] || { echo "bench: $BUILD/$bin is missing; run 'make build' first" >&2; exit 1; }
done

PID=""
DIR=$(mktemp -d "${TMPDIR:-/tmp}/am-bench.XXXXXX")
stop_amd() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=""
}
trap 'stop_amd; rm -rf "$DIR"' EXIT
trap 'exit 130' INT TERM

# A port nobody listens on now (the kernel's pick, released for amd to take).
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATA="$DIR/data"
mkdir -p "$DATA" "$DIR/scratch"
if ! "$BUILD/am" --data-dir "$DATA" user add bench >"$DIR/am.log" 2>&1 ||
   ! TOKEN=$("$BUILD/am" --data-dir "$DATA" token create --user bench --scope ingest,read 2>>"$DIR/am.log" | tail -n 1) ||
   [ -z "$TOKEN" ]; then
  echo "bench: could not create the bench user and token:" >&2
  cat "$DIR/am.log" >&2
  exit 1
fi

AM_RATE_LIMIT_PER_S=0 AM_LOG_LEVEL=warn AM_NUDGE_BUDGET_PER_DAY=1000 AM_NUDGE_COOLDOWN_MIN=0 \
  AM_NUDGE_QUIET_HOURS= "$BUILD/amd" --data-dir "$DATA" --listen "127.0.0.1:$PORT" \
  2>"$DIR/amd.log" &
PID=$!
URL="http://127.0.0.1:$PORT"
up=""
for _ in $(seq 100); do
  if curl -sf "$URL/healthz" >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  echo "bench: amd did not answer $URL/healthz within 10 s; its log:" >&2
  cat "$DIR/amd.log" >&2
  exit 1
fi

echo "== AM bench $(date -u +%FT%TZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)," \
  "$(df -PT "$DIR" | awk 'NR == 2 {print $2}') at $DIR"
echo "commit: $(git -C "$(dirname "$0")/.." describe --always --dirty 2>/dev/null || echo unknown)"
echo "amd: pid $PID at $URL, events: ${BENCH_EVENTS:-1000000}"

rc=0
for b in "$BUILD"/bench_*; do
  [ -x "$b" ] && [ -f "$b" ] || continue
  [ "$(basename "$b")" = bench_pipeline ] && continue # starts its own amds; runs below
  echo "== $(basename "$b")"
  "$b" "$URL" "$TOKEN" "$PID" "$DIR/scratch" || rc=$?
done
echo "== amd data dir after the run: $(du -sh "$DATA" | cut -f1)"
if ! kill -0 "$PID" 2>/dev/null; then
  echo "bench: amd died during the run; its log:" >&2
  cat "$DIR/amd.log" >&2
  rc=1
fi
t0=$(date +%s%N)
stop_amd
echo "amd stopped in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
if [ -s "$DIR/amd.log" ]; then
  echo "== amd warnings and errors during the run (last 20 lines):"
  tail -n 20 "$DIR/amd.log"
fi

# bench_pipeline (OCR, speech to text, search) starts amds of its own with the pipeline
# settings each part needs, so it runs once the amd above has stopped. Its sqlite-vec
# baseline comes from npm (sqlite-vec-linux-x64 ships vec0.so); without npm that one
# comparison is skipped and the output says why.
if [ -x "$BUILD/bench_pipeline" ]; then
  echo "== bench_pipeline"
  VEC0="$BUILD/bench-npm/node_modules/sqlite-vec-linux-x64/vec0.so"
  VEC0_SKIP=""
  if [ ! -f "$VEC0" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      VEC0_SKIP="npm is not installed"
    elif ! timeout 300 npm install --prefix "$BUILD/bench-npm" --no-audit --no-fund \
        --loglevel=error sqlite-vec-linux-x64 >"$DIR/npm.log" 2>&1 || [ ! -f "$VEC0" ]; then
      VEC0_SKIP="npm install sqlite-vec-linux-x64 failed: $({ grep -v '^npm warn' "$DIR/npm.log" ||
        true; } | tail -n 1)"
    fi
  fi
  BENCH_VEC0="$VEC0" BENCH_VEC0_SKIP="$VEC0_SKIP" "$BUILD/bench_pipeline" "$BUILD" "$DIR" || rc=$?
fi
exit "$rc"
