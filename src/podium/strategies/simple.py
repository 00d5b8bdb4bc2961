"""single, vote and consensus: one model, or several answering the same question at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from podium.errors import BudgetExceededError, PodiumError, ProviderUnavailableError
from podium.strategies.base import StrategyContext, ask, best_of, last_user_text
from podium.strategies.text import Embedder, agreement, most_central, normalize, similarity_matrix
from podium.types import ChatRequest, ChatResponse


def answer(text: str, name: str, source: ChatResponse | None = None) -> ChatResponse:
    """The strategy's own response; usage, cost and trace are filled in by the client."""
    return ChatResponse(text=text, tool_calls=source.tool_calls if source else None, model=name, provider="podium",
                        finish_reason=source.finish_reason if source else "stop")


def failed(results: Sequence[ChatResponse | PodiumError], models: Sequence[str]) -> list[str]:
    return [f"{m} ({r.message[:80]})" for m, r in zip(models, results, strict=True) if isinstance(r, PodiumError)]


def all_failed(results: Sequence[ChatResponse | PodiumError], what: str) -> PodiumError:
    """The error for a strategy none of whose members answered: a spent budget; else, when every member
    failed for the request's own reason (a 4xx: unknown model, context too long, refused), that reason
    — no provider is at fault; else 503 with every member's reason."""
    errors = [r for r in results if isinstance(r, PodiumError)]
    budget = next((e for e in errors if isinstance(e, BudgetExceededError)), None)
    if budget is not None:
        return budget
    if errors and all(e.status < 500 for e in errors):
        return errors[0]
    detail = "; ".join(e.message[:100] for e in errors) or "no calls were made"
    return ProviderUnavailableError(f"{what}: every call failed ({detail})")


@dataclass
class Single:
    model: str
    name: str = "single"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        return await ctx.call(self.model, request, "answer")


@dataclass
class Vote:
    """Self-consistency: k answers (k models, or one model k times), normalised, majority wins.

    Tie-break: among the most-voted answers, the one whose first voter comes earliest in
    ``models`` (so list the model you trust most first).
    """

    models: list[str]
    timeout: float | None = None
    name: str = "vote"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        sample = request if len(set(self.models)) == len(self.models) or request.temperature else \
            request.model_copy(update={"temperature": 0.7})  # repeats of one model need sampling to differ
        results = await ctx.gather([(m, sample, f"voter {i + 1}") for i, m in enumerate(self.models)], self.timeout)
        if lost := failed(results, self.models):
            ctx.note(ctx.step("vote"), f"no vote from {', '.join(lost)}")
        groups: dict[str, list[int]] = defaultdict(list)
        for i, r in enumerate(results):
            if isinstance(r, ChatResponse):
                groups[normalize(r.text)].append(i)
        if not groups:
            raise all_failed(results, "vote")
        top = max(len(v) for v in groups.values())
        winners = [k for k, v in groups.items() if len(v) == top]
        key = min(winners, key=lambda k: groups[k][0])
        counts = ", ".join(f"{k[:30]!r} x{len(v)}" for k, v in sorted(groups.items(), key=lambda kv: -len(kv[1])))
        tie = f"; tie among {len(winners)} broken by model order" if len(winners) > 1 else ""
        voters = sum(len(v) for v in groups.values())
        ctx.note(ctx.step("vote"), f"{counts} → {key[:40]!r} ({top}/{voters} votes{tie})")
        chosen = results[groups[key][0]]
        assert isinstance(chosen, ChatResponse)
        return answer(chosen.text, self.name, chosen)


@dataclass
class Consensus:
    """N models in parallel; the answer comes from those that returned; agreement is measured.

    Synthesis: a ``synthesizer`` model merges the answers, or the most central answer is taken.
    """

    models: list[str]
    timeout: float | None = None
    synthesizer: str | None = None
    embedder: Embedder | None = field(default=None, repr=False)
    name: str = "consensus"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        results = await ctx.gather([(m, request, f"member {i + 1}") for i, m in enumerate(self.models)], self.timeout)
        answers = best_of(results)
        if lost := failed(results, self.models):
            ctx.note(ctx.step("consensus"), f"no answer from {', '.join(lost)}")
        if not answers:
            raise all_failed(results, "consensus")
        matrix = similarity_matrix([a.text for a in answers], self.embedder)
        score = agreement(matrix)
        confidence = score * len(answers) / len(self.models)
        ctx.note(ctx.step("consensus"), f"{len(answers)}/{len(self.models)} answered; agreement {score:.2f}; "
                                        f"confidence {confidence:.2f}")
        if self.synthesizer and len(answers) > 1:
            numbered = "\n\n".join(f"Answer {i + 1}:\n{a.text}" for i, a in enumerate(answers))
            prompt = (f"Question:\n{last_user_text(request)}\n\n{numbered}\n\nWrite the single best answer, "
                      "keeping what the answers agree on and resolving where they differ.")
            try:
                merged = await ctx.call(self.synthesizer, ask(request, prompt), "synthesis")
                return answer(merged.text, self.name, merged)
            except BudgetExceededError as exc:
                ctx.keep_best(exc, ctx.step("synthesis"), "most central answer instead")
        central = answers[most_central(matrix)]
        ctx.note(ctx.step("consensus"), f"most central answer: {central.model}")
        return answer(central.text, self.name, central)
