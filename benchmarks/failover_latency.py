"""Added latency when the primary deployment is down, with and without its circuit breaker.

Two local OpenAI-wire servers (the contract suite's), one model with two deployments: the primary
(weight 2, tried first) and a healthy secondary. Sequential requests; figures are per request.
Target: with the breaker open, p99 is no more than one extra fast failure above the baseline.

    python benchmarks/failover_latency.py [--n 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from podium.client import Podium
from podium.config import load_settings
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario


def config(directory: Path, primary: str, secondary: str, deployments: list[str], **resilience: Any) -> Path:
    data = {
        "providers": {"primary": {"kind": "openai", "base_url": primary + "/v1", "api_key": "k"},
                      "secondary": {"kind": "openai", "base_url": secondary + "/v1", "api_key": "k"}},
        "models": {"m": {"provider": "primary", "model_id": "gpt-4o-mini", "context_window": 100_000,
                         "input_price": 1, "output_price": 1, "tier": "fast", "region": "us"}},
        "deployments": {"m": [{"provider": p, "weight": 2 if p == "primary" else 1} for p in deployments]},
        "resilience": {"balancing": "lowest_cost", "retries": {"max_attempts": 3, "base_delay": 0}, **resilience},
        "ledger": {"enabled": False},
    }
    path = directory / f"podium-{len(list(directory.iterdir()))}.yaml"
    path.write_text(json.dumps(data))
    return path


async def measure(path: Path, n: int) -> list[float]:
    async with Podium(load_settings(path)) as podium:
        for _ in range(5):
            await podium.chat("hi", model="m")  # warm the connection pools
        out = []
        for _ in range(n):
            start = time.perf_counter()
            await podium.chat("hi", model="m")
            out.append((time.perf_counter() - start) * 1000)
        return out


def summary(label: str, ms: list[float], base: list[float] | None) -> None:
    ms_sorted = sorted(ms)
    p50, p99 = statistics.median(ms_sorted), ms_sorted[int(len(ms_sorted) * 0.99) - 1]
    extra = ""
    if base is not None:
        b = sorted(base)
        extra = f"   added p50 {p50 - statistics.median(b):+6.2f} ms  p99 {p99 - b[int(len(b) * 0.99) - 1]:+6.2f} ms"
    print(f"{label:58s} p50 {p50:6.2f} ms  p99 {p99:7.2f} ms{extra}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    bad_scenario = Scenario(status=503)
    good = WireServer(lambda r: WIRES["openai"].handle(r, Scenario(text="ok"))).start()
    bad = WireServer(lambda r: WIRES["openai"].handle(r, bad_scenario)).start()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        base = asyncio.run(measure(config(d, bad.url, good.url, ["secondary"]), args.n))
        summary("baseline: healthy secondary only", base, None)
        no_breaker = asyncio.run(measure(config(d, bad.url, good.url, ["primary", "secondary"],
                                                breaker={"failures": 10**9}), args.n))
        summary("primary 503, breaker never opens (1 fast failure each)", no_breaker, base)
        fast_failure = statistics.median(no_breaker) - statistics.median(base)
        with_breaker = asyncio.run(measure(config(d, bad.url, good.url, ["primary", "secondary"],
                                                  breaker={"failures": 3, "cooldown": 3600}), args.n))
        summary("primary 503, breaker opens after 3 failures", with_breaker, base)
        bad_scenario.status, bad_scenario.fault = None, "hang"
        hanging = asyncio.run(measure(config(d, bad.url, good.url, ["primary", "secondary"], attempt_timeout=0.2,
                                             breaker={"failures": 3, "cooldown": 3600}), args.n))
        summary("primary hangs (0.2 s attempt timeout), breaker after 3", hanging, base)
        b99 = sorted(base)[int(len(base) * 0.99) - 1]
        w99 = sorted(with_breaker)[int(len(with_breaker) * 0.99) - 1]
        print(f"\none fast failure costs {fast_failure:.2f} ms; with the breaker open p99 adds {w99 - b99:+.2f} ms "
              f"({'within' if w99 - b99 <= fast_failure else 'above'} the one-fast-failure target)")
    bad.stop()
    good.stop()


if __name__ == "__main__":
    main()
