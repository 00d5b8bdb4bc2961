"""The learned router's work off the event loop: embed prompts, predict chances, learn from feedback.

Embedding a short prompt with the local all-MiniLM-L6-v2 takes ~8 ms of CPU, and a learner's
``predict`` (a kNN over its training set, say) a little more: done on the event loop, twenty
requests arriving together would hold every other request — ``/health`` included — for a fifth of a
second. So one worker thread does it, and prompts that arrive while it is busy wait and go together
as one batch (the model batches by length; numpy releases the GIL in its matrix products). It is the
same group-commit shape as the ledger's writer: one hand-off per batch, not per request.

What is embedded: the last user message, then the system prompt, cut to ``MAX_CHARS`` characters
(the model reads at most 256 tokens anyway, from the start). The user message comes first because
that is what routers are trained on (a dataset's prompt) and what varies between requests.

Online routers (``OnlineRouter``, the contextual bandit): the embedding and the model that answered
are remembered per request id (the newest ``RECENT`` requests; ~1.5 KB each) so that feedback
arriving at ``/v1/feedback`` can call ``update``; older requests are found in the ledger when it
stores embeddings. A request teaches the router at most once: the first usable feedback on it updates
the router and its id is kept in a bounded set (the newest ``TAUGHT`` ids); later feedback on the same
request is still stored in the ledger but does not update the router again, so replaying one label
cannot drag a model's chance down (or up) for everyone. An id that has fallen out of that set (65,536
taught requests later) could teach once more. ``update`` runs on the same worker thread as ``predict``,
so a learner never sees the two at once. A share ``explore`` of requests is drawn here to try a random eligible model.

Nothing here runs when no learned router is configured and the ledger does not store embeddings:
the client never creates this object, and routing is exactly what it was.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from podium.routing.learned.contract import OnlineRouter
from podium.routing.learned_route import LearnedSetup, Prediction
from podium.types import ChatRequest

Vectors = NDArray[np.float32]
Embedder = Callable[[Sequence[str]], Vectors]

MAX_CHARS = 2_000
MAX_BATCH = 32
RECENT = 4_096
TAUGHT = 65_536  # request ids that already taught the online router (bounded; oldest forgotten first)
GOOD_LABELS = frozenset({"good", "correct", "right", "yes", "thumbs_up", "up", "positive", "pass", "accepted"})
BAD_LABELS = frozenset({"bad", "wrong", "incorrect", "no", "thumbs_down", "down", "negative", "fail", "rejected"})


def prompt_text(request: ChatRequest) -> str:
    """What the learner sees of a request: the last user message, then the system prompt, bounded."""
    user = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
    system = "\n".join(m.text for m in request.messages if m.is_system)
    text = f"{user}\n{system}" if system else user
    return text[:MAX_CHARS]


def reward_of(score: float | None, label: str | None) -> float | None:
    """A feedback row as a reward in [0, 1]: a score in [0, 1] as it is, else a good/bad label; else None
    (a score on another scale, a free-form label: not a reward the learner can use)."""
    if score is not None and 0.0 <= score <= 1.0:
        return float(score)
    word = (label or "").strip().lower().replace(" ", "_").replace("-", "_")
    if word in GOOD_LABELS:
        return 1.0
    if word in BAD_LABELS:
        return 0.0
    return None


def minilm_embedder() -> Embedder:
    from podium.providers.local import minilm

    def embed(texts: Sequence[str]) -> Vectors:
        return minilm.load().embed(texts)[0]

    return embed


class LearnedRuntime:
    def __init__(self, setup: LearnedSetup | None, *, embedder: Embedder | None = None,
                 seed: int | None = None, recent: int = RECENT) -> None:
        """``setup``: the learned router (None: embeddings only, for the ledger). ``embedder``: texts →
        unit vectors (default: the local MiniLM, loaded in the background now)."""
        self.setup = setup
        self._embed = embedder or minilm_embedder()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="podium-learned")
        self._pending: list[tuple[str, asyncio.Future[Prediction]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._rng = random.Random(seed)
        self._recent: OrderedDict[str, tuple[Vectors, str]] = OrderedDict()
        self._recent_max = recent
        self._taught: OrderedDict[str, None] = OrderedDict()
        self._taught_max = max(TAUGHT, recent)
        self.batches = 0  # how many hand-offs to the worker (the benchmark and the tests read it)
        if embedder is None:
            self._executor.submit(self._embed, ["warm up"])  # the weights load before the first request

    @property
    def online(self) -> bool:
        return self.setup is not None and self.setup.online

    # --- predictions -----------------------------------------------------------------------------
    async def predict(self, request: ChatRequest) -> Prediction:
        """The prompt's embedding, and (with a router) every model's chance, computed on the worker."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self._pending.append((prompt_text(request), future))
        drainer = self._drainer
        if drainer is None or drainer.done() or drainer.get_loop() is not loop:
            # none running on this loop (one that ran on a loop since closed never finished: start afresh)
            self._drainer = loop.create_task(self._drain())
        prediction = await future
        setup = self.setup
        if setup is not None and setup.online and setup.explore > 0 and self._rng.random() < setup.explore:
            prediction = Prediction(prediction.embedding, prediction.chances, prediction.explanation,
                                    explore=self._rng.random())
        return prediction

    async def _drain(self) -> None:
        """Hand everything waiting to the worker, one batch at a time, until nothing waits."""
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                # cancelled, or waited for on another (closed) loop: skipped
                batch = [(text, future) for text, future in batch if not future.done() and future.get_loop() is loop]
                if not batch:
                    continue
                self.batches += 1
                try:
                    results = await loop.run_in_executor(self._executor, self._compute, [t for t, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            mine = [(text, future) for text, future in self._pending if future.get_loop() is loop]
            self._pending = [item for item in self._pending if item not in mine]
            for _, future in mine:
                if not future.done():  # stopped (the loop is closing): nobody is left to compute these
                    future.cancel()

    def _compute(self, texts: list[str]) -> list[Prediction]:
        """On the worker thread: embed the batch, then predict and explain each row."""
        vectors = np.ascontiguousarray(self._embed(texts), dtype=np.float32)
        setup = self.setup
        if setup is None:
            return [Prediction(v, {}, "") for v in vectors]
        router: Any = setup.router
        reads_text = bool(getattr(router, "uses_text", False))  # a learner that also reads text features
        raw = router.predict(vectors, texts) if reads_text else router.predict(vectors)
        chances = np.asarray(raw, dtype=np.float64)
        if chances.shape != (len(texts), len(setup.names)):
            raise ValueError(f"the {setup.router.kind} router predicted shape {chances.shape} for "
                             f"{len(texts)} prompts and {len(setup.names)} models")
        chances = np.nan_to_num(np.clip(chances, 0.0, 1.0), nan=0.0)
        return [Prediction(v, dict(zip(setup.names, map(float, row), strict=True)),
                           router.explain(v, text) if reads_text else router.explain(v))
                for v, row, text in zip(vectors, chances, texts, strict=True)]

    # --- learning from feedback ------------------------------------------------------------------
    def remember(self, request_id: str, embedding: Vectors, model: str) -> None:
        """Keep what an online router needs to learn from this request's feedback (bounded, newest kept)."""
        if not self.online:
            return
        self._recent[request_id] = (embedding, model)
        self._recent.move_to_end(request_id)
        while len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)

    def recall(self, request_id: str) -> tuple[Vectors, str] | None:
        return self._recent.get(request_id)

    def taught(self, request_id: str) -> bool:
        """Whether feedback on ``request_id`` has already updated the online router."""
        return request_id in self._taught

    def mark_taught(self, request_id: str) -> None:
        """Record that ``request_id`` has taught the router (bounded, newest kept); call it before the update
        is awaited, so that concurrent replays of the same feedback cannot all pass ``taught``."""
        self._taught[request_id] = None
        self._taught.move_to_end(request_id)
        while len(self._taught) > self._taught_max:
            self._taught.popitem(last=False)

    async def learn(self, embedding: Vectors, model: str, reward: float) -> bool:
        """``update`` the online router (on the worker, never beside a ``predict``); False when there is
        none, or ``model`` is not one of its models (a request the tiers or a named model served)."""
        setup = self.setup
        if setup is None or not isinstance(setup.router, OnlineRouter):
            return False
        own = setup.file_name(model)
        if own is None:
            return False
        router = setup.router
        vector = np.asarray(embedding, dtype=np.float32)
        await asyncio.get_running_loop().run_in_executor(self._executor, router.update, vector, own,
                                                         min(1.0, max(0.0, float(reward))))
        return True

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
