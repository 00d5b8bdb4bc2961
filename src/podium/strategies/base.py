"""The strategy protocol and the context strategies run in.

A strategy turns one request into one or more model calls and one answer. It does no I/O of its
own: every call goes through ``StrategyContext.call``, which the client wires to the resilient
caller (so retries, fallbacks, accounting and the ledger apply to every call a strategy makes),
and which resolves a name that is itself a strategy, so strategies nest (a cascade whose last
step is a consensus). The context also holds the request's budget and the observer hooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from podium.errors import BadRequestError, BudgetExceededError, ConfigError, PodiumError, RegionError, ScopeError
from podium.errors import TimeoutError as CallTimeoutError
from podium.strategies.labels import Label, Source
from podium.types import ChatRequest, ChatResponse, Message

T = TypeVar("T")


class Strategy(Protocol):
    name: str

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse: ...


class Observer(Protocol):
    """Hooks a UI or logger can follow; every method is optional to implement meaningfully."""

    def on_step(self, step: str, event: Literal["start", "end"], detail: str) -> None: ...

    def on_call(self, step: str, model: str, response: ChatResponse | None, error: PodiumError | None) -> None: ...

    def on_decision(self, step: str, decision: str) -> None: ...


class NullObserver:
    def on_step(self, step: str, event: Literal["start", "end"], detail: str) -> None:
        return None

    def on_call(self, step: str, model: str, response: ChatResponse | None, error: PodiumError | None) -> None:
        return None

    def on_decision(self, step: str, decision: str) -> None:
        return None


@dataclass
class Budget:
    """A cap on what one request may spend across all of a strategy's calls."""

    limit: float | None = None
    on_exhausted: Literal["best", "fail"] = "best"


# (model or strategy name, request, step label) -> answer; provided by the client.
CallFn = Callable[[str, ChatRequest, str, "StrategyContext"], Awaitable[ChatResponse]]
SpentFn = Callable[[], float]


@dataclass
class StrategyContext:
    call_fn: CallFn
    spent: SpentFn
    budget: Budget = field(default_factory=Budget)
    observer: Observer = field(default_factory=NullObserver)
    prefix: str = ""
    notes: list[str] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)  # automatic labels of members' answers (``labels``)

    def step(self, label: str) -> str:
        return f"{self.prefix}{label}"

    def child(self, label: str) -> StrategyContext:
        """The context for a nested strategy: its steps are labelled under ``label``."""
        return StrategyContext(self.call_fn, self.spent, self.budget, self.observer, f"{self.prefix}{label}/",
                               self.notes, self.labels)

    def label(self, response: ChatResponse, source: Source, score: float) -> None:
        """Label the model that gave ``response`` (see ``strategies.labels``); a nested strategy's answer
        (provider ``podium``) is no model's and is skipped."""
        if response.provider != "podium":
            self.labels.append(Label(response.model, source, score))

    def note(self, step: str, decision: str) -> None:
        self.notes.append(f"{step}: {decision}")
        self.observer.on_decision(step, decision)

    def keep_best(self, exc: BudgetExceededError, step: str, instead: str) -> None:
        """Budget spent: go on with what there is (``on_exhausted: best``) or fail (``fail``)."""
        if self.budget.on_exhausted == "fail":
            raise exc
        self.note(step, f"budget spent: {instead}")

    def remaining(self) -> float | None:
        return None if self.budget.limit is None else self.budget.limit - self.spent()

    async def call(self, model: str, request: ChatRequest, label: str) -> ChatResponse:
        step = self.step(label)
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise BudgetExceededError(f"budget of ${self.budget.limit:.6f} spent before {step}", code="budget")
        self.observer.on_step(step, "start", model)
        try:
            response = await self.call_fn(model, request, step, self)
        except PodiumError as exc:
            self.observer.on_call(step, model, None, exc)
            self.observer.on_step(step, "end", f"error: {exc.message}")
            raise
        self.observer.on_call(step, model, response, None)
        self.observer.on_step(step, "end", "ok")
        return response

    async def gather(self, calls: Sequence[tuple[str, ChatRequest, str]],
                     timeout: float | None = None) -> list[ChatResponse | PodiumError]:  # noqa: ASYNC109
        """Calls run concurrently; each is bounded by ``timeout``; failures come back as values."""

        async def one(model: str, request: ChatRequest, label: str) -> ChatResponse | PodiumError:
            try:
                if timeout is None:
                    return await self.call(model, request, label)
                async with asyncio.timeout(timeout):
                    return await self.call(model, request, label)
            except TimeoutError:  # the builtin, from asyncio.timeout
                return CallTimeoutError(f"{self.step(label)} ({model}) took longer than {timeout:g}s", model=model)
            except PodiumError as exc:
                if _request_fault(exc):
                    raise  # a wrong spec or a forbidden member: no member can fix it, so no tolerance
                return exc

        try:  # a task group, not gather: when one member's fault fails the request, the others are cancelled
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(*c)) for c in calls]
        except BaseExceptionGroup as grouped:
            first = grouped.exceptions[0]
            raise first from None
        results = [task.result() for task in tasks]
        if self.budget.on_exhausted == "fail":  # a spent budget fails the request, not just one member
            spent = next((r for r in results if isinstance(r, BudgetExceededError)), None)
            if spent is not None:
                raise spent
        return results


def _request_fault(exc: PodiumError) -> bool:
    """No member can fix it: a wrong spec, a forbidden member (scope, region), a runaway fan-out."""
    return type(exc) is BadRequestError or isinstance(exc, ConfigError | ScopeError | RegionError)


def with_messages(request: ChatRequest, messages: list[Message]) -> ChatRequest:
    """A copy of ``request`` asking something else (same parameters, no tools unless it had them)."""
    return request.model_copy(update={"messages": messages, "model": None, "n": 1})


def ask(request: ChatRequest, text: str, system: str | None = None) -> ChatRequest:
    messages = ([Message.system(system)] if system else []) + [Message.user(text)]
    return with_messages(request, messages)


def with_context(request: ChatRequest, instructions: str) -> ChatRequest:
    """The request's whole conversation (system prompt, earlier turns, the question), with ``instructions``
    added to its system prompt — how mixture-of-agents shows references (Wang et al., 2024) and how a judge
    is asked, so no round loses what the user said before."""
    system = "\n\n".join(m.text for m in request.messages if m.is_system and m.text)
    merged = f"{system}\n\n{instructions}" if system else instructions
    rest = [m for m in request.messages if not m.is_system]
    return with_messages(request, [Message.system(merged), *rest])


def continue_with(request: ChatRequest, own: str, text: str) -> ChatRequest:
    """The request's whole conversation, then the member's own previous answer and a new user turn."""
    return with_messages(request, [*request.messages, Message(role="assistant", content=own), Message.user(text)])


def last_user_text(request: ChatRequest) -> str:
    return next((m.text for m in reversed(request.messages) if m.role == "user"), request.prompt_text)


def best_of(responses: Sequence[ChatResponse | PodiumError]) -> list[ChatResponse]:
    return [r for r in responses if isinstance(r, ChatResponse)]
