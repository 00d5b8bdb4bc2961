"""Personal data, secrets and prompt injection: allow, redact, block, or route to local/EU models."""

from __future__ import annotations

from podium.guardrails.policy import GuardrailPolicy
from podium.guardrails.policy import apply as apply_guardrails
from podium.server.middleware.base import GatewayCall, Handler, Outcome


class Guardrails:
    def __init__(self, next_handler: Handler, policy: GuardrailPolicy) -> None:
        self.next, self.policy = next_handler, policy

    async def __call__(self, call: GatewayCall) -> Outcome:
        call.request, notes = apply_guardrails(call.request, self.policy)
        call.notes += notes
        return await self.next(call)
