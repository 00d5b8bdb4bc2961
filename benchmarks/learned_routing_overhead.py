"""What a learned router adds to a routing decision: embedding + predict + pick, against the tiers.

One process, one core's worth of work per step, the real local all-MiniLM-L6-v2 and a real kNN router
file (``podium.routing.learned``) fitted on ``--train`` synthetic prompts over four catalogue models:

- the heuristic decision alone (``Router.route``, the tiers; what every request pays today);
- the learned steps one at a time: embed one prompt, ``predict`` + ``explain`` for it, and the pure
  choice (``Router.route`` with the prediction: eligibility, prices, ``pick``);
- the gateway's path: ``LearnedRuntime.predict`` awaited for one request alone, and for a burst of
  ``--burst`` requests at once (they are embedded together in batches on the worker thread), as
  wall time per request;
- the event loop's share: how long the loop itself is busy per learned request (the rest runs on the
  worker thread, while the loop serves other requests).

    python benchmarks/learned_routing_overhead.py [--n 100] [--train 1000] [--burst 20]
"""

from __future__ import annotations

import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, as local_embeddings.py
    os.environ.setdefault(var, "1")  # (a BLAS thread per core on a busy machine made embedding ~10x slower)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from podium.catalogue import bundled_catalogue  # noqa: E402
from podium.learned_runtime import LearnedRuntime, prompt_text  # noqa: E402
from podium.providers.local import minilm  # noqa: E402
from podium.routing import Router  # noqa: E402
from podium.routing.learned.knn import KnnRouter  # noqa: E402
from podium.routing.learned_route import LearnedSetup  # noqa: E402
from podium.types import ChatRequest, Message  # noqa: E402

PROVIDERS = ["openai", "anthropic", "gemini", "mistral", "deepseek", "openrouter", "publicai", "ollama", "local"]
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash")
WORDS = ("solve", "integral", "prove", "derivative", "write", "poem", "translate", "summarise", "explain", "refactor",
         "python", "function", "capital", "france", "history", "recipe", "dinner", "matrix", "probability", "essay",
         "haiku", "debug", "test", "sort", "list")


def prompts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) + "?" for _ in range(n)]


def timed(label: str, fn: Callable[[], object], n: int, per: int = 1) -> float:
    for _ in range(min(20, n)):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / per)
    samples.sort()
    median = statistics.median(samples) / 1000
    print(f"{label:58s} median {median:9.1f} µs   p99 {samples[int(len(samples) * 0.99) - 1] / 1000:9.1f} µs")
    return median


async def gateway_path(runtime: LearnedRuntime, requests: list[ChatRequest], n: int, burst: int) -> None:
    await runtime.predict(requests[0])  # the worker is warm
    alone = []
    for i in range(n):
        start = time.perf_counter_ns()
        await runtime.predict(requests[i % len(requests)])
        alone.append(time.perf_counter_ns() - start)
    print(f"{'gateway: LearnedRuntime.predict, one request alone':58s} median "
          f"{statistics.median(alone) / 1000:9.1f} µs (wall)")
    rounds, walls = max(1, n // burst), []
    batches = runtime.batches
    for r in range(rounds):
        group = [requests[(r * burst + j) % len(requests)] for j in range(burst)]
        start = time.perf_counter_ns()
        await asyncio.gather(*(runtime.predict(q) for q in group))
        walls.append((time.perf_counter_ns() - start) / burst)
    print(f"{f'gateway: a burst of {burst} at once, per request':58s} median "
          f"{statistics.median(walls) / 1000:9.1f} µs (wall; {(runtime.batches - batches) / rounds:.1f} "
          "batches per burst)")
    loop_busy = []
    for i in range(n):
        start = time.thread_time_ns()  # CPU of the loop's own thread only: the worker's is not counted
        await runtime.predict(requests[i % len(requests)])
        loop_busy.append(time.thread_time_ns() - start)
    print(f"{'gateway: event-loop thread CPU per learned request':58s} median "
          f"{statistics.median(loop_busy) / 1000:9.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()
    model = minilm.load()
    train = prompts(args.train, 1)
    x = model.embed(train)[0]
    rng = np.random.default_rng(0)
    outcomes = (rng.random((len(train), len(MODELS))) < np.array([0.5, 0.7, 0.8, 0.6])).astype(np.float64)
    knn = KnnRouter.fit(x, outcomes, list(MODELS), train, knob=0.8)
    setup = LearnedSetup(knn, Path("bench.npz"), 0.8)  # type: ignore[arg-type]
    catalogue = bundled_catalogue()
    heuristic = Router(catalogue, PROVIDERS)
    learned = Router(catalogue, PROVIDERS, learned=setup)
    texts = prompts(64, 2)
    requests = [ChatRequest(messages=[Message.user(t)], max_tokens=256) for t in texts]
    runtime = LearnedRuntime(setup, embedder=lambda batch: model.embed(batch)[0])
    prediction = runtime._compute([prompt_text(requests[0])])[0]
    print(f"kNN router over {args.train} training prompts, {len(MODELS)} models; prompts of 5-30 words\n")
    base = timed("heuristic: Router.route (tiers)", lambda: heuristic.route(requests[0]), args.n * 50)
    embed = timed("learned: embed one prompt (MiniLM)", lambda: model.embed([texts[0]]), args.n)
    vector = x[:1]
    predict = timed("learned: kNN predict + explain, one prompt", lambda: (knn.predict(vector), knn.explain(vector[0])),
                    args.n)
    choose = timed("learned: Router.route with the prediction (eligible, pick)",
                   lambda: learned.route(requests[0], prediction=prediction), args.n * 50)
    batch = timed(f"learned: embed + predict, a batch of {args.burst}, per prompt",
                  lambda: runtime._compute([prompt_text(r) for r in requests[:args.burst]]), max(10, args.n // 10),
                  per=args.burst)
    print(f"\nlearned decision, one request: {embed + predict + choose:,.0f} µs of CPU "
          f"(heuristic {base:,.1f} µs); in a batch of {args.burst}: {batch + choose:,.0f} µs per request")
    asyncio.run(gateway_path(runtime, requests, args.n, args.burst))
    runtime.close()


if __name__ == "__main__":
    main()
