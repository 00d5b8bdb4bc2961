#!/usr/bin/env bash
# Podium's gateway benchmark: direct vs LiteLLM vs Podium (auth, limits, budget, metrics and the SQLite
# ledger on) vs Podium (every middleware off), in one interleaved run, gateways pinned to one core.
#   bench_podium.sh [--out DIR] [-- run_bench.sh options]     e.g. -- --modes "json sse ttfb" --concs "1 16 64"
# First run `bash setup.sh` (wrk, the bench venv, LiteLLM). Results: DIR/summary.md, DIR/startup.jsonl.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export BENCH_PY=${BENCH_PY:-/tmp/bench-venv/bin/python}
export GATEWAY_CPU=${GATEWAY_CPU:-1}
OUT=""; PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2;;
    --) shift; PASS=("$@"); break;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

# 1. start-to-ready and idle RSS, against a private mock
( cd "$HERE" && exec taskset -c 0 "$BENCH_PY" mock_upstream.py --port 18999 --delay-ms 0 ) >"$OUT/logs/mock-startup.log" 2>&1 &
MOCK=$!; PIDS+=("$MOCK")
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:18999/health && break; sleep 0.1; done
for mode in full none; do
  "$HERE/start_podium.sh" 15990 http://127.0.0.1:18999/v1 "$OUT/startup-$mode.pid" "$OUT/logs/startup-$mode.log" "$mode" \
    | tee -a "$OUT/startup.jsonl"
  kill "$(cat "$OUT/startup-$mode.pid")"; sleep 1
done
kill "$MOCK"

# 2. the load matrix; bench_all.sh (re)starts the mock on 18000 and LiteLLM; Podium reconnects by itself
READY_CHECK=health "$HERE/start_podium.sh" 15000 http://127.0.0.1:18000/v1 "$OUT/podium.pid" "$OUT/logs/podium.log" full
READY_CHECK=health "$HERE/start_podium.sh" 15001 http://127.0.0.1:18000/v1 "$OUT/bare.pid" "$OUT/logs/bare.log" none
PIDS+=("$(cat "$OUT/podium.pid")" "$(cat "$OUT/bare.pid")")
"$HERE/bench_all.sh" --delays 0 --out "$OUT" \
  --extra-target "podium=http://127.0.0.1:15000/v1/chat/completions@$(cat "$OUT/podium.pid")" \
  --extra-target "podium-bare=http://127.0.0.1:15001/v1/chat/completions@$(cat "$OUT/bare.pid")" -- "${PASS[@]}"
