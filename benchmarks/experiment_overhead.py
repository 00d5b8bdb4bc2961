"""What experiments and shadow trials add to a request: assignment, the arm's route, and enqueueing a shadow.

    python benchmarks/experiment_overhead.py [--n 20000]

Printed per request (median and p99, µs, one core):
  * the bare router's route for an unrouted request (the baseline the experiment replaces);
  * ``Experiments.route`` for a request in no experiment (the check every request pays);
  * ``Experiments.route`` for a request in one: hash, pick the arm, the policy check and the arm's route;
  * ``bucket`` alone (the BLAKE2b hash that makes assignment sticky);
  * ``ShadowTrials.offer`` for a sampled request (hash against ``sample`` and ``put_nowait``) and for one
    that is not sampled.
No provider is called: the shadow's workers are not started (the queue is drained by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from podium.client import Podium
from podium.config import resolve
from podium.config.schema import PodiumConfig
from podium.experiments.assignment import bucket
from podium.types import ChatRequest, ChatResponse, Message

CONFIG: dict[str, Any] = {
    "providers": {"canned": {"kind": "scripted", "options": {"answers": {"big-1": "a", "small-1": "b"}}},
                  "local": {"enabled": False}},
    "models": {name: {"provider": "canned", "model_id": f"{name}-1", "context_window": 8000, "input_price": price,
                      "output_price": price, "tier": tier, "region": "us"}
               for name, price, tier in (("big", 10.0, "advanced"), ("small", 0.5, "fast"))},
    "experiments": {"cheaper-routine": {"split": {"control": 50, "candidate": 50},
                                        "arms": {"control": {"model": "big"}, "candidate": {"model": "small"}},
                                        "applies_to": {"task_types": ["routine"]}}},
    "shadow": {"to-small": {"candidate": "small", "sample": 1.0, "queue": 100_000},
               "never": {"candidate": "small", "sample": 0.0}},
    "ledger": {"enabled": False},
}


def measure(label: str, work: Callable[[int], object], n: int) -> None:
    for i in range(min(n, 1000)):
        work(i)
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        work(i)
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    print(f"{label:58s} median {statistics.median(samples) / 1000:7.2f} µs   p99 "
          f"{samples[int(len(samples) * 0.99)] / 1000:7.2f} µs")


async def main(n: int) -> None:
    settings = resolve(PodiumConfig.model_validate(CONFIG))
    podium = Podium(settings)
    routine = ChatRequest(messages=[Message.user("Summarise this paragraph in one line.")],
                          metadata={"task_type": "routine", "user": "alice"})
    other = ChatRequest(messages=[Message.user("Summarise this paragraph in one line.")],
                        metadata={"task_type": "chat", "user": "alice"})
    users = [routine.model_copy(update={"metadata": routine.metadata.model_copy(update={"user": f"user-{i}"})})
             for i in range(1000)]
    policy = podium.policies.build(routine)
    served = ChatResponse(text="a", model="big", provider="canned", cost=0.001, latency_ms=100.0)
    print(f"per request, {n:,} runs each")
    measure("router.route (no experiment: the baseline)", lambda i: podium.router.route(routine, policy=policy), n)
    measure("Experiments.route, request in no experiment", lambda i: podium.experiments.route(other, policy), n)
    measure("Experiments.route, assigned (hash + arm + route)",
            lambda i: podium.experiments.route(users[i % 1000], policy), n)
    measure("bucket (BLAKE2b of experiment + user)", lambda i: bucket("cheaper-routine", f"user:user-{i}"), n)

    trials = podium.shadows
    for trial in trials.trials.values():  # queues without workers: offer() only enqueues
        trial.queue = asyncio.Queue(maxsize=trial.config.queue)
    sampled = {"to-small": trials.trials["to-small"]}
    unsampled = {"never": trials.trials["never"]}
    policies = [podium.policies.build(routine) for _ in range(1000)]

    def offer(i: int, which: dict[str, Any]) -> None:
        trials.trials = which
        trials.offer(routine, served, policies[i % 1000])
        queue = which.get("to-small")
        if queue is not None and queue.queue.qsize() > 50_000:
            while not queue.queue.empty():
                queue.queue.get_nowait()

    measure("ShadowTrials.offer, sampled (hash + put_nowait)", lambda i: offer(i, sampled), n)
    measure("ShadowTrials.offer, not sampled (hash only)", lambda i: offer(i, unsampled), n)
    trials.trials = {}
    await podium.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    asyncio.run(main(parser.parse_args().n))
