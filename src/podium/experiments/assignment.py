"""Which arm of an A/B experiment serves a request, and the route that arm takes.

Assignment is a pure function of the experiment's name and the request's unit (the user, or the
virtual key's id, as ``sticky`` says; the other one when it is missing): a 64-bit BLAKE2b hash of
``name NUL unit`` read as a number in [0, 1) picks the arm by its share of the weights, in the
order the config lists the arms. No state is kept, so a user stays in one arm across restarts and
on every gateway instance that loads the same config. Changing the weights moves only the users
whose number crosses a boundary. A request with neither a user nor a key is assigned per request
(its id is the unit) and the rationale says it is not sticky.

Which requests: those that name ``experiment:NAME`` as their model, and (if ``applies_to`` says so)
those of the listed task types that name no model (``only_unrouted``, the default) — the first
enabled experiment in the config's order that matches; experiments do not overlap.

The arm's route is the router's, under the request's own policy, so an arm is held to everything
any other route is: the key's scope, the regions the data may go to, what can run here, the cost
cap. An arm that may not serve the request (a scoped key and an out-of-scope arm, a confidential
request and a US arm, a strategy reaching a model outside the scope) is not tried: the request is
served by the control arm instead, recorded as ``control``, and the rationale says why it fell
back. If the control arm may not serve it either, the experiment does not apply: an unrouted
request is routed as if there were no experiment; a request that named the experiment is refused
with the reason (403). Every model call is still checked at the invoker, the one choke point, so
even a mistake here could not send data past the policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

from podium.catalogue import Catalogue
from podium.config.schema import ArmConfig, ExperimentConfig, StrategyConfig
from podium.errors import NotFoundError, PodiumError, ScopeError
from podium.experiments.checks import EXPERIMENT_PREFIX
from podium.policy import RequestPolicy
from podium.routing import Routed, Router
from podium.routing.presets import PRESETS
from podium.strategies.names import reach
from podium.types import ChatRequest

_SCALE = float(2**64)


def bucket(experiment: str, unit: str) -> float:
    """A number in [0, 1) that depends only on the experiment's name and the unit (user or key id)."""
    digest = hashlib.blake2b(f"{experiment}\x00{unit}".encode(errors="surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def pick(weights: Mapping[str, float], point: float) -> str:
    """The arm whose share of the weights (in the mapping's order) holds ``point`` in [0, 1)."""
    total = sum(weights.values())
    edge = 0.0
    last = ""
    for arm, weight in weights.items():
        edge += weight / total
        last = arm
        if point < edge:
            return arm
    return last  # rounding at the top edge


@dataclass(frozen=True)
class Assigned:
    """An experiment's decision for one request, before the route (kept apart so it can be tested)."""

    experiment: str
    arm: str
    unit: str  # what was hashed: "user", "key" or "request" (not sticky)
    point: float


class Experiments:
    """The config's experiments over one router. ``route`` returns None at once when none apply."""

    def __init__(self, experiments: Mapping[str, ExperimentConfig], router: Router, catalogue: Catalogue,
                 strategies: Mapping[str, StrategyConfig]) -> None:
        self.experiments = {name: exp for name, exp in experiments.items() if exp.enabled}
        self.disabled = frozenset(name for name, exp in experiments.items() if not exp.enabled)
        self.router, self.catalogue, self.strategies = router, catalogue, strategies
        self._by_task: dict[str | None, list[str]] = {}
        self._any_task: list[str] = []
        for name, exp in self.experiments.items():
            scope = exp.applies_to
            if scope.task_types is None:
                self._any_task.append(name)
            else:
                for task in scope.task_types:
                    self._by_task.setdefault(task, []).append(name)

    def __bool__(self) -> bool:
        return bool(self.experiments)

    # --- which experiment, which arm ----------------------------------------------------------------
    def match(self, request: ChatRequest) -> str | None:
        """The experiment the request takes part in, or None. An unknown ``experiment:NAME`` is a 404."""
        model = request.model
        if model is not None and model.startswith(EXPERIMENT_PREFIX):
            name = model[len(EXPERIMENT_PREFIX):]
            if name in self.experiments:
                return name
            state = "is disabled" if name in self.disabled else "does not exist"
            known = ", ".join(sorted(self.experiments)) or "none are configured"
            raise NotFoundError(f"experiment '{name[:100]}' {state} (experiments: {known})",
                                code="experiment_not_found")
        candidates: list[str] = [*self._by_task.get(request.metadata.task_type, []), *self._any_task]
        if not candidates:
            return None
        order: list[str] = list(self.experiments)
        for found in sorted(candidates, key=order.index):
            if model is None or not self.experiments[found].applies_to.only_unrouted:
                return found
        return None

    def assign(self, name: str, request: ChatRequest, policy: RequestPolicy) -> Assigned:
        exp = self.experiments[name]
        user, key = request.metadata.user, policy.key_id
        order = (("user", user), ("key", key)) if exp.sticky == "user" else (("key", key), ("user", user))
        for unit, value in order:
            if value:
                point = bucket(name, f"{unit}:{value}")
                return Assigned(name, pick(exp.split, point), unit, point)
        point = bucket(name, f"request:{policy.request_id}")
        return Assigned(name, pick(exp.split, point), "request", point)

    # --- the route --------------------------------------------------------------------------------
    def route(self, request: ChatRequest, policy: RequestPolicy) -> Routed | None:
        """The route of the request's arm (or control's), with the experiment and arm on its decision;
        None when no experiment applies (or neither arm may serve an unrouted request)."""
        if not self.experiments:
            return None
        name = self.match(request)
        if name is None:
            return None
        exp = self.experiments[name]
        assigned = self.assign(name, request, policy)
        tried: list[str] = []
        for arm in dict.fromkeys((assigned.arm, exp.control)):
            routed, why = self._arm_route(request, policy, exp.arms[arm])
            if routed is None:
                tried.append(f"arm '{arm}' may not serve it ({why})")
                continue
            sticky = "not sticky: no user or key" if assigned.unit == "request" else f"sticky by {assigned.unit}"
            head = f"experiment '{name}': arm '{assigned.arm}' ({sticky}, bucket {assigned.point:.4f})"
            if arm != assigned.arm:
                head += f"; {tried[0]}, so the control arm '{arm}' serves it"
            decision = routed.decision.model_copy(update={
                "experiment": name, "arm": arm, "rationale": f"{head}; {routed.decision.rationale}"})
            return replace(routed, decision=decision)
        if request.model is not None and request.model.startswith(EXPERIMENT_PREFIX):
            raise ScopeError(f"experiment '{name}': no arm may serve this request ({'; '.join(tried)})")
        return None

    def _arm_route(self, request: ChatRequest, policy: RequestPolicy,
                   arm: ArmConfig) -> tuple[Routed | None, str]:
        """The arm's route under ``policy``, or None and why it may not serve the request. A preset arm
        narrows the policy's regions to the preset's (never widens them)."""
        target = arm.model or arm.strategy
        if target is not None:
            refused = self._refusal(target, policy)
            if refused is not None:
                return None, refused
            arm_request = request.model_copy(update={"model": target})
            arm_policy = policy
        else:
            assert arm.preset is not None
            preset = PRESETS[arm.preset]
            arm_policy = policy
            if preset.regions is not None:
                regions = preset.regions if policy.regions is None else policy.regions & preset.regions
                arm_policy = replace(policy, regions=regions, region_reason=f"the {preset.name} preset of the arm")
            arm_request = request.model_copy(update={
                "model": None, "metadata": request.metadata.model_copy(update={"preset": arm.preset})})
        try:
            routed = self.router.route(arm_request, policy=arm_policy)
        except PodiumError as exc:
            return None, exc.message
        if arm_policy is not policy:  # the preset's narrower regions hold for every call of the request
            policy.regions, policy.region_reason = arm_policy.regions, arm_policy.region_reason
        return routed, ""

    def _refusal(self, target: str, policy: RequestPolicy) -> str | None:
        """Why the policy would refuse a model the arm's model or strategy calls (None: it may)."""
        reached = reach(target, self.strategies, lambda n: m.name if (m := self.catalogue.find(n)) else None)
        if reached is None:  # a strategy that picks its models at run time: the invoker checks each call
            return None
        for name in sorted(reached):
            model = self.catalogue.find(name)
            if model is None:
                return f"'{name}' is not in the catalogue"
            why = policy.permit(model)
            if why is not None:
                return why
        return None
