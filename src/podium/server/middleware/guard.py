"""Personal data, secrets and prompt injection: allow, redact, block, or route to local/EU models.

A typical prompt is scanned inline: a few microseconds, less than a hop to a worker thread
(~50-100 µs). A request with more text (``THREAD_AT`` characters or more: one injection window) is
scanned in a worker thread, so the event loop keeps serving other requests meanwhile: the detectors
are linear and 4 MB of the worst text takes under 0.1 s, but text crafted against the injection
patterns can cost up to their budget (``injection.BUDGET``, a quarter of a second of CPU), and
inline that would be a quarter of a second of a stalled gateway. In the thread, the loop gets the
interpreter back between the strings, windows and segments of the request.
"""

from __future__ import annotations

import asyncio
import threading

from podium.guardrails.normalize import warm_up
from podium.guardrails.places import text_size
from podium.guardrails.policy import GuardrailPolicy
from podium.guardrails.policy import apply as apply_guardrails
from podium.server.middleware.base import GatewayCall, Handler, Outcome

THREAD_AT = 4096  # = injection.WINDOW: inline, at most one window's worth of pattern work


class Guardrails:
    def __init__(self, next_handler: Handler, policy: GuardrailPolicy) -> None:
        self.next, self.policy = next_handler, policy
        # the normaliser's tables, built off the event loop before the first long non-ASCII text needs them
        threading.Thread(target=warm_up, name="guardrails-warm-up", daemon=True).start()

    async def __call__(self, call: GatewayCall) -> Outcome:
        if text_size(call.request) >= THREAD_AT:
            call.request, notes = await asyncio.to_thread(apply_guardrails, call.request, self.policy)
        else:
            call.request, notes = apply_guardrails(call.request, self.policy)
        call.notes += notes
        return await self.next(call)
