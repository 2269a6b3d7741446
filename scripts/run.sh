#!/usr/bin/env bash
# `make run`: starts amd on the embedded defaults (SQLite + in-process bus) in ./data,
# creating a first user and an admin token on the first run.
set -euo pipefail
BUILD=${1:-build}
DATA=${AM_DATA_DIR:-$PWD/data}
LISTEN=${AM_LISTEN:-127.0.0.1:8686}
USER_NAME=${AM_USER:-me}
mkdir -p "$DATA"
TOKEN_FILE="$DATA/admin.token"
if [ ! -s "$TOKEN_FILE" ]; then
  "$BUILD/am" --data-dir "$DATA" user add "$USER_NAME" >/dev/null 2>&1 || true
  umask 077
  "$BUILD/am" --data-dir "$DATA" token create --user "$USER_NAME" --scope ingest,read,admin \
    --label "make run" | tail -n 1 > "$TOKEN_FILE"
fi
TOKEN=$(cat "$TOKEN_FILE")
cat <<EOT

  AM is starting.
    URL:    http://$LISTEN
    user:   $USER_NAME
    token:  $TOKEN      (kept in $TOKEN_FILE, readable only by you)

  Try:
    curl -s -H "Authorization: Bearer $TOKEN" -d '[{"stream":"health.heart_rate","ts":"$(date -u +%Y-%m-%dT%H:%M:%SZ)","payload":{"bpm":64}}]' http://$LISTEN/v1/events
    curl -s -H "Authorization: Bearer $TOKEN" http://$LISTEN/v1/events
    curl -s http://$LISTEN/metrics

EOT
exec "$BUILD/amd" --data-dir "$DATA" --listen "$LISTEN"
