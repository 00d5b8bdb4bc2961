"""Shadow trials: a sampled share of served requests also sent to a candidate model, in the background.

The multi-model plan's second month — "replace the routine tier with a cheaper or local model" —
needs evidence before anyone switches: would the candidate have given the same answers, at what
cost and speed? A shadow trial gathers it from live traffic without touching that traffic:

* **after, never before.** ``offer`` is called once the served answer is complete (its ledger row
  written); it hashes the request id against ``sample`` and puts a job on the trial's queue with
  ``put_nowait``. It never awaits, so it cannot delay the answer, and it never sees the answer's
  bytes on their way out, so it cannot change them. What the candidate says is never returned.
* **bounded.** Each trial has ``concurrency`` workers and a queue of ``queue`` jobs; a job that finds
  the queue full is dropped, counted, and recorded as ``dropped``.
* **accounted, held to the policy.** The candidate is called through the resilient caller and the
  invoker (the one choke point), so its call rows land in the ledger and its cost in each model's
  totals — under a request id of its own that has no request row. The shadow call gets a policy of
  its own with the served request's key scope and regions: a candidate (or judge) the served
  request's policy would refuse is not called, and the trial is recorded as ``skipped`` with the
  reason. It does **not** draw on the key's or team's budget or token limits: the caller did not
  ask for it, and an experiment must never refuse a caller's next request. Spend is bounded by
  ``sample``, the queue and the concurrency instead. Fallbacks are off for a shadow call: the trial
  is about the candidate, not whatever would have stood in for it.
* **compared.** ``compare: answers`` compares the extracted final answers (``strategies.answers``:
  letters, numbers, yes/no exactly; free text by content-word similarity at ``threshold``);
  ``compare: judge:MODEL`` asks a judge model (shown the conversation, the served answer and the
  candidate's) to score agreement from 0 to 10, agreed at ``threshold`` times 10.
* **recorded, never raised.** Every sampled request ends as one ``shadow_trials`` row — ok (with
  ``agreed`` and ``score``), error (the candidate failed or timed out after ``timeout`` seconds),
  skipped, dropped, or cancelled (the gateway shut down first). A failure is logged (logger
  ``podium.shadow``: trial, request id, reason; never prompt text) and counted, never raised.
* **stopped cleanly.** ``aclose`` cancels the workers, records what was in flight or still queued
  as cancelled, and returns: shutdown never waits for a slow candidate.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from podium.catalogue import Catalogue, ModelInfo
from podium.config.schema import ShadowConfig
from podium.errors import PodiumError
from podium.experiments.assignment import bucket
from podium.invoke import RequestContext
from podium.ledger.rows import ShadowRow
from podium.policy import RequestPolicy
from podium.strategies.answers import similarity
from podium.strategies.base import with_context
from podium.types import ChatRequest, ChatResponse, new_request_id

if TYPE_CHECKING:
    from podium.ledger import LedgerStore
    from podium.resilience.executor import ResilientCaller

log = logging.getLogger("podium.shadow")
_SCORE = re.compile(r"\b(10|[0-9])(?:\.\d+)?\b")
MAX_SHADOW_CALLS = 4  # a candidate call and a judge call, with room for nothing else


@dataclass
class ShadowStats:
    """What one trial has done since the process started (the ledger has the lasting record)."""

    sampled: int = 0
    dropped: int = 0
    skipped: int = 0
    failed: int = 0
    compared: int = 0
    cancelled: int = 0


@dataclass(frozen=True)
class _Job:
    request: ChatRequest
    served: ChatResponse
    policy: RequestPolicy
    queued_at: float


@dataclass
class _Trial:
    name: str
    config: ShadowConfig
    candidate: ModelInfo
    judge: ModelInfo | None
    queue: asyncio.Queue[_Job] | None = None
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    stats: ShadowStats = field(default_factory=ShadowStats)

    def wants(self, request: ChatRequest, served: ChatResponse, request_id: str) -> bool:
        tasks = self.config.task_types
        if tasks is not None and request.metadata.task_type not in tasks:
            return False
        if served.model == self.candidate.name:  # served by the candidate already: nothing to learn
            return False
        return bucket(f"shadow:{self.name}", request_id) < self.config.sample


class ShadowTrials:
    def __init__(self, trials: Mapping[str, ShadowConfig], catalogue: Catalogue, caller: ResilientCaller,
                 ledger: LedgerStore | None) -> None:
        self.caller, self.ledger = caller, ledger
        self.trials: dict[str, _Trial] = {}
        for name, config in trials.items():
            if not config.enabled:
                continue
            judge = catalogue.get(config.compare.split(":", 1)[1]) if config.compare != "answers" else None
            self.trials[name] = _Trial(name, config, catalogue.get(config.candidate), judge)
        self._closed = False

    def __bool__(self) -> bool:
        return bool(self.trials)

    def stats(self, name: str) -> ShadowStats:
        return self.trials[name].stats

    # --- the request path: never awaits ---------------------------------------------------------------
    def offer(self, request: ChatRequest, served: ChatResponse, policy: RequestPolicy) -> None:
        """Called once the served answer is complete: queue a shadow call for each trial that samples it."""
        if self._closed:
            return
        for trial in self.trials.values():
            if not trial.wants(request, served, policy.request_id):
                continue
            trial.stats.sampled += 1
            if trial.queue is None:
                self._start(trial)
            assert trial.queue is not None
            try:
                trial.queue.put_nowait(_Job(request, served, policy, time.monotonic()))
            except asyncio.QueueFull:
                trial.stats.dropped += 1
                self._record_now(self._row(trial, _Job(request, served, policy, 0.0), "dropped",
                                           error=f"queue full ({trial.config.queue} waiting)"))

    def _start(self, trial: _Trial) -> None:
        trial.queue = asyncio.Queue(maxsize=trial.config.queue)
        trial.workers = [asyncio.get_running_loop().create_task(self._work(trial), name=f"shadow:{trial.name}:{i}")
                         for i in range(trial.config.concurrency)]

    # --- the workers ----------------------------------------------------------------------------------
    async def _work(self, trial: _Trial) -> None:
        assert trial.queue is not None
        while True:
            job = await trial.queue.get()
            try:
                row = await self._trial(trial, job)
            except asyncio.CancelledError:
                trial.stats.cancelled += 1
                self._record_now(self._row(trial, job, "cancelled", error="the gateway shut down first"))
                raise
            except Exception as exc:  # a bug in the trial itself: recorded, never raised
                log.exception("shadow %s: request %s failed", trial.name, job.policy.request_id)
                trial.stats.failed += 1
                row = self._row(trial, job, "error", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            finally:
                trial.queue.task_done()
            await self._record(row)

    async def _trial(self, trial: _Trial, job: _Job) -> ShadowRow:
        policy = job.policy
        shadow = RequestPolicy(
            request_id=new_request_id(), key_id=policy.key_id, key_name=policy.key_name, team=policy.team,
            scope=policy.scope, scope_note=policy.scope_note, regions=policy.regions,
            region_reason=policy.region_reason, max_calls=MAX_SHADOW_CALLS, cannot_run=policy.cannot_run)
        for model in (trial.candidate, trial.judge):
            why = shadow.permit(model) if model is not None else None
            if why is not None:
                trial.stats.skipped += 1
                log.info("shadow %s: request %s skipped: %s", trial.name, policy.request_id, why)
                return self._row(trial, job, "skipped", error=why)
        ctx = RequestContext(shadow)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(trial.config.timeout):
                answer = await self._ask(trial.candidate, job.request.model_copy(
                    update={"model": trial.candidate.name, "stream": False, "n": 1}), ctx, "shadow")
                latency = (time.perf_counter() - started) * 1000
                candidate_cost = ctx.cost
                agreed, score = await self._compare(trial, job, answer, ctx)
        except (PodiumError, TimeoutError) as exc:
            trial.stats.failed += 1
            why = exc.message if isinstance(exc, PodiumError) else f"no answer within {trial.config.timeout:g} s"
            log.info("shadow %s: request %s failed: %s", trial.name, policy.request_id, why[:200])
            return self._row(trial, job, "error", error=why, ctx=ctx,
                             latency_ms=(time.perf_counter() - started) * 1000)
        trial.stats.compared += 1
        return self._row(trial, job, "ok", agreed=agreed, score=score, ctx=ctx, latency_ms=latency,
                         candidate_cost=candidate_cost)

    async def _ask(self, model: ModelInfo, request: ChatRequest, ctx: RequestContext, step: str) -> ChatResponse:
        """One call to exactly ``model`` (retries, no fallbacks), checked and accounted at the invoker."""
        only = model.name
        return await self.caller.complete(request, model, ctx, step=step,
                                          refuse=lambda m: None if m.name == only else "a shadow trial asks only "
                                          "its candidate")

    async def _compare(self, trial: _Trial, job: _Job, answer: ChatResponse,
                       ctx: RequestContext) -> tuple[bool, float]:
        threshold = trial.config.threshold
        if trial.judge is None:
            score = similarity(job.served.text, answer.text)
            return score >= threshold, score
        instructions = (
            "Two assistants answered the user's last message.\n\nReference answer:\n"
            f"{job.served.text}\n\nCandidate answer:\n{answer.text}\n\n"
            "Rate how far the candidate's answer agrees with the reference answer in substance and correctness, "
            "from 0 (contradicts it, or is wrong or empty) to 10 (the same answer). Reply with the number alone "
            "on the first line. Do not answer the question yourself.")
        verdict = await self._ask(trial.judge, with_context(job.request, instructions).model_copy(
            update={"model": trial.judge.name, "stream": False, "n": 1, "tools": None, "tool_choice": None}),
            ctx, "shadow judge")
        first = verdict.text.strip().split("\n", 1)[0]
        found = _SCORE.search(first)
        if found is None:
            raise PodiumError(f"judge {trial.judge.name} gave no score 0-10 on its first line")
        score = min(1.0, float(found.group(0)) / 10)
        return score >= threshold, score

    # --- rows -------------------------------------------------------------------------------------------
    def _row(self, trial: _Trial, job: _Job, status: str, *, agreed: bool | None = None, score: float | None = None,
             ctx: RequestContext | None = None, latency_ms: float | None = None, candidate_cost: float | None = None,
             error: str | None = None) -> ShadowRow:
        spent = ctx.cost if ctx is not None else 0.0
        own = spent if candidate_cost is None else candidate_cost
        served = job.served
        return ShadowRow(
            request_id=job.policy.request_id, trial=trial.name, created_at=time.time(),
            candidate=trial.candidate.name, status=status, task_type=job.request.metadata.task_type, agreed=agreed,
            score=score, served_model=served.model, served_cost=served.cost, served_latency_ms=served.latency_ms,
            candidate_cost=own, judge_cost=spent - own, latency_ms=latency_ms,
            shadow_id=ctx.request_id if ctx is not None and ctx.calls else None, error=error)

    async def _record(self, row: ShadowRow) -> None:
        if self.ledger is None:
            return
        try:
            await self.ledger.record_shadow(row)
        except Exception as exc:
            log.error("shadow %s: request %s not recorded: %s", row.trial, row.request_id, type(exc).__name__)

    def _record_now(self, row: ShadowRow) -> None:
        """Recorded without waiting (the request path, a cancelled worker): buffered with the ledger's next write."""
        if self.ledger is None:
            return
        try:
            self.ledger.buffer_shadow(row)
        except Exception as exc:
            log.error("shadow %s: request %s not recorded: %s", row.trial, row.request_id, type(exc).__name__)

    # --- shutdown ---------------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Cancel the workers (what they were doing is recorded as cancelled) and what is still queued."""
        self._closed = True
        for trial in self.trials.values():
            for task in trial.workers:
                task.cancel()
            if trial.workers:
                await asyncio.gather(*trial.workers, return_exceptions=True)
            trial.workers = []
            queue = trial.queue
            while queue is not None and not queue.empty():
                job = queue.get_nowait()
                trial.stats.cancelled += 1
                self._record_now(self._row(trial, job, "cancelled", error="the gateway shut down first"))
