#!/usr/bin/env bash
# Start `podium serve` for the gateway benchmark, pinned like LiteLLM, then print one JSON line
# (ready time, first completion, idle RSS) in start_litellm.sh's format.
#   start_podium.sh PORT UPSTREAM_BASE PIDFILE LOG [MIDDLEWARE]
# MIDDLEWARE: "full" (auth, limits, budget, metrics + SQLite ledger; the default) or "none".
# Clients send "Authorization: Bearer sk-bench" and model "mock-gpt", as for LiteLLM.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=$1; UPSTREAM=$2; PIDFILE=$3; LOG=$4; MODE=${5:-full}
GATEWAY_CPU=${GATEWAY_CPU:-1}
BENCH_PY=${BENCH_PY:-/tmp/bench-venv/bin/python}
PODIUM_PY=${PODIUM_PY:-$ROOT/.venv/bin/python}
API_KEY=${API_KEY:-sk-bench}; MODEL=${MODEL:-mock-gpt}
WORK=$(mktemp -d /tmp/podium-bench-XXXX)
if [ "$MODE" = none ]; then
  GATEWAY='{"auth": "optional", "middleware": [], "keys_path": "'$WORK'/keys.sqlite3"}'
  LEDGER='{"enabled": false}'
else
  GATEWAY='{"keys_path": "'$WORK'/keys.sqlite3", "rpm": 100000000, "tpm": 1000000000000}'
  LEDGER='{"path": "'$WORK'/ledger.sqlite3"}'
fi
cat >"$WORK/podium.yaml" <<YAML
providers:
  mock: {kind: openai, base_url: "$UPSTREAM", api_key: sk-dummy-upstream, timeout: 60}
  local: {enabled: false}
models:
  $MODEL: {provider: mock, model_id: $MODEL, context_window: 128000, input_price: 0.15, output_price: 0.6,
           tier: fast, region: us}
resilience: {retries: {max_attempts: 1}}
gateway: $GATEWAY
ledger: $LEDGER
YAML
"$PODIUM_PY" - "$WORK" "$API_KEY" <<'PY'
import sys
from pathlib import Path
from podium.server.keys import KeyStore
KeyStore(Path(sys.argv[1]) / "keys.sqlite3").create("bench", secret=sys.argv[2], budget=1e9)
PY
t0=$(date +%s.%N)
( cd "$WORK" && exec taskset -c "$GATEWAY_CPU" "$PODIUM_PY" -m podium.cli serve --port "$PORT" \
    --config "$WORK/podium.yaml" ) >"$LOG" 2>&1 &
PID=$!
echo $PID >"$PIDFILE"
ready=""
for _ in $(seq 1 600); do
  kill -0 "$PID" 2>/dev/null || { echo "podium died, see $LOG" >&2; exit 1; }
  if [ -z "$ready" ] && curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; then ready=$(date +%s.%N); fi
  if [ -n "$ready" ] && [ "${READY_CHECK:-completion}" = health ]; then code=200; break; fi
  if [ -n "$ready" ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PORT/v1/chat/completions" \
      -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
      -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" || true)
    [ "$code" = 200 ] && break
  fi
  sleep 0.02
done
t1=$(date +%s.%N)
[ "${code:-}" = 200 ] || { echo "podium not serving, see $LOG" >&2; exit 1; }
sleep 2
idle=$("$BENCH_PY" "$HERE/sample_proc.py" --pid "$PID")
printf '{"gateway":"podium-%s","pid":%s,"port":%s,"workers":1,"ready_s":%.2f,"first_completion_s":%.2f,"idle":%s}\n' \
  "$MODE" "$PID" "$PORT" "$(echo "$ready - $t0" | bc)" "$(echo "$t1 - $t0" | bc)" "$idle"
