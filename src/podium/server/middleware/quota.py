"""Rate limits and budgets, per key and per team, held in ``SharedState`` (memory or Redis).

    limits → one request from the RPM token buckets (the key's own, or the gateway default, and its
             team's), taken together or not at all, here at the edge; the TPM buckets go into the
             request's policy, where every model call takes its worst-case tokens and gives back
             what it did not use
    budget → the key's and the team's budget counters go into the request's policy, where every
             model call holds its worst-case cost before it is sent and settles the real cost after
             (all or nothing, atomic across instances)

Holding per call, at the choke point every call passes (``podium.policy``), is what keeps a strategy
of five calls, a fallback to a pricier model or a failed request from spending past a budget.

A budget counter that does not exist yet in the shared state — the first request of a key in this
period since the gateway started with in-memory state, or since Redis lost its data — starts from
what the ledger says the key (or team) has spent in the period, so a restart never spends a budget
twice.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping

from podium.config.schema import TeamConfig
from podium.errors import LimitExceededError
from podium.ledger import LedgerStore
from podium.policy import BudgetSlot, TokenLimit
from podium.server.keys import VirtualKey
from podium.server.middleware.base import GatewayCall, Handler, Outcome
from podium.server.state import SharedState

_PERIOD_TTL = {"day": 2 * 86_400, "month": 32 * 86_400, "total": 0}


def budget_period(period: str, now: float | None = None) -> str:
    stamp = time.gmtime(now if now is not None else time.time())
    return {"day": time.strftime("%Y-%m-%d", stamp), "month": time.strftime("%Y-%m", stamp)}.get(period, "total")


def period_start(period: str, now: float | None = None) -> float:
    """When the current budget period began (UTC), in epoch seconds; 0 for 'total'."""
    stamp = time.gmtime(now if now is not None else time.time())
    if period == "day":
        return float(calendar.timegm((stamp.tm_year, stamp.tm_mon, stamp.tm_mday, 0, 0, 0)))
    if period == "month":
        return float(calendar.timegm((stamp.tm_year, stamp.tm_mon, 1, 0, 0, 0)))
    return 0.0


def _next_period(period: str, now: float) -> float:
    """When the period after the current one begins (for 'total': never, in practice)."""
    if period == "day":
        return period_start("day", now) + 86_400
    if period == "month":
        stamp = time.gmtime(now)
        year, month = (stamp.tm_year + 1, 1) if stamp.tm_mon == 12 else (stamp.tm_year, stamp.tm_mon + 1)
        return float(calendar.timegm((year, month, 1, 0, 0, 0)))
    return float("inf")


class Quota:
    """The limits and budgets that apply to one key: its own, its team's and the gateway's defaults."""

    def __init__(self, state: SharedState, teams: Mapping[str, TeamConfig], rpm: int | None, tpm: int | None,
                 ledger: LedgerStore | None = None) -> None:
        self.state, self.teams, self.rpm, self.tpm, self.ledger = state, teams, rpm, tpm, ledger
        self._seeded: set[str] = set()  # counters this process has started from the ledger
        self._slots: dict[VirtualKey, tuple[float, list[BudgetSlot]]] = {}  # until when, and what

    def _team(self, key: VirtualKey | None) -> TeamConfig | None:
        return self.teams.get(key.team) if key is not None and key.team else None

    async def take_request(self, key: VirtualKey | None) -> None:
        """One request from every RPM bucket that applies, or a 429 naming the limit."""
        who = key.id if key else "anonymous"
        rpm = key.rpm if key and key.rpm else self.rpm
        buckets = [(f"{who}:rpm", rpm, 1.0)] if rpm else []
        team = self._team(key)
        if team is not None and team.rpm and key is not None:
            buckets.append((f"team:{key.team}:rpm", team.rpm, 1.0))
        if not buckets:
            return
        ok, wait = await self.state.take(buckets)
        if not ok:
            name = key.name if key else who
            limits = f"key '{name}': {rpm or '∞'} requests per minute"
            if team is not None and team.rpm and key is not None:
                limits += f"; team '{key.team}': {team.rpm} requests per minute"
            raise LimitExceededError(f"rate limit reached ({limits}); retry in {wait:.1f}s", retry_after=wait)

    def token_limits(self, key: VirtualKey | None) -> list[TokenLimit]:
        who = key.id if key else "anonymous"
        tpm = key.tpm if key and key.tpm else self.tpm
        limits = [TokenLimit(f"{who}:tpm", tpm, f"key '{key.name if key else who}'")] if tpm else []
        team = self._team(key)
        if team is not None and team.tpm and key is not None:
            limits.append(TokenLimit(f"team:{key.team}:tpm", team.tpm, f"team '{key.team}'"))
        return limits

    def slots(self, key: VirtualKey | None) -> list[BudgetSlot]:
        """The key's and its team's budget counters for the current periods (remembered until the next
        period begins: working out the period costs a few µs a request)."""
        if key is None:
            return []
        now = time.time()
        cached = self._slots.get(key)
        if cached is not None and now < cached[0]:
            return cached[1]
        slots = self._make_slots(key)
        if len(self._slots) >= 10_000:
            self._slots.clear()
        self._slots[key] = (min(_next_period(s.period, now) for s in slots) if slots else now + 3600.0, slots)
        return slots

    def _make_slots(self, key: VirtualKey) -> list[BudgetSlot]:
        slots = []
        if key.budget is not None:
            slots.append(BudgetSlot(f"{key.id}:{budget_period(key.budget_period)}", key.budget,
                                    _PERIOD_TTL.get(key.budget_period, 0), f"key '{key.name}'", key.budget_period,
                                    key_id=key.id, since=period_start(key.budget_period)))
        team = self._team(key)
        if team is not None and team.budget is not None:
            slots.append(BudgetSlot(f"team:{key.team}:{budget_period(team.budget_period)}", team.budget,
                                    _PERIOD_TTL[team.budget_period], f"team '{key.team}' (of key '{key.name}')",
                                    team.budget_period, team=key.team, since=period_start(team.budget_period)))
        return slots

    async def seeded_slots(self, key: VirtualKey | None) -> list[BudgetSlot]:
        """``slots(key)``, each counter started from the ledger the first time this process uses it."""
        slots = self.slots(key)
        for slot in slots:
            if slot.key in self._seeded or self.ledger is None:
                continue
            spent = await self.ledger.spent_since(slot.since, key_id=slot.key_id) if slot.key_id is not None \
                else await self.ledger.spent_since(slot.since, team=slot.team)
            await self.state.seed(slot.key, spent, slot.ttl)
            self._seeded.add(slot.key)
        return slots


class Limits:
    def __init__(self, next_handler: Handler, quota: Quota) -> None:
        self.next, self.quota = next_handler, quota

    async def __call__(self, call: GatewayCall) -> Outcome:
        await self.quota.take_request(call.key)
        call.token_limits += self.quota.token_limits(call.key)
        return await self.next(call)


class Budget:
    def __init__(self, next_handler: Handler, quota: Quota) -> None:
        self.next, self.quota = next_handler, quota

    async def __call__(self, call: GatewayCall) -> Outcome:
        call.budgets += await self.quota.seeded_slots(call.key)
        return await self.next(call)
