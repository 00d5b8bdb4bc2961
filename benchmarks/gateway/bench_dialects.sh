#!/usr/bin/env bash
# CPU per request of the gateway's three dialects (Chat Completions, Anthropic Messages, Responses) against
# the same mock upstream, with every middleware on; the routes take turns, so drift hits them alike.
#   bench_dialects.sh [REPS] [SECONDS] [CONNECTIONS]    (first: bash setup.sh)
# Prints per route: requests/s, p50 latency and the gateway process's CPU µs per request (from /proc).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPS=${1:-3}; SECS=${2:-8}; CONNS=${3:-16}
export BENCH_PY=${BENCH_PY:-/tmp/bench-venv/bin/python}
OUT=$(mktemp -d /tmp/podium-dialects-XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
( cd "$HERE" && exec taskset -c 0 "$BENCH_PY" mock_upstream.py --port 18100 --delay-ms 0 ) >"$OUT/mock.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -sf -o /dev/null http://127.0.0.1:18100/health && break; sleep 0.1; done
READY_CHECK=health "$HERE/start_podium.sh" 15100 http://127.0.0.1:18100/v1 "$OUT/podium.pid" "$OUT/podium.log" full \
  >/dev/null
PID=$(cat "$OUT/podium.pid"); PIDS+=("$PID")
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK=$(getconf CLK_TCK)
for d in chat messages responses; do  # warm-up
  DIALECT=$d taskset -c 0 wrk -t1 -c4 -d2s -s "$HERE/dialect.lua" http://127.0.0.1:15100 >/dev/null
done
for rep in $(seq 1 "$REPS"); do
  for d in chat messages responses; do
    before=$(cpu)
    line=$(DIALECT=$d taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$HERE/dialect.lua" http://127.0.0.1:15100 \
      | grep WRK_JSON | cut -d' ' -f2-)
    after=$(cpu)
    echo "$line" | "$BENCH_PY" -c "
import json, sys
r = json.loads(sys.stdin.read())
cpu_us = ($after - $before) / $TICK / max(r['requests'], 1) * 1e6
print(json.dumps({'rep': $rep, 'dialect': '$d', 'rps': r['rps'], 'p50_ms': r['lat_p50_ms'],
                  'errors': r['err_status'], 'cpu_us_per_request': round(cpu_us, 1)}))"
  done
done | tee "$OUT/results.jsonl"
"$BENCH_PY" - "$OUT/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
med = {d: statistics.median(r["cpu_us_per_request"] for r in rows if r["dialect"] == d)
       for d in ("chat", "messages", "responses")}
for d, v in med.items():
    rps = statistics.median(r["rps"] for r in rows if r["dialect"] == d)
    print(f"{d:10} median CPU {v:7.1f} µs/request ({(v / med['chat'] - 1) * 100:+5.1f} % vs chat)  {rps:7.1f} req/s")
PY
