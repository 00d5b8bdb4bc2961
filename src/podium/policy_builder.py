"""Building a request's policy at the edge: the config, the caller's key and the request itself.

The gateway knows the key (its scope, team, budgets and limits); ``Podium.chat`` called from
Python knows none and gets a policy with only the request's regions, the deadline and the fan-out
cap. Either way the policy is built here, once per request, so both doors apply the same rules.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from podium.catalogue import unknown_model_message
from podium.config import Settings
from podium.errors import BadRequestError
from podium.policy import BudgetSlot, Counters, RequestPolicy, TokenLimit
from podium.providers import ProviderRegistry
from podium.routing import preset_for, regions_for
from podium.routing.constraints import sensitivity_regions
from podium.strategies.names import KINDS, inline_members, reach
from podium.types import ChatRequest, RequestMetadata, new_request_id

ROUTED = "auto"
DASHBOARD = "dashboard"  # a scope entry naming no model: the key may read /dashboard (podium.dashboard)


class PolicyBuilder:
    def __init__(self, settings: Settings, registry: ProviderRegistry) -> None:
        self.settings, self.registry = settings, registry
        self.regions_by_sensitivity = sensitivity_regions(settings.routing.regions_by_sensitivity)
        self._scopes: dict[tuple[str, ...], tuple[frozenset[str] | None, str]] = {}

    def canonical(self, name: str) -> str | None:
        """The catalogue name of a model in any spelling the catalogue accepts (name, alias, vendor id,
        ``provider/model_id``); None when ``name`` is not one model. Scopes compare these, never spellings."""
        model = self.settings.catalogue.find(name)
        return model.name if model is not None else None

    def allows(self, models: Sequence[str] | None, requested: str | None) -> bool:
        """Whether a key with scope ``models`` may name ``requested`` (None: routed) in a request."""
        if models is None:
            return True
        name = requested or ROUTED
        if name in models:
            return True
        wanted = self.canonical(name)  # any spelling (vendor id, provider/model_id) → its catalogue name
        if wanted is None and (ambiguous := self.settings.catalogue.ambiguity(name)) is not None:
            raise BadRequestError(ambiguous, model=name[:200], code="model_ambiguous")  # not a scope question
        return wanted is not None and any(self.canonical(entry) == wanted for entry in models)

    def scope(self, models: Sequence[str] | None) -> tuple[frozenset[str] | None, str]:
        """The models calls may reach under a key scoped to ``models`` (None: any), and a note when a
        scope entry opens it to any model."""
        if models is None:
            return None, ""
        entries = tuple(models)
        cached = self._scopes.get(entries)
        if cached is not None:
            return cached
        found: set[str] = set()
        result: tuple[frozenset[str] | None, str] | None = None
        for entry in entries:
            if entry == ROUTED:
                continue
            reached = reach(entry, self.settings.strategies, self.canonical)
            if reached is None:
                result = (None, f"'{entry}' picks its models at run time, so the key reaches any model")
                break
            found |= reached
        if result is None and all(entry == ROUTED for entry in entries):
            result = (None, "the key may only ask for routing (auto), to any model")
        if result is None:  # names that reach nothing (a typo, a model since removed) open nothing: fail closed
            result = (frozenset(found), "" if found else "the key's scope names no model Podium knows")
        if len(self._scopes) < 4096:  # keys are few; bounded all the same
            self._scopes[entries] = result
        return result

    def unknown_names(self, models: Sequence[str]) -> list[str]:
        """The entries of a scope that name nothing Podium knows, each with the closest names: a key's
        scope is checked when it is made, since an unknown name would reach nothing."""
        known = [*self.settings.catalogue.names(), *self.settings.strategies]
        problems = []
        for entry in models:
            if entry in (ROUTED, DASHBOARD) or entry in self.settings.strategies or self.canonical(entry) is not None:
                continue
            kind = entry.split(":", 1)[0]
            if ":" in entry and kind in KINDS:
                members = [m for m, _ in inline_members(entry)]
                unknown = [m for m in members if m not in self.settings.strategies and self.canonical(m) is None]
                if not unknown:
                    continue
                problems.append(f"'{entry[:200]}': {unknown_model_message(unknown[0], known)}")
            else:
                problems.append(self.settings.catalogue.missing(entry, [*self.settings.strategies, ROUTED]))
        return problems

    def build(self, request: ChatRequest | None, *, request_id: str | None = None, key_id: str | None = None,
              key_name: str | None = None, team: str | None = None, models: Sequence[str] | None = None,
              budgets: Sequence[BudgetSlot] = (), token_limits: Sequence[TokenLimit] = (),
              counters: Counters | None = None, metadata: RequestMetadata | None = None) -> RequestPolicy:
        """The policy of one request; ``request`` None for an embedding request, whose sensitivity and preset
        come in ``metadata`` (the gateway reads them from the ``X-Podium-*`` headers)."""
        meta = request.metadata if request is not None else metadata or RequestMetadata()
        preset = preset_for(meta.preset, self.settings.routing.preset)
        regions, why = regions_for(meta.sensitivity, preset.name if preset else None,
                                   preset.regions if preset else None, self.regions_by_sensitivity)
        scope, note = self.scope(models)
        deadline = self.settings.resilience.deadline
        return RequestPolicy(
            request_id=request_id or new_request_id(), key_id=key_id, key_name=key_name, team=team, scope=scope,
            scope_note=note, regions=regions, region_reason=why, budgets=tuple(budgets),
            token_limits=tuple(token_limits), counters=counters,
            deadline=time.monotonic() + deadline if deadline is not None else None,
            max_calls=self.settings.routing.max_calls_per_request, cannot_run=self.registry.cannot_run)
