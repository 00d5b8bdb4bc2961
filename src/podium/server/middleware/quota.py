"""Rate limits and budgets, per key and per team, held in ``SharedState`` (memory or Redis).

    limits → RPM and TPM token buckets: the key's own (or the gateway default) and its team's,
             taken together or not at all; unused TPM is given back when the real usage is known
    budget → the estimated cost is reserved in the key's and the team's period counters at once
             (all or nothing, atomic across instances), and settled to the real cost afterwards

The helpers are shared with the embeddings route, which has no chat request to route.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from podium.catalogue import count_message_tokens
from podium.config.schema import TeamConfig
from podium.errors import BudgetExceededError, PodiumError, RateLimitedError
from podium.server.keys import VirtualKey
from podium.server.middleware.base import GatewayCall, Handler, Outcome
from podium.server.state import BudgetSlot, SharedState
from podium.types import ChatResponse

_PERIOD_TTL = {"day": 2 * 86_400, "month": 32 * 86_400, "total": 0}


def budget_period(period: str, now: float | None = None) -> str:
    stamp = time.gmtime(now if now is not None else time.time())
    return {"day": time.strftime("%Y-%m-%d", stamp), "month": time.strftime("%Y-%m", stamp)}.get(period, "total")


class Quota:
    """The limits and budgets that apply to one key: its own, its team's and the gateway's defaults."""

    def __init__(self, state: SharedState, teams: Mapping[str, TeamConfig], rpm: int | None, tpm: int | None) -> None:
        self.state, self.teams, self.rpm, self.tpm = state, teams, rpm, tpm

    def _team(self, key: VirtualKey | None) -> TeamConfig | None:
        return self.teams.get(key.team) if key is not None and key.team else None

    async def take(self, key: VirtualKey | None, tokens: int) -> Callable[[int], Awaitable[None]] | None:
        """Take one request and ``tokens`` from every bucket that applies; returns the refund to call
        with the tokens really used (None when no TPM bucket applies). Raises 429 when any is empty."""
        who = key.id if key else "anonymous"
        rpm = key.rpm if key and key.rpm else self.rpm
        tpm = key.tpm if key and key.tpm else self.tpm
        buckets = ([(f"{who}:rpm", rpm, 1.0)] if rpm else []) + ([(f"{who}:tpm", tpm, float(tokens))] if tpm else [])
        team = self._team(key)
        if team is not None and key is not None:
            buckets += [(f"team:{key.team}:rpm", team.rpm, 1.0)] if team.rpm else []
            buckets += [(f"team:{key.team}:tpm", team.tpm, float(tokens))] if team.tpm else []
        if not buckets:
            return None
        ok, wait = await self.state.take(buckets)
        if not ok:
            name = key.name if key else who
            raise RateLimitedError(f"rate limit reached for key '{name}' ({rpm or '∞'} requests and {tpm or '∞'} "
                                   f"tokens per minute{self._team_limits(key, team)}); retry in {wait:.1f}s",
                                   retry_after=wait)
        token_buckets = [(k, cap) for k, cap, _ in buckets if k.endswith(":tpm")]
        if not token_buckets:
            return None

        async def refund(used: int) -> None:
            if used < tokens:
                for bucket, cap in token_buckets:
                    await self.state.give_back(bucket, cap, float(tokens - used))
        return refund

    @staticmethod
    def _team_limits(key: VirtualKey | None, team: TeamConfig | None) -> str:
        if team is None or key is None or not (team.rpm or team.tpm):
            return ""
        return f"; team '{key.team}': {team.rpm or '∞'} requests and {team.tpm or '∞'} tokens per minute"

    def slots(self, key: VirtualKey | None) -> list[BudgetSlot]:
        if key is None:
            return []
        slots = []
        if key.budget is not None:
            slots.append(BudgetSlot(f"{key.id}:{budget_period(key.budget_period)}", key.budget,
                                    _PERIOD_TTL.get(key.budget_period, 0)))
        team = self._team(key)
        if team is not None and team.budget is not None:
            slots.append(BudgetSlot(f"team:{key.team}:{budget_period(team.budget_period)}", team.budget,
                                    _PERIOD_TTL[team.budget_period]))
        return slots

    async def reserve(self, key: VirtualKey | None, amount: float,
                      slots: list[BudgetSlot] | None = None) -> Callable[[float], Awaitable[None]] | None:
        """Reserve ``amount`` dollars in the key's and its team's budgets (``slots``, if the caller has them
        already); returns the settle function to call with the real cost. Raises ``BudgetExceededError``
        naming the budget that is full."""
        slots = self.slots(key) if slots is None else slots
        if not slots or key is None:
            return None
        failed, spent = await self.state.reserve(slots, amount)
        if failed >= 0:
            slot = slots[failed]
            if slot.key.startswith("team:"):
                team = self._team(key)
                period: str = team.budget_period if team else "total"
                who = f"team '{key.team}' (of key '{key.name}')"
            else:
                period, who = key.budget_period, f"key '{key.name}'"
            raise BudgetExceededError(f"{who} has spent ${spent:.6f} of its ${slot.limit:.6f} {period} budget; "
                                      f"this request could cost up to ${amount:.6f}", code="budget_exceeded")

        async def settle(cost: float) -> None:
            for slot in slots:
                await self.state.settle(slot.key, cost - amount)
        return settle


class Limits:
    def __init__(self, next_handler: Handler, quota: Quota) -> None:
        self.next, self.quota = next_handler, quota

    async def __call__(self, call: GatewayCall) -> Outcome:
        estimate = count_message_tokens(call.request.messages) + (call.request.max_tokens or 256)
        refund = await self.quota.take(call.key, estimate)
        if refund is not None:
            async def after(response: ChatResponse | None, error: BaseException | None) -> None:
                await refund(response.usage.total_tokens if response is not None else 0)
            call.after.append(after)
        return await self.next(call)


class Budget:
    def __init__(self, next_handler: Handler, quota: Quota, route: Callable[[GatewayCall], float]) -> None:
        self.next, self.quota, self.route = next_handler, quota, route

    async def __call__(self, call: GatewayCall) -> Outcome:
        slots = self.quota.slots(call.key)
        if not slots:
            return await self.next(call)
        try:
            reserved = self.route(call)
        except PodiumError:
            reserved = 0.0  # the core will report the routing error itself
        settle = await self.quota.reserve(call.key, reserved, slots)
        if settle is not None:
            async def after(response: ChatResponse | None, error: BaseException | None) -> None:
                await settle(response.cost if response is not None else 0.0)
            call.after.append(after)
        return await self.next(call)
