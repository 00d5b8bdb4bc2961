"""debate and mixture-of-agents: models that read each other's answers.

debate: M agents answer, then for up to R rounds each sees the others' latest answers and may
revise; it stops early once agreement reaches ``threshold``; a synthesizer (or the most central
answer) gives the result. mixture: layers of proposers, each layer shown the previous layer's
answers as references, and an aggregator writing the final answer (Wang et al., 2024).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podium.errors import BudgetExceededError
from podium.strategies.base import StrategyContext, ask, best_of, last_user_text
from podium.strategies.simple import all_failed, answer, failed
from podium.strategies.text import Embedder, agreement, most_central, similarity_matrix
from podium.types import ChatRequest, ChatResponse


def _others(question: str, own: str | None, others: list[str]) -> str:
    listed = "\n\n".join(f"Agent {i + 1}: {text}" for i, text in enumerate(others))
    mine = f"\n\nYour previous answer: {own}" if own else ""
    return (f"Question:\n{question}{mine}\n\nOther agents answered:\n{listed}\n\nConsider their reasoning. "
            "Give your updated answer to the question.")


@dataclass
class Debate:
    agents: list[str]
    rounds: int = 2
    threshold: float = 0.8
    synthesizer: str | None = None
    embedder: Embedder | None = field(default=None, repr=False)
    name: str = "debate"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        question = last_user_text(request)
        results = await ctx.gather([(a, request, f"round 1/agent {i + 1}") for i, a in enumerate(self.agents)])
        latest: dict[int, ChatResponse] = {i: r for i, r in enumerate(results) if isinstance(r, ChatResponse)}
        if not latest:
            raise all_failed(results, "debate")
        for round_no in range(1, self.rounds + 1):
            texts = [latest[i].text for i in sorted(latest)]
            score = agreement(similarity_matrix(texts, self.embedder))
            ctx.note(ctx.step(f"round {round_no}"), f"{len(latest)} agents; agreement {score:.2f}")
            if score >= self.threshold or round_no == self.rounds or len(latest) < 2:
                if score >= self.threshold and round_no < self.rounds:
                    ctx.note(ctx.step(f"round {round_no}"), f"agreement ≥ {self.threshold:.2f}: stop early")
                break
            calls = [(self.agents[i], ask(request, _others(question, latest[i].text,
                                                           [latest[j].text for j in latest if j != i])),
                      f"round {round_no + 1}/agent {i + 1}") for i in sorted(latest)]
            revised = await ctx.gather(calls)
            if any(isinstance(r, BudgetExceededError) for r in revised):
                budget = next(r for r in revised if isinstance(r, BudgetExceededError))
                ctx.keep_best(budget, ctx.step(f"round {round_no + 1}"), "keeping the answers that came back")
            for (index, r) in zip(sorted(latest), revised, strict=True):
                if isinstance(r, ChatResponse):
                    latest[index] = r
            if lost := failed(revised, [self.agents[i] for i in sorted(latest)]):
                ctx.note(ctx.step(f"round {round_no + 1}"), f"kept previous answers of {', '.join(lost)}")
        final = [latest[i] for i in sorted(latest)]
        if self.synthesizer and len(final) > 1:
            listed = "\n\n".join(f"Agent {i + 1}: {r.text}" for i, r in enumerate(final))
            try:
                merged = await ctx.call(self.synthesizer, ask(request, f"Question:\n{question}\n\nAfter a debate "
                                                                       f"the agents answered:\n{listed}\n\nWrite the "
                                                                       "final answer."), "synthesis")
                return answer(merged.text, self.name, merged)
            except BudgetExceededError as exc:
                ctx.keep_best(exc, ctx.step("synthesis"), "most central answer instead")
        chosen = final[most_central(similarity_matrix([r.text for r in final], self.embedder))]
        return answer(chosen.text, self.name, chosen)


@dataclass
class Mixture:
    layers: list[list[str]]
    aggregator: str
    name: str = "mixture"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        question = last_user_text(request)
        previous: list[ChatResponse] = []
        for depth, proposers in enumerate(self.layers, start=1):
            if previous:
                refs = "\n\n".join(f"Reference {i + 1}: {r.text}" for i, r in enumerate(previous))
                layer_request = ask(request, f"Question:\n{question}\n\nReference answers from other models:\n"
                                             f"{refs}\n\nUse them critically and write your own best answer.")
            else:
                layer_request = request
            results = await ctx.gather([(m, layer_request, f"layer {depth}/proposer {i + 1}")
                                        for i, m in enumerate(proposers)])
            answers = best_of(results)
            if lost := failed(results, proposers):
                ctx.note(ctx.step(f"layer {depth}"), f"no proposal from {', '.join(lost)}")
            if not answers:
                if previous:
                    break
                raise all_failed(results, "mixture")
            previous = answers
            ctx.note(ctx.step(f"layer {depth}"), f"{len(answers)}/{len(proposers)} proposals"
                                                 + (" (shown the previous layer's answers)" if depth > 1 else ""))
        ctx.note(ctx.step("aggregate"), f"{self.aggregator} aggregates {len(previous)} answers")
        refs = "\n\n".join(f"Response {i + 1}: {r.text}" for i, r in enumerate(previous))
        prompt = (f"Question:\n{question}\n\nResponses from several models:\n{refs}\n\nSynthesise them into one "
                  "accurate, complete answer. Do not mention the responses.")
        try:
            final = await ctx.call(self.aggregator, ask(request, prompt), "aggregate")
        except BudgetExceededError as exc:
            ctx.keep_best(exc, ctx.step("aggregate"), "first proposal of the last layer instead")
            return answer(previous[0].text, self.name, previous[0])
        return answer(final.text, self.name, final)
