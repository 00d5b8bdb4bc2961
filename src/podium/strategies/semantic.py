"""Free-text answers compared by meaning: sentence embeddings, computed off the event loop.

``answers.similarity`` compares structured answers (letters, numbers, yes/no) exactly; for free text it
takes a ``text_similarity`` function, by default the cosine of content-word counts. Word counts can't
see that "Whales are mammals." and "A whale is a mammal." say the same thing (their content words
differ: "whales"/"whale", "mammals"/"mammal"), so a vote splits and a cascade climbs for nothing. An
:class:`AnswerEmbedder` gives strategies the semantic version: the free-text answers of one comparison
are embedded once (all-MiniLM-L6-v2 when wired by the client) and compared by cosine.

Why a thread: embedding is synchronous CPU work (about 8 ms per short text, more for long ones), and
strategies run on the gateway's event loop, where 8 ms blocks every other request. The encoder is
called with ``asyncio.to_thread``; nothing here touches the loop with numpy.

Why a rescaled score, not the raw cosine: the strategies' thresholds (``answers.AGREE`` for vote groups
and panels, a cascade's ``threshold``, a debate's) are on the scale of ``answers.similarity``, where
``AGREE`` (0.9) means "the same answer". The cosine is mapped piecewise-linearly so that ``agree_at``
(``COSINE_AGREE``) lands on ``AGREE``, 1 stays 1 and 0 stays 0; below ``agree_at`` the embedding can
only lower the content-word score, never raise it (a cosine of 0.89 says "same topic", not "same
answer", so a cascade's ``threshold: 0.7`` must not accept "A whale is a fish." against "… a mammal."
on it). Polarity is checked as the lexical measure checks it — exactly one side negated scores 0 —
because MiniLM barely separates "is a mammal" from "is not a mammal" (cosine 0.71 to 0.96 on the
generated pairs).

What it can and can't do (``benchmarks/answer_agreement.py``, 20 generated claims, held-in): a sentence
embedding measures topic and phrasing, not truth. It separates answers about different things perfectly
(unrelated pairs ≤ 0.26) but not a paraphrase from a same-frame contradiction: paraphrases score
0.50 to 0.99, "A whale is a fish." against "A whale is a mammal." 0.89, "The Sun orbits the Earth." against
"The Earth orbits the Sun." 0.98 — on raw cosine no threshold does better than 57 % balanced accuracy.
Through the strategies' comparison (numbers and letters extracted and compared exactly first, the
polarity rule) at ``agree_at`` 0.90, half the paraphrases agree (content words: 20 %) at the same 15 %
of contradictions agreeing; a stricter threshold loses paraphrases without rejecting more of them. So
agreement on free text is evidence, not proof: a cascade that accepts on it can accept a wrong answer
phrased like the right one, and the judge of a panel still decides when no two answers agree.

When the embedder is not installed (``missing()`` says why), the comparison falls back to content words
and the strategy's trace says so.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from podium.strategies.answers import AGREE, Answer, TextSimilarity, content_similarity, extract, negated, similarity

EncodeFn = Callable[[list[str]], Sequence[Sequence[float]]]  # sync CPU work: unit (or any) vectors per text
COSINE_AGREE = 0.90  # benchmarks/answer_agreement.py: best balanced accuracy on its generated (held-in) pairs


def _never_missing() -> str | None:
    return None


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def rescale(cosine: float, agree_at: float = COSINE_AGREE) -> float:
    """The cosine on ``answers.similarity``'s scale: ``agree_at`` → ``AGREE``, linear on each side, in [0, 1]."""
    c = max(0.0, min(1.0, cosine))
    if c >= agree_at:
        return AGREE + (1.0 - AGREE) * (c - agree_at) / (1.0 - agree_at) if agree_at < 1 else 1.0
    return AGREE * c / agree_at


@dataclass
class AnswerEmbedder:
    """Compares free-text answers by embedding cosine; ``encode`` runs in a worker thread.

    ``missing`` reports (cheaply, without loading anything) why the encoder can't run, or None; it is
    asked on every comparison so a model installed or removed at run time is noticed."""

    encode: EncodeFn
    missing: Callable[[], str | None] = field(default=_never_missing)
    agree_at: float = COSINE_AGREE

    async def text_similarity(self, said: Sequence[Answer]) -> tuple[TextSimilarity | None, str | None]:
        """A free-text similarity for these answers (their distinct texts embedded once, in a thread),
        or (None, why) when the embedder can't run; (None, None) when there is nothing to embed."""
        free = sorted({a.key for a in said if a.kind == "text"})
        if len(free) < 2:
            return None, None
        why = self.missing()
        if why is not None:
            return None, f"free-text answers compared by content words: the embedder is not available ({why})"
        vectors = await asyncio.to_thread(self.encode, free)
        table = dict(zip(free, vectors, strict=True))

        def semantic(a: str, b: str) -> float:
            if negated(a) != negated(b):  # MiniLM barely sees polarity: checked as the lexical measure does
                return 0.0
            score = rescale(_cosine(table[a], table[b]), self.agree_at)
            return score if score >= AGREE else min(score, content_similarity(a, b))

        return semantic, None


async def text_similarity(said: Sequence[Answer], embedder: AnswerEmbedder | None,
                          note: Callable[[str], None]) -> TextSimilarity | None:
    """The free-text similarity to use for ``said`` (None: content words), noting a fallback in the trace."""
    if embedder is None:
        return None
    function, why = await embedder.text_similarity(said)
    if why is not None:
        note(why)
    return function


async def answer_matrix(texts: Sequence[str], embedder: AnswerEmbedder | None,
                        note: Callable[[str], None]) -> list[list[float]]:
    """Pairwise ``answers.similarity`` of the replies' final answers, free text by ``embedder`` when it can
    run (see ``text.answer_matrix``, whose lexical result this equals without one). Diagonal 1."""
    said = [extract(t) for t in texts]
    function = await text_similarity(said, embedder, note)
    n = len(texts)
    matrix = [[1.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i][j] = matrix[j][i] = similarity(said[i], said[j], function)
    return matrix
