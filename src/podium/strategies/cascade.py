"""cascade: cheap models first; climb only when the answer is not good enough.

After each step an acceptance check decides whether to stop:
- ``confidence``: the model is asked to end with ``Confidence: <0..1>``; at or above ``threshold`` it stops;
- ``agreement``: the step's model answers twice and the two *final answers* must agree
  (``answers.similarity`` ≥ ``threshold``: ``B`` and ``Answer: (B)`` agree, "A whale is a fish." and
  "A whale is a mammal." do not; free text by MiniLM cosine when the cascade has an ``embedder``,
  ``semantic.py``);
- ``verifier``: a ``verifier`` model is asked whether the answer is correct; YES stops (a cascade with
  ``accept: verifier`` and no verifier is refused when it is built, and at config load); its YES/NO is
  the one check that labels the step's model for router training (``strategies.labels``);
- a user function ``(request, response) -> (accepted, reason)``, e.g. the learned acceptance that
  ``podium eval --cascade --target`` calibrates (``acceptance.load_acceptance``).
An empty answer is never accepted, whatever the check: the cascade climbs. The last model's answer is
accepted unless it is empty and an earlier step gave a non-empty one (which is returned instead); when
every step answered empty the cascade fails. The trace says why each step escalated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from podium.errors import BudgetExceededError, ConfigError, PodiumError, ProviderUnavailableError
from podium.strategies.answers import similarity
from podium.strategies.base import StrategyContext, ask, last_user_text
from podium.strategies.semantic import AnswerEmbedder, text_similarity
from podium.strategies.simple import answer, answer_of
from podium.types import ChatRequest, ChatResponse, Message

Acceptance = str | Callable[[ChatRequest, ChatResponse], tuple[bool, str]]
_CONFIDENCE = re.compile(r"\n?\s*confidence\s*[:=]\s*([01](?:\.\d+)?|\.\d+)\s*%?\s*$", re.I)
CONFIDENCE_INSTRUCTION = ("After your answer, on a last line of its own, write 'Confidence: X' where X is a number "
                          "from 0 to 1 saying how sure you are.")


def split_confidence(text: str) -> tuple[str, float | None]:
    match = _CONFIDENCE.search(text.rstrip())
    if match is None:
        return text, None
    return text[: match.start()].rstrip(), min(1.0, float(match.group(1)))


@dataclass
class Cascade:
    models: list[str]
    accept: Acceptance = "confidence"
    threshold: float = 0.7
    verifier: str | None = None
    embedder: AnswerEmbedder | None = field(default=None, repr=False)
    name: str = "cascade"

    def __post_init__(self) -> None:
        if self.accept == "verifier" and not self.verifier:
            raise ConfigError(f"cascade '{self.name}' has accept: verifier but no verifier model; name one with "
                              "verifier: <model>, or use accept: confidence or agreement")

    async def _check(self, request: ChatRequest, response: ChatResponse, model: str, step: int,
                     ctx: StrategyContext) -> tuple[bool, str, ChatResponse]:
        if answer_of(response).kind == "empty":
            return False, "empty answer", response
        if callable(self.accept):
            ok, reason = self.accept(request, response)
            return ok, reason, response
        if self.accept == "confidence":
            text, confidence = split_confidence(response.text)
            cleaned = response.model_copy(update={"text": text})
            if answer_of(cleaned).kind == "empty":
                return False, "empty answer", cleaned
            if confidence is None:
                return False, "no confidence stated", cleaned
            return confidence >= self.threshold, f"confidence {confidence:.2f} vs {self.threshold:.2f}", cleaned
        if self.accept == "agreement":
            second = await ctx.call(model, request.model_copy(update={"temperature": 0.7}), f"step {step} check")
            said = [answer_of(response), answer_of(second)]
            free_text = await text_similarity(said, self.embedder, lambda why: ctx.note(ctx.step(f"step {step}"), why))
            score = similarity(said[0], said[1], free_text)
            return score >= self.threshold, f"two answers agree {score:.2f} vs {self.threshold:.2f}", response
        if self.accept == "verifier" and self.verifier:
            prompt = (f"Question:\n{last_user_text(request)}\n\nProposed answer:\n{response.text}\n\nIs the proposed "
                      "answer correct and complete? Reply YES or NO on the first line, then one sentence why.")
            verdict = await ctx.call(self.verifier, ask(request, prompt), f"step {step} verify")
            first = verdict.text.strip().upper()
            yes = first.startswith("YES")
            if yes or re.match(r"NO\b", first):  # the only check that labels (strategies.labels); a verdict that
                ctx.label(response, "verifier", 1.0 if yes else 0.0)  # is neither escalates, unlabelled
            return yes, f"verifier said {'YES' if yes else 'NO'}: {verdict.text.strip()[:80]}", response
        return True, "accepted (no check)", response

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        best: ChatResponse | None = None
        for index, model in enumerate(self.models, start=1):
            last = index == len(self.models)
            asked = request
            if self.accept == "confidence" and not last:
                asked = request.model_copy(update={"messages": [*request.messages,
                                                                Message.user(CONFIDENCE_INSTRUCTION)]})
            try:
                response = await ctx.call(model, asked, f"step {index}")
                if last:
                    text, _ = split_confidence(response.text)
                    if answer_of(response.model_copy(update={"text": text})).kind != "empty":
                        ctx.note(ctx.step(f"step {index}"), f"{model}: last step, accepted")
                        return answer(text, self.name, response)
                    if best is None:
                        raise ProviderUnavailableError(f"{self.name}: every step's answer was empty")
                    ctx.note(ctx.step(f"step {index}"), f"{model}: last step, empty answer: returning "
                                                        f"{best.model}'s")
                    return answer(best.text, self.name, best)
                ok, reason, response = await self._check(request, response, model, index, ctx)
            except BudgetExceededError as exc:
                if best is None:
                    raise
                ctx.keep_best(exc, ctx.step(f"step {index}"), f"returning {best.model}'s answer")
                return answer(best.text, self.name, best)
            except PodiumError as exc:
                if last and best is None:
                    raise
                ctx.note(ctx.step(f"step {index}"), f"{model} failed ({exc.message[:80]}): escalate")
                if last and best is not None:
                    return answer(best.text, self.name, best)
                continue
            if reason != "empty answer":
                best = response
            ctx.note(ctx.step(f"step {index}"), f"{model}: {reason} → {'accept' if ok else 'escalate'}")
            if ok:
                return answer(response.text, self.name, response)
        if best is None:
            raise ProviderUnavailableError(f"{self.name}: every step's answer was empty")
        return answer(best.text, self.name, best)
