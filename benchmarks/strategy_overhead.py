"""Orchestration overhead per strategy, and parallel efficiency.

1. Zero-latency scripted models, ledger off: wall time per request and per model call for each
   strategy, i.e. what Podium itself adds (routing, resilience, accounting, the strategy's logic).
2. Consensus of 5 scripted models that each take 200 ms: wall time (target <= 230 ms).

    python benchmarks/strategy_overhead.py [--n 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from podium.client import Podium
from podium.config import load_settings
from podium.providers.scripted import ScriptedProvider, Step

MODELS = {f"m{i}": {"provider": "canned", "model_id": f"m{i}", "context_window": 32_000, "input_price": 1,
                    "output_price": 1, "tier": t, "region": "us", "capabilities": ["chat", "planning"]}
          for i, t in enumerate(["fast", "fast", "standard", "standard", "advanced"])}
SPECS = ["m0", "cascade:m0,m2,m4", "vote:m0,m1,m2", "consensus:m0,m1,m2,m3,m4", "debate:m0,m1",
         "mixture:m0,m1,m2,m4", "pipeline:m4"]
PLAN = json.dumps({"subtasks": [{"id": "a", "tier": "fast", "instructions": "x"},
                                {"id": "b", "tier": "standard", "instructions": "y"}]})


def podium(directory: Path) -> Podium:
    config = {"providers": {"canned": {"kind": "scripted"}, "local": {"enabled": False}}, "models": MODELS,
              "ledger": {"enabled": False}}
    path = directory / "podium.yaml"
    path.write_text(json.dumps(config))
    return Podium(load_settings(path))


def script(client: Podium, latency: float = 0.0) -> None:
    provider = client.registry.get_provider("canned")
    assert isinstance(provider, ScriptedProvider)

    def answer(request: object) -> Step:
        text = request.messages[-1].text  # type: ignore[attr-defined]
        if "conductor" in text:
            return Step(text=PLAN, latency=latency)
        if "Review this work" in text:
            return Step(text="APPROVED\nfine", latency=latency)
        return Step(text="Paris is the capital of France\nConfidence: 0.4", latency=latency)

    provider._default = answer  # type: ignore[attr-defined]


async def overhead(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client = podium(Path(tmp))
        script(client)
        print(f"{'strategy':28s} {'calls':>5s} {'per request':>14s} {'per call':>12s}")
        for spec in SPECS:
            calls = len((await client.chat("Capital of France?", model=spec)).trace.calls)  # type: ignore[union-attr]
            times = []
            for _ in range(n):
                start = time.perf_counter()
                await client.chat("Capital of France?", model=spec)
                times.append(time.perf_counter() - start)
            median = statistics.median(times) * 1e6
            print(f"{spec:28s} {calls:5d} {median:11.0f} µs {median / calls:9.0f} µs")
        await client.aclose()


async def parallel() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client = podium(Path(tmp))
        script(client, latency=0.2)
        walls = []
        for _ in range(5):
            start = time.perf_counter()
            response = await client.chat("Capital of France?", model="consensus:m0,m1,m2,m3,m4")
            walls.append((time.perf_counter() - start) * 1000)
        assert len(response.trace.calls) == 5  # type: ignore[union-attr]
        print(f"\nconsensus of 5 models x 200 ms each: wall median {statistics.median(walls):.1f} ms, "
              f"max {max(walls):.1f} ms (target <= 230 ms; sequential would be 1000 ms)")
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(overhead(args.n))
    asyncio.run(parallel())


if __name__ == "__main__":
    main()
