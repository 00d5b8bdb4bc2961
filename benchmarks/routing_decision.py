"""Routing decision time: how long the router takes to pick a model (target: median < 50 µs).

All 33 catalogue models enabled, so the tiered path scans the whole catalogue.

    python benchmarks/routing_decision.py [--n 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from podium.catalogue import bundled_catalogue
from podium.routing import Router
from podium.types import ChatRequest, Message

ALL = ["openai", "anthropic", "gemini", "mistral", "deepseek", "openrouter", "publicai", "ollama", "local"]


def bench(label: str, router: Router, request: ChatRequest, n: int) -> None:
    for _ in range(500):
        router.decide(request)
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        router.decide(request)
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    print(f"{label:44s} median {statistics.median(samples) / 1000:7.1f} µs   "
          f"p99 {samples[int(n * 0.99)] / 1000:7.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    catalogue = bundled_catalogue()
    router = Router(catalogue, ALL, rules={"code": "codestral"})
    short = ChatRequest(messages=[Message.user("What is the capital of France?")], max_tokens=256)
    design = ChatRequest(messages=[Message.system("You are a senior engineer."), Message.user(
        "Design the architecture for migrating our core billing service to event sourcing. " * 5)], max_tokens=1024)
    bench("explicit model", router, short.model_copy(update={"model": "gpt-4o-mini"}), args.n)
    bench("rule (task type → model)", router, short.model_copy(
        update={"metadata": short.metadata.model_copy(update={"task_type": "code"})}), args.n)
    bench("tiers, short question (33 models scanned)", router, short, args.n)
    bench("tiers, long design prompt", router, design, args.n)
    bench("tiers, confidential + privacy-first preset", router, design.model_copy(
        update={"metadata": design.metadata.model_copy(update={"sensitivity": "confidential",
                                                                "preset": "privacy-first"})}), args.n)
    bench("tiers, budget cap $0.001", Router(catalogue, ALL, max_cost=0.001), design, args.n)


if __name__ == "__main__":
    main()
