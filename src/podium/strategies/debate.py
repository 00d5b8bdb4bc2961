"""debate and mixture-of-agents: models that read each other's answers.

debate: M agents answer, then for up to R rounds each sees the others' latest answers and may
revise; it stops early once agreement of their final answers (``answers.similarity``) reaches
``threshold``; a synthesizer, else the most central answer, gives the result — and when no two final
answers agree (two agents still disagreeing) a judge picks one (see ``simple.Consensus``), rather than
the first agent winning by list order. Every round keeps the whole conversation: the system prompt,
the earlier turns and the question, then the agent's own previous answer (as its assistant turn) and
the others' answers (a user turn). Agents whose answer is empty take no part in the agreement.

mixture: layers of proposers, each layer shown the previous layer's answers as references, and an
aggregator writing the final answer (Wang et al., 2024): as in the paper, the references go into the
system prompt (after the caller's own) and the conversation follows unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podium.errors import BudgetExceededError
from podium.strategies.base import StrategyContext, ask, best_of, continue_with, last_user_text, with_context
from podium.strategies.semantic import AnswerEmbedder, answer_matrix
from podium.strategies.simple import JudgePicker, all_failed, answer, answer_of, answer_of_panel, failed
from podium.strategies.text import agreement
from podium.types import ChatRequest, ChatResponse


def _others(others: list[str]) -> str:
    listed = "\n\n".join(f"Agent {i + 1}: {text}" for i, text in enumerate(others))
    return (f"Other agents answered:\n{listed}\n\nConsider their reasoning and your previous answer. "
            "Give your updated answer to the question.")


@dataclass
class Debate:
    agents: list[str]
    rounds: int = 2
    threshold: float = 0.8
    synthesizer: str | None = None
    embedder: AnswerEmbedder | None = field(default=None, repr=False)
    judge: JudgePicker | None = field(default=None, repr=False)
    name: str = "debate"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        question = last_user_text(request)
        results = await ctx.gather([(a, request, f"round 1/agent {i + 1}") for i, a in enumerate(self.agents)])
        latest: dict[int, ChatResponse] = {i: r for i, r in enumerate(results) if isinstance(r, ChatResponse)}
        if not latest:
            raise all_failed(results, "debate")
        for round_no in range(1, self.rounds + 1):
            texts = [latest[i].text for i in sorted(latest) if answer_of(latest[i]).kind != "empty"]
            note = lambda why, r=round_no: ctx.note(ctx.step(f"round {r}"), why)  # noqa: E731
            score = agreement(await answer_matrix(texts, self.embedder, note)) if texts else 0.0
            ctx.note(ctx.step(f"round {round_no}"), f"{len(latest)} agents; agreement {score:.2f}")
            if score >= self.threshold or round_no == self.rounds or len(latest) < 2:
                if score >= self.threshold and round_no < self.rounds:
                    ctx.note(ctx.step(f"round {round_no}"), f"agreement ≥ {self.threshold:.2f}: stop early")
                break
            calls = [(self.agents[i], continue_with(request, latest[i].text,
                                                    _others([latest[j].text for j in latest if j != i])),
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
        final = [latest[i] for i in sorted(latest) if answer_of(latest[i]).kind != "empty"] or \
            [latest[i] for i in sorted(latest)]
        if self.synthesizer and len(final) > 1:
            listed = "\n\n".join(f"Agent {i + 1}: {r.text}" for i, r in enumerate(final))
            try:
                merged = await ctx.call(self.synthesizer, ask(request, f"Question:\n{question}\n\nAfter a debate "
                                                                       f"the agents answered:\n{listed}\n\nWrite the "
                                                                       "final answer."), "synthesis")
                return answer(merged.text, self.name, merged)
            except BudgetExceededError as exc:
                ctx.keep_best(exc, ctx.step("synthesis"), "most central answer instead")
        matrix = await answer_matrix([r.text for r in final], self.embedder,
                                     lambda why: ctx.note(ctx.step("debate"), why))
        return await answer_of_panel(request, final, matrix, self.judge, ctx, "debate", self.name)


@dataclass
class Mixture:
    layers: list[list[str]]
    aggregator: str
    name: str = "mixture"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        previous: list[ChatResponse] = []
        for depth, proposers in enumerate(self.layers, start=1):
            if previous:
                refs = "\n\n".join(f"Reference {i + 1}: {r.text}" for i, r in enumerate(previous))
                layer_request = with_context(request, "Reference answers from other models to the user's last "
                                                      f"message:\n\n{refs}\n\nUse them critically and write "
                                                      "your own best answer to the user.")
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
        prompt = (f"Responses from several models to the user's last message:\n\n{refs}\n\nSynthesise them into "
                  "one accurate, complete answer to the user. Do not mention the responses.")
        try:
            final = await ctx.call(self.aggregator, with_context(request, prompt), "aggregate")
        except BudgetExceededError as exc:
            ctx.keep_best(exc, ctx.step("aggregate"), "first proposal of the last layer instead")
            return answer(previous[0].text, self.name, previous[0])
        return answer(final.text, self.name, final)
