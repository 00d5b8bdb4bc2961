"""How a work run's own code calls models: one budget, one deadline, one preset, every call in the ledger.

Every call of a run — the conductor's plan, each editor round, each review — is an ordinary
``Podium.chat`` with a policy built here. The policy carries the run's one budget slot (the team
``work-<run>``, the same counter the run's gateway charges agents' calls to), the run's deadline, and
the run's routing preset in the request's metadata, so the invoker (the choke point every call passes,
fallbacks and retries included) refuses what would overspend, overrun or leave the allowed regions. A
check here would be routed around by the next fallback; there it is not.

A role's models are tried in order (the first preferred, the rest fallbacks; the config's own fallbacks
and emergency table apply inside each ``chat``). Refusals that another model cannot fix — over budget,
past the deadline — end the call at once; a model the policy will not allow or that fails is passed
over and noted. The run's cost per role and its baseline (the same tokens priced at the conductor's
first model) are summed as calls finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from podium.client import Podium
from podium.errors import BudgetExceededError, PodiumError, PolicyError, TimeoutError
from podium.policy import BudgetSlot, Counters
from podium.types import ChatRequest, ChatResponse, Message, RequestMetadata
from podium.work.contracts import Role, RoleCosts, run_team
from podium.work.roles import RoleModels

Notice = Callable[[str], None]


def run_budget_slot(run_id: str, budget: float) -> BudgetSlot:
    """The run's one budget: the counter of team ``work-<run>`` (the run's gateway charges agents' calls to the
    same team, so both draw from it)."""
    team = run_team(run_id)
    return BudgetSlot(f"team:{team}:total", budget, 0, f"work package run {run_id}", "total", team=team)


async def seed_run_budget(podium: Podium, counters: Any, slot: BudgetSlot) -> None:
    """Start the run's budget counter from what the ledger says the run's team spent: a resumed run does not
    get its budget again. (``counters`` is the shared state the slot is held in: a ``MemoryState``.)"""
    if podium.ledger is not None and slot.team is not None:
        await counters.seed(slot.key, await podium.ledger.spent_since(0.0, team=slot.team), slot.ttl)


class DeadlineReached(TimeoutError):
    """The run's deadline passed: no further call is started."""


class WorkCalls:
    def __init__(self, podium: Podium, roles: RoleModels, *, run_id: str, costs: RoleCosts,
                 budget_slots: Sequence[BudgetSlot] = (), counters: Counters | None = None,
                 deadline: float | None = None, notice: Notice | None = None) -> None:
        """``deadline``: time.monotonic() by which the run ends; ``notice`` hears each fallback taken."""
        self.podium, self.roles, self.run_id, self.costs = podium, roles, run_id, costs
        self.budget_slots, self.counters, self.deadline = tuple(budget_slots), counters, deadline
        self.notice = notice or (lambda _: None)
        self.baseline = 0.0  # what the same calls would have cost on the conductor's first model
        self.baseline_known = True
        self.notes: list[str] = []
        conductor = podium.settings.catalogue.find(roles.for_role("conductor")[0])
        self._baseline_model = conductor

    @property
    def baseline_model(self) -> str | None:
        return self._baseline_model.name if self._baseline_model is not None else None

    def _order(self, role: Role, avoid_provider: str | None) -> list[str]:
        names = list(self.roles.for_role(role))
        if avoid_provider is None:
            return names
        catalogue = self.podium.settings.catalogue

        def provider(name: str) -> str | None:
            model = catalogue.find(name)
            return model.provider if model is not None else None

        return [n for n in names if provider(n) != avoid_provider] + [n for n in names if provider(n) == avoid_provider]

    def _cap(self, name: str) -> int:
        """A call's answer cap: ``work.max_output_tokens`` (or ``defaults.max_tokens``, or the model's own, if
        lower). A call holds its worst
        case in the run's budget before it is sent; without a cap that is the model's whole window."""
        settings = self.podium.settings
        cap = min(settings.work.max_output_tokens, settings.defaults.max_tokens or settings.work.max_output_tokens)
        model = self.podium.settings.catalogue.find(name)
        return min(cap, model.max_output_tokens) if model is not None and model.max_output_tokens else cap

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    async def ask(self, role: Role, messages: list[Message], *, subtask: str | None = None,
                  avoid_provider: str | None = None, max_tokens: int | None = None,
                  temperature: float | None = None) -> ChatResponse:
        tags = [f"work:{self.run_id}", f"role:{role}"] + ([f"subtask:{subtask}"] if subtask else [])
        failures: list[str] = []
        last: PodiumError | None = None
        for name in self._order(role, avoid_provider):
            left = self._left()
            if left is not None and left <= 0:
                raise DeadlineReached("the work package's deadline has passed; no further model call is made "
                                      "(raise deadline in the package or --deadline)")
            request = ChatRequest(messages=messages, model=name, max_tokens=max_tokens or self._cap(name),
                                  temperature=temperature,
                                  metadata=RequestMetadata(task_type=f"work-{role}", tags=tags,
                                                           preset=self.roles.routing_preset))
            policy = self.podium.policies.build(request, team=run_team(self.run_id), budgets=self.budget_slots,
                                                counters=self.counters)
            if self.deadline is not None:
                policy.deadline = self.deadline if policy.deadline is None else min(policy.deadline, self.deadline)
            started = time.monotonic()
            try:
                response = await self.podium.chat(request, policy=policy)
            except BudgetExceededError:
                raise  # another model spends from the same budget
            except PodiumError as exc:
                if isinstance(exc, TimeoutError) and self._left() is not None and (self._left() or 0) <= 0:
                    raise DeadlineReached("the work package's deadline passed during a model call") from exc
                kind = "refused" if isinstance(exc, PolicyError) else "failed"
                failures.append(f"{name} {kind}: {exc.message[:200]}")
                self.notice(f"{role}: {name} {kind} ({type(exc).__name__}); trying the next model")
                last = exc
                continue
            self._account(role, response, time.monotonic() - started)
            if failures:
                self.notes.append(f"{role}{f' ({subtask})' if subtask else ''}: answered by {response.model} "
                                  f"after {'; '.join(failures)}")
            return response
        assert last is not None  # a role always has at least one model
        raise last

    def _account(self, role: Role, response: ChatResponse, seconds: float) -> None:
        usage = response.usage
        self.costs.add(role, response.cost, seconds, usage.input_tokens + usage.output_tokens)
        if self._baseline_model is not None:
            self.baseline += self._baseline_model.cost_of(usage)

    def account_agent(self, cost: float, seconds: float, tokens: int, calls: int, input_tokens: int,
                      output_tokens: int) -> None:
        """An external agent's calls (made through the run's gateway), counted for the worker role."""
        self.costs.add("worker", cost, seconds, tokens, calls)
        if self._baseline_model is not None:
            self.baseline += self._baseline_model.estimated_cost(input_tokens, output_tokens)
