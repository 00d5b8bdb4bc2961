#!/usr/bin/env python3
"""Soak: `podium serve` with every middleware and the SQLite ledger on, under steady load, RSS sampled.

    python soak.py [--minutes 5] [--connections 16] [--stream-every 4]

Starts the mock upstream (CPU 0) and Podium via start_podium.sh (pinned to CPU 1), drives it with
wrk for the whole time (JSON; every ``--stream-every``-th minute streaming instead), samples the
gateway's RSS every 10 s and prints the samples, the requests served and the verdict: growth
between the first minute (warm-up: caches, pools, the ledger's page cache fill) and the end.
Run `bash setup.sh` first (wrk, the bench venv).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH_PY = os.environ.get("BENCH_PY", "/tmp/bench-venv/bin/python")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_MB


def wait_for(url: str, seconds: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not answer")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stream-every", type=int, default=4, help="every n-th minute streams (SSE)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="podium-soak-"))
    mock = subprocess.Popen(["taskset", "-c", "0", BENCH_PY, str(HERE / "mock_upstream.py"), "--port", "18100"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway_pid = 0
    try:
        wait_for("http://127.0.0.1:18100/health")
        started = subprocess.run(["bash", str(HERE / "start_podium.sh"), "15100", "http://127.0.0.1:18100/v1",
                                  str(work / "pid"), str(work / "podium.log"), "full"],
                                 capture_output=True, text=True, check=True, env={**os.environ, "READY_CHECK": "health"})
        gateway_pid = int(json.loads(started.stdout.strip().splitlines()[-1])["pid"])
        samples: list[tuple[float, float]] = [(0.0, rss_mb(gateway_pid))]
        served, errors = 0, 0
        t0 = time.monotonic()
        minute = 0
        while time.monotonic() - t0 < args.minutes * 60:
            stream = args.stream_every > 0 and minute % args.stream_every == args.stream_every - 1
            remaining = args.minutes * 60 - (time.monotonic() - t0)
            for _ in range(int(min(60, remaining) // 10)):
                out = subprocess.run(["taskset", "-c", "0", "wrk", "-t1", f"-c{args.connections}", "-d10s",
                                      "-s", str(HERE / "chat.lua"), "http://127.0.0.1:15100/v1/chat/completions"],
                                     capture_output=True, text=True, env={**os.environ, "STREAM": "1" if stream else "0"})
                match = re.search(r"WRK_JSON (\{.*\})", out.stdout)
                if match:
                    summary = json.loads(match.group(1))
                    served += int(summary.get("requests", 0))
                    errors += int(summary.get("err_status", 0)) + int(summary.get("err_timeout", 0))
                samples.append((time.monotonic() - t0, rss_mb(gateway_pid)))
                print(f"{samples[-1][0]:6.0f} s  RSS {samples[-1][1]:6.1f} MB  {'sse ' if stream else 'json'}  "
                      f"served {served:,}", flush=True)
            minute += 1
        warm = [mb for t, mb in samples if 50 <= t <= 70] or [samples[1][1]]
        end = samples[-1][1]
        print(f"\nrequests served: {served:,} (errors: {errors})")
        print(f"RSS idle {samples[0][1]:.1f} MB, after warm-up (1 min) {warm[0]:.1f} MB, end {end:.1f} MB, "
              f"max {max(mb for _, mb in samples):.1f} MB")
        print(f"growth after warm-up: {end - warm[0]:+.1f} MB over {(samples[-1][0] - 60) / 60:.1f} min")
    finally:
        if gateway_pid:
            subprocess.run(["kill", str(gateway_pid)], check=False)
        mock.terminate()


if __name__ == "__main__":
    main()
