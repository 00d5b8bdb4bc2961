"""Tokens per second of the same generation through Podium and through llama-cpp-python directly.

Target: Podium / direct >= 0.97. Both load the same GGUF with the same n_ctx and threads, decode
greedily with the same seed (so they generate the same tokens), and runs are interleaved so that
machine noise hits both alike. Reported: medians over the runs, for whole answers and for streams.

    python benchmarks/local_tokens_per_second.py [--runs 5] [--max-tokens 128] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from podium.catalogue import bundled_catalogue
from podium.providers.local import weights
from podium.providers.local.provider import LocalProvider
from podium.types import ChatRequest, Message

PROMPT = "Write a detailed story about a lighthouse keeper who finds a message in a bottle."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()

    from llama_cpp import Llama

    model = bundled_catalogue().get(args.model).model_copy(update={"context_window": 2048})  # as n_ctx below
    threads = os.cpu_count() or 1
    direct = Llama(model_path=str(weights.weights_path(model.model_id)), n_ctx=2048, n_threads=threads,
                   verbose=False)
    provider = LocalProvider(n_threads=threads)
    request = ChatRequest(messages=[Message.user(PROMPT)], max_tokens=args.max_tokens, temperature=0, seed=7)
    messages = [{"role": "user", "content": PROMPT}]
    gen = {"max_tokens": args.max_tokens, "temperature": 0, "seed": 7}

    def run_direct(stream: bool) -> tuple[int, float]:
        start = time.perf_counter()
        if stream:
            n = sum(1 for part in direct.create_chat_completion(messages=messages, stream=True, **gen)
                    if part["choices"][0]["delta"].get("content"))
        else:
            n = direct.create_chat_completion(messages=messages, **gen)["usage"]["completion_tokens"]
        return n, time.perf_counter() - start

    async def run_podium(stream: bool) -> tuple[int, float]:
        start = time.perf_counter()
        if stream:
            n = 0
            async for chunk in provider.stream(request, model):
                if chunk.usage is not None:
                    n = chunk.usage.output_tokens
        else:
            n = (await provider.complete(request, model)).usage.output_tokens
        return n, time.perf_counter() - start

    async def bench() -> None:
        await provider.complete(request, model)  # load + warm up both
        run_direct(False)
        for stream in (False, True):
            rates: dict[str, list[float]] = {"direct": [], "podium": []}
            tokens: set[int] = set()
            for _ in range(args.runs):
                n, secs = run_direct(stream)
                rates["direct"].append(n / secs)
                tokens.add(n)
                n, secs = await run_podium(stream)
                rates["podium"].append(n / secs)
                tokens.add(n)
            d, p = statistics.median(rates["direct"]), statistics.median(rates["podium"])
            label = "stream  " if stream else "complete"
            spread = "  ".join(f"{k} {min(v):.1f}..{max(v):.1f}" for k, v in rates.items())
            print(f"{label} {args.model}: direct {d:7.1f} tok/s   podium {p:7.1f} tok/s   ratio {p / d:5.3f}"
                  f"   (range: {spread}; tokens per run: {sorted(tokens)}; {args.runs} interleaved runs, "
                  f"{threads} threads)")
        await provider.aclose()

    asyncio.run(bench())


if __name__ == "__main__":
    main()
