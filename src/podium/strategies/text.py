"""Comparing answers: normalisation for voting, similarity for agreement. Pure functions.

Normalisation maps answers that mean the same to the same key; it is ``answers.key`` (see
``podium.strategies.answers`` for the forms recognised: option letters, numbers, boxed and marked
answers, yes/no, else the trimmed lower-cased text).

Similarity is lexical by default (cosine of word-count vectors, no dependencies, stable), and an
``Embedder`` can replace it with semantic vectors when a local embedding model is installed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from podium.strategies.answers import Answer, extract, key, similarity

_WORD = re.compile(r"\w+")


def normalize(answer: str) -> str:
    """The canonical key of the answer ``answer`` gives (``answers.key``; "" when it is empty)."""
    return key(answer)


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


def answer_matrix(texts: Sequence[str], embedder: Embedder | None = None) -> list[list[float]]:
    """Pairwise ``answers.similarity`` of the replies' final answers; free text by ``embedder``'s cosine when
    one is given (embedded once), else by content words. The diagonal is 1 (an empty answer's too)."""
    said: list[Answer] = [extract(t) for t in texts]
    vectors: dict[str, list[float]] = {}
    if embedder is not None:
        free = sorted({a.key for a in said if a.kind == "text"})
        if len(free) > 1:
            vectors = dict(zip(free, embedder.embed(free), strict=True))
    text_sim = (lambda a, b: _cosine(vectors[a], vectors[b])) if vectors else None
    n = len(texts)
    matrix = [[1.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i][j] = matrix[j][i] = similarity(said[i], said[j], text_sim)
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
