"""single, vote and consensus: one model, or several answering the same question at once."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from podium.errors import BudgetExceededError, PodiumError, ProviderUnavailableError
from podium.strategies.answers import AGREE, Answer, agree, extract, similarity
from podium.strategies.base import StrategyContext, ask, last_user_text, with_context
from podium.strategies.labels import groups_of, majority
from podium.strategies.semantic import AnswerEmbedder, answer_matrix, text_similarity
from podium.strategies.text import agreement, most_central
from podium.types import ChatRequest, ChatResponse

JudgePicker = Callable[[], str]


def answer(text: str, name: str, source: ChatResponse | None = None) -> ChatResponse:
    """The strategy's own response; usage, cost and trace are filled in by the client. With a
    ``source`` it remembers whose answer it is (through nested strategies too)."""
    response = ChatResponse(text=text, tool_calls=source.tool_calls if source else None, model=name,
                            provider="podium", finish_reason=source.finish_reason if source else "stop")
    return response.served(source.served_by) if source is not None else response


def answer_of(response: ChatResponse) -> Answer:
    """The reply's final answer; a reply that only calls tools answers with its calls."""
    if response.tool_calls and not response.text.strip():
        return Answer("text", "tool calls: " + ", ".join(c.function.name for c in response.tool_calls))
    return extract(response.text)


def non_empty(responses: Sequence[ChatResponse], models: Sequence[str], ctx: StrategyContext,
              step: str) -> list[ChatResponse]:
    """The responses that give an answer; the empty ones are dropped, and the trace says whose."""
    kept = [r for r in responses if answer_of(r).kind != "empty"]
    if len(kept) < len(responses):
        who = [m for m, r in zip(models, responses, strict=True) if answer_of(r).kind == "empty"]
        ctx.note(ctx.step(step), f"empty answer from {', '.join(who)}: not counted")
    return kept


_CHOICE = re.compile(r"\b(\d+)\b")


async def judge(request: ChatRequest, candidates: Sequence[ChatResponse], model: str, ctx: StrategyContext,
                label: str = "judge") -> ChatResponse | None:
    """A judge model, shown the whole conversation and the candidates, says which candidate is right.

    It chooses, it does not rewrite: the reply's first number names a candidate; failing that, the answer
    it gives is matched against the candidates' (the one uniquely most similar).
    None when it names none (or the budget is spent)."""
    listed = "\n\n".join(f"Candidate {i + 1}:\n{c.text}" for i, c in enumerate(candidates))
    instructions = (f"Several assistants answered the user's last message and disagree:\n\n{listed}\n\n"
                    "Judge which candidate is correct. Reply with the candidate's number on the first line, "
                    "then one sentence why. Do not answer the question yourself.")
    try:
        verdict = await ctx.call(model, with_context(request, instructions), label)
    except BudgetExceededError as exc:
        ctx.keep_best(exc, ctx.step(label), "no judge")
        return None
    except PodiumError as exc:
        ctx.note(ctx.step(label), f"judge {model} failed ({exc.message[:80]})")
        return None
    first = verdict.text.strip().split("\n", 1)[0]
    if (m := _CHOICE.search(first)) and 1 <= int(m.group(1)) <= len(candidates):
        ctx.note(ctx.step(label), f"{model} chose candidate {m.group(1)}")
        return candidates[int(m.group(1)) - 1]
    said = extract(verdict.text)
    scores = [similarity(said, answer_of(c)) for c in candidates]
    best = max(scores)
    if best > 0 and scores.count(best) == 1:
        i = scores.index(best)
        ctx.note(ctx.step(label), f"{model} gave candidate {i + 1}'s answer")
        return candidates[i]
    ctx.note(ctx.step(label), f"{model} named no candidate: {first[:60]!r}")
    return None


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
    """Self-consistency: k answers (k models, or one model k times), their final answers extracted
    (``answers.extract``: ``B``, ``(B)`` and ``Answer: B`` are one vote; free text groups when its
    similarity reaches ``answers.AGREE``), majority wins. Empty answers get no vote; when every answer
    is empty the vote fails rather than return one.

    Tie-break: among the most-voted answers, the one whose first voter comes earliest in
    ``models`` (so list the model you trust most first).
    """

    models: list[str]
    timeout: float | None = None
    embedder: AnswerEmbedder | None = field(default=None, repr=False)
    name: str = "vote"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        sample = request if len(set(self.models)) == len(self.models) or request.temperature else \
            request.model_copy(update={"temperature": 0.7})  # repeats of one model need sampling to differ
        results = await ctx.gather([(m, sample, f"voter {i + 1}") for i, m in enumerate(self.models)], self.timeout)
        if lost := failed(results, self.models):
            ctx.note(ctx.step("vote"), f"no vote from {', '.join(lost)}")
        replied = [(i, r) for i, r in enumerate(results) if isinstance(r, ChatResponse)]
        if not replied:
            raise all_failed(results, "vote")
        groups: dict[str, list[int]] = {}
        keys: dict[str, Answer] = {}
        free_text = await text_similarity([answer_of(r) for _, r in replied], self.embedder,
                                          lambda why: ctx.note(ctx.step("vote"), why))
        for i, r in replied:
            said = answer_of(r)
            if said.kind == "empty":
                continue
            home = next((k for k, a in keys.items() if agree(a, said, text_similarity=free_text)), said.key)
            keys.setdefault(home, said)
            groups.setdefault(home, []).append(i)
        if empty := [self.models[i] for i, r in replied if answer_of(r).kind == "empty"]:
            ctx.note(ctx.step("vote"), f"empty answer from {', '.join(empty)}: no vote")
        if not groups:
            raise ProviderUnavailableError("vote: every voter's answer was empty")
        top = max(len(v) for v in groups.values())
        winners = [k for k, v in groups.items() if len(v) == top]
        key = min(winners, key=lambda k: groups[k][0])
        counts = ", ".join(f"{k[:30]!r} x{len(v)}" for k, v in sorted(groups.items(), key=lambda kv: -len(kv[1])))
        tie = f"; tie among {len(winners)} broken by model order" if len(winners) > 1 else ""
        voters = sum(len(v) for v in groups.values())
        if (agreed := majority(list(groups.values()), len(replied))) is not None:  # labels: strategies.labels
            for i, r in replied:
                ctx.label(r, "vote", 1.0 if i in agreed else 0.0)
        ctx.note(ctx.step("vote"), f"{counts} → {key[:40]!r} ({top}/{voters} votes{tie})")
        chosen = results[groups[key][0]]
        assert isinstance(chosen, ChatResponse)
        return answer(chosen.text, self.name, chosen)


@dataclass
class Consensus:
    """N models in parallel; the answer comes from those that returned a non-empty answer; agreement is
    measured on their final answers (``answers.similarity``).

    Synthesis: a ``synthesizer`` model merges the answers; else the most central answer is taken — but
    when no two answers agree (always so for two members that disagree) there is no centre, and a judge
    (``judge()``; by default the best advanced-tier model) picks the right one; without a judge, or when
    it names none, the first member's answer is returned and the trace says it was not agreed.
    """

    models: list[str]
    timeout: float | None = None
    synthesizer: str | None = None
    embedder: AnswerEmbedder | None = field(default=None, repr=False)
    judge: JudgePicker | None = field(default=None, repr=False)
    name: str = "consensus"

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        results = await ctx.gather([(m, request, f"member {i + 1}") for i, m in enumerate(self.models)], self.timeout)
        answered = [(m, r) for m, r in zip(self.models, results, strict=True) if isinstance(r, ChatResponse)]
        if lost := failed(results, self.models):
            ctx.note(ctx.step("consensus"), f"no answer from {', '.join(lost)}")
        if not answered:
            raise all_failed(results, "consensus")
        answers = non_empty([r for _, r in answered], [m for m, _ in answered], ctx, "consensus")
        if not answers:
            raise ProviderUnavailableError("consensus: every member's answer was empty")
        matrix = await answer_matrix([a.text for a in answers], self.embedder,
                                     lambda why: ctx.note(ctx.step("consensus"), why))
        score = agreement(matrix)
        label_panel(ctx, [r for _, r in answered], answers, matrix)
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
        return await answer_of_panel(request, answers, matrix, self.judge, ctx, "consensus", self.name)


def label_panel(ctx: StrategyContext, replied: Sequence[ChatResponse], answers: Sequence[ChatResponse],
                matrix: Sequence[Sequence[float]]) -> None:
    """A consensus's labels (``strategies.labels``): with a strict majority of the ``replied`` members on one
    answer (``matrix`` of the non-empty ``answers``, agreeing at ``AGREE``), 1.0 for its members and 0.0
    for every other reply, an empty one included; nothing without such a majority."""
    groups = groups_of(len(answers), lambda i, j: matrix[i][j] >= AGREE)
    agreed = majority(groups, len(replied))
    if agreed is None:
        return
    winners = {id(answers[i]) for i in agreed}
    for r in replied:
        ctx.label(r, "consensus", 1.0 if id(r) in winners else 0.0)


async def answer_of_panel(request: ChatRequest, answers: list[ChatResponse], matrix: Sequence[Sequence[float]],
                          pick_judge: JudgePicker | None, ctx: StrategyContext, step: str,
                          name: str) -> ChatResponse:
    """The most central answer; when no two answers agree, the one a judge picks (see ``Consensus``)."""
    n = len(answers)
    if n > 1 and all(matrix[i][j] < AGREE for i in range(n) for j in range(i + 1, n)):
        if pick_judge is None:
            ctx.note(ctx.step(step), f"no two answers agree and there is no judge: {answers[0].model}'s, "
                                     "not agreed")
            return answer(answers[0].text, name, answers[0])
        chosen = await judge(request, answers, pick_judge(), ctx)
        if chosen is not None:
            return answer(chosen.text, name, chosen)
        ctx.note(ctx.step(step), f"no two answers agree: {answers[0].model}'s, not agreed")
        return answer(answers[0].text, name, answers[0])
    central = answers[most_central(matrix)]
    ctx.note(ctx.step(step), f"most central answer: {central.model}")
    return answer(central.text, name, central)
