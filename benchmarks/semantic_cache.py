"""Semantic cache quality: right hits (paraphrases served) and wrong hits (other questions served the
cached answer), per threshold, with and without the anchor guard.

    .venv/bin/python benchmarks/semantic_cache.py [--model smollm2-135m-embed] [--config podium.yaml]

Without --model: routing.embedding_model, by default the local minilm-l6.

The pairs are hand-labelled: a cached question, a new question, and whether the cached answer is
right for the new one. A wrong hit is the costly error (a wrong answer); a missed paraphrase only
costs a model call.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from podium.client import Podium
from podium.config import load_settings
from podium.server.semantic_cache import anchors

PAIRS: list[tuple[str, str, bool]] = [
    ("What is the capital of France?", "What's the capital of France?", True),
    ("What is the capital of France?", "Tell me the capital city of France.", True),
    ("What is the capital of France?", "Which city is the capital of France?", True),
    ("How do I sort a list in Python?", "How can I sort a Python list?", True),
    ("How do I sort a list in Python?", "Sorting a list in Python: how?", True),
    ("Explain the difference between TCP and UDP.", "What is the difference between TCP and UDP?", True),
    ("Write a haiku about autumn.", "Compose a haiku about autumn.", True),
    ("How many days are in a leap year?", "How many days does a leap year have?", True),
    ("What does HTTP status 404 mean?", "What is the meaning of HTTP status 404?", True),
    ("Translate 'good morning' into German.", "How do you say 'good morning' in German?", True),
    ("Who wrote Faust?", "Who is the author of Faust?", True),
    ("What is 17 times 23?", "Compute 17 times 23.", True),
    ("What is the capital of France?", "What is the capital of Germany?", False),
    ("What is the capital of France?", "What is the population of France?", False),
    ("How do I sort a list in Python?", "How do I reverse a list in Python?", False),
    ("How do I sort a list in Python?", "How do I sort a list in Rust?", False),
    ("Explain the difference between TCP and UDP.", "Explain the difference between HTTP and HTTPS.", False),
    ("Write a haiku about autumn.", "Write a haiku about spring.", False),
    ("Write a haiku about autumn.", "Write a limerick about autumn.", False),
    ("How many days are in a leap year?", "How many weeks are in a year?", False),
    ("What does HTTP status 404 mean?", "What does HTTP status 500 mean?", False),
    ("Translate 'good morning' into German.", "Translate 'good morning' into French.", False),
    ("Who wrote Faust?", "Who wrote Hamlet?", False),
    ("What is 17 times 23?", "What is 17 times 24?", False),
]
THRESHOLDS = (0.80, 0.85, 0.90, 0.95, 0.98)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None, help="embedding model (default: routing.embedding_model)")
    parser.add_argument("--config", default=None)
    args = parser.parse_args()
    async with Podium(load_settings(args.config), ledger=None) as podium:
        texts = sorted({t for a, b, _ in PAIRS for t in (a, b)})
        await podium.embed(texts[:1], model=args.model)  # load the model before timing
        started = time.perf_counter()
        response = await podium.embed(texts, model=args.model)
        per_text_ms = (time.perf_counter() - started) * 1000 / len(texts)
    vectors = {t: np.asarray(v) / np.linalg.norm(v) for t, v in zip(texts, response.vectors, strict=True)}
    scores = [(float(vectors[a] @ vectors[b]), anchors(a) == anchors(b), same) for a, b, same in PAIRS]
    same_n = sum(1 for *_, same in scores if same)
    other_n = len(scores) - same_n
    print(f"model {response.model}: {len(vectors[texts[0]])} dimensions, {per_text_ms:.1f} ms per text")
    print(f"{len(PAIRS)} labelled pairs: {same_n} paraphrases, {other_n} different questions")
    print(f"similarity of paraphrases: {min(s for s, _, same in scores if same):.3f} to "
          f"{max(s for s, _, same in scores if same):.3f}; of different questions: "
          f"{min(s for s, _, same in scores if not same):.3f} to {max(s for s, _, same in scores if not same):.3f}")
    print(f"\n{'threshold':>9}  {'right hits':>12}  {'wrong hits':>12}  {'right (anchors)':>15}  "
          f"{'wrong (anchors)':>15}")
    for threshold in THRESHOLDS:
        right = sum(1 for s, _, same in scores if same and s >= threshold)
        wrong = sum(1 for s, _, same in scores if not same and s >= threshold)
        right_a = sum(1 for s, ok, same in scores if same and ok and s >= threshold)
        wrong_a = sum(1 for s, ok, same in scores if not same and ok and s >= threshold)
        print(f"{threshold:>9.2f}  {right:>5}/{same_n:<6}  {wrong:>5}/{other_n:<6}  {right_a:>8}/{same_n:<6}  "
              f"{wrong_a:>8}/{other_n:<6}")


if __name__ == "__main__":
    asyncio.run(main())
