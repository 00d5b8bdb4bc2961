"""pipeline: the seeds' Orchestra pattern with its quality gate.

1. A conductor model writes a plan as JSON (validated: 1 to 8 subtasks, each with an id, a role, a
   tier and instructions). A plan that does not parse is sent back once with the error; if it
   still fails, the whole request becomes a single subtask (and the trace says so).
2. Workers run the subtasks in parallel, each on a model of its tier (``pick(tier)``).
3. A reviewer from a different provider than each worker approves or asks for changes, with
   reasons; the worker revises, at most ``max_revisions`` times.
4. The conductor assembles the approved parts into the final answer.
Observer hooks see every step, call and decision (via the context).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.errors import BadRequestError, BudgetExceededError, PodiumError
from podium.strategies.base import StrategyContext, ask, last_user_text
from podium.strategies.simple import answer
from podium.types import ChatRequest, ChatResponse

Tier = Literal["fast", "standard", "advanced"]
# (tier, provider to avoid) -> model name; given by the client from the catalogue and the router.
Picker = Callable[[str, str | None], str]
_JSON = re.compile(r"\{.*\}", re.S)


class Subtask(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=40)
    role: str = Field(default="implementer", max_length=40)
    tier: Tier = "standard"
    instructions: str = Field(min_length=1)


class Plan(BaseModel):
    model_config = ConfigDict(extra="ignore")
    subtasks: list[Subtask] = Field(min_length=1, max_length=8)


PLAN_PROMPT = """You are the conductor. Split the task below into at most {limit} independent subtasks for workers.
Reply with JSON only, in this shape:
{{"subtasks": [{{"id": "s1", "role": "implementer", "tier": "fast|standard|advanced", "instructions": "..."}}]}}

Task:
{task}"""


def parse_plan(text: str) -> Plan:
    """The first JSON object in ``text``, validated; raises ValueError with a readable reason."""
    match = _JSON.search(text)
    if match is None:
        raise ValueError("no JSON object in the reply")
    try:
        return Plan.model_validate(json.loads(match.group(0)))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at position {exc.pos}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


@dataclass
class Pipeline:
    conductor: str
    pick: Picker
    provider_of: Callable[[str], str]
    max_subtasks: int = 4
    max_revisions: int = 1
    review: bool = True
    name: str = "pipeline"

    async def _plan(self, request: ChatRequest, ctx: StrategyContext) -> Plan:
        task = last_user_text(request)
        prompt = PLAN_PROMPT.format(limit=self.max_subtasks, task=task)
        reply = await ctx.call(self.conductor, ask(request, prompt), "plan")
        for attempt in (1, 2):
            try:
                plan = parse_plan(reply.text)
                ctx.note(ctx.step("plan"), f"{len(plan.subtasks)} subtasks: "
                                           + ", ".join(f"{s.id} ({s.role}, {s.tier})" for s in plan.subtasks))
                return Plan(subtasks=plan.subtasks[: self.max_subtasks])
            except ValueError as exc:
                if attempt == 2:
                    ctx.note(ctx.step("plan"), f"plan still malformed ({exc}): one subtask with the whole request")
                    return Plan(subtasks=[Subtask(id="all", instructions=task)])
                ctx.note(ctx.step("plan"), f"malformed plan ({exc}): asking the conductor to fix it")
                reply = await ctx.call(self.conductor, ask(request, f"{prompt}\n\nYour previous reply was not valid "
                                                                    f"({exc}). Reply with the JSON only."),
                                       "plan (retry)")
        raise AssertionError("unreachable")

    async def _work(self, request: ChatRequest, subtask: Subtask, ctx: StrategyContext) -> tuple[Subtask, str]:
        worker = self.pick(subtask.tier, None)
        brief = (f"Overall task:\n{last_user_text(request)}\n\nYour subtask ({subtask.role}, {subtask.id}):\n"
                 f"{subtask.instructions}")
        result = await ctx.call(worker, ask(request, brief), f"{subtask.id}/work")
        text = result.text
        if not self.review:
            return subtask, text
        reviewer = self.pick(subtask.tier, self.provider_of(worker))
        for revision in range(self.max_revisions + 1):
            verdict = await ctx.call(reviewer, ask(request, (
                f"Review this work for the subtask below. First line: APPROVED or CHANGES. Then the reasons.\n\n"
                f"Subtask: {subtask.instructions}\n\nWork:\n{text}")), f"{subtask.id}/review {revision + 1}")
            approved = verdict.text.strip().upper().startswith("APPROVED")
            reasons = verdict.text.strip().split("\n", 1)[-1].strip()[:200]
            ctx.note(ctx.step(f"{subtask.id}/review {revision + 1}"),
                     f"{reviewer} ({self.provider_of(reviewer)}) reviewing {worker} ({self.provider_of(worker)}): "
                     f"{'approved' if approved else 'changes requested'}" + ("" if approved else f": {reasons}"))
            if approved or revision == self.max_revisions:
                if not approved:
                    ctx.note(ctx.step(subtask.id), f"revision limit ({self.max_revisions}) reached; kept last version")
                return subtask, text
            revised = await ctx.call(worker, ask(request, f"{brief}\n\nYour previous work:\n{text}\n\nThe reviewer "
                                                          f"asked for changes:\n{reasons}\n\nWrite the revised work."),
                                     f"{subtask.id}/revise {revision + 1}")
            text = revised.text
        return subtask, text

    async def run(self, request: ChatRequest, ctx: StrategyContext) -> ChatResponse:
        if not last_user_text(request).strip():
            raise BadRequestError("a pipeline plans from the text of the last user message, and this request has "
                                  "none (only images or tool calls); send the task as text", code="no_task_text")
        plan = await self._plan(request, ctx)
        outcomes = await asyncio.gather(*(self._work(request, s, ctx) for s in plan.subtasks),
                                        return_exceptions=True)
        parts: list[tuple[Subtask, str]] = []
        for subtask, outcome in zip(plan.subtasks, outcomes, strict=True):
            if isinstance(outcome, BudgetExceededError):
                ctx.keep_best(outcome, ctx.step(subtask.id), "subtask dropped")
            elif isinstance(outcome, PodiumError):
                ctx.note(ctx.step(subtask.id), f"failed: {outcome.message[:120]}")
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                parts.append(outcome)
        if not parts:
            raise next(o for o in outcomes if isinstance(o, BaseException))
        if len(parts) == 1:
            return answer(parts[0][1], self.name)
        listed = "\n\n".join(f"## {s.id} ({s.role})\n{text}" for s, text in parts)
        try:
            final: ChatResponse = await ctx.call(self.conductor, ask(request, (
                f"Task:\n{last_user_text(request)}\n\nThe workers' approved parts:\n{listed}\n\nAssemble them into "
                "one coherent final answer.")), "assemble")
        except BudgetExceededError as exc:
            ctx.keep_best(exc, ctx.step("assemble"), "parts joined as they are")
            return answer(listed, self.name)
        return answer(final.text, self.name, final)
