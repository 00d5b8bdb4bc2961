"""Comparing answers: normalisation for voting, similarity for agreement. Pure functions.

Normalisation maps answers that mean the same to the same key: a final number ("The answer is
1,234." → "1234"), a multiple-choice letter ("(B) because…" → "B"), yes/no, else the trimmed,
lower-cased text without trailing punctuation.

Similarity is lexical by default (cosine of word-count vectors, no dependencies, stable), and an
``Embedder`` can replace it with semantic vectors when a local embedding model is installed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_LETTER = re.compile(r"^\s*(?:answer\s*(?:is)?\s*[:\-]?\s*)?\(?([A-Ea-e])[\).:\s]", re.I)
_LETTER_ANYWHERE = re.compile(r"\b(?:answer|option|choice)\s*(?:is)?\s*[:\-]?\s*\(?([A-E])\b\)?", re.I)
_FINAL = re.compile(r"(?:answer|result|total)\s*(?:is|=|:)\s*\$?(-?\d[\d,]*(?:\.\d+)?)", re.I)
_WORD = re.compile(r"\w+")


def normalize(answer: str) -> str:
    text = answer.strip()
    if not text:
        return ""
    lower = text.lower()
    first = re.split(r"[\s,.!]+", lower, maxsplit=1)[0]
    if first in {"yes", "no"}:
        return first
    if m := _LETTER.match(text) or _LETTER_ANYWHERE.search(text):
        return m.group(1).upper()
    if m := _FINAL.search(text):
        return _number(m.group(1))
    numbers = _NUMBER.findall(text)
    if numbers and len(text) < 200:
        return _number(numbers[-1])
    return re.sub(r"[\s.!?]+$", "", " ".join(lower.split()))


def _number(raw: str) -> str:
    value = raw.replace(",", "")
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else repr(number)


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def lexical_similarity(a: str, b: str) -> float:
    """Cosine of word-count vectors, in [0, 1]; identical texts score 1, disjoint ones 0."""
    ca, cb = Counter(_WORD.findall(a.lower())), Counter(_WORD.findall(b.lower()))
    if not ca or not cb:
        return 1.0 if not ca and not cb else 0.0
    dot = sum(ca[w] * cb[w] for w in ca.keys() & cb.keys())
    return dot / (math.sqrt(sum(v * v for v in ca.values())) * math.sqrt(sum(v * v for v in cb.values())))


def similarity_matrix(texts: Sequence[str], embedder: Embedder | None = None) -> list[list[float]]:
    if embedder is not None:
        vectors = embedder.embed(texts)
        sim: Callable[[int, int], float] = lambda i, j: _cosine(vectors[i], vectors[j])  # noqa: E731
    else:
        sim = lambda i, j: lexical_similarity(texts[i], texts[j])  # noqa: E731
    n = len(texts)
    matrix = [[1.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i][j] = matrix[j][i] = sim(i, j)
    return matrix


def agreement(matrix: Sequence[Sequence[float]]) -> float:
    """Mean pairwise similarity; 1.0 for a single answer."""
    n = len(matrix)
    if n < 2:
        return 1.0
    pairs = [matrix[i][j] for i in range(n) for j in range(i + 1, n)]
    return sum(pairs) / len(pairs)


def most_central(matrix: Sequence[Sequence[float]]) -> int:
    """The answer most similar to all the others (the medoid); ties go to the earliest."""
    scores = [sum(row) for row in matrix]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))
