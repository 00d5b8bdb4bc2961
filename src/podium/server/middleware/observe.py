"""Prometheus counters and histograms by model and provider (the spans come from Podium itself)."""

from __future__ import annotations

import time

from podium.errors import PodiumError
from podium.server.metrics import Metrics
from podium.server.middleware.base import GatewayCall, Handler, Outcome
from podium.types import ChatResponse


class Observe:
    def __init__(self, next_handler: Handler, metrics: Metrics) -> None:
        self.next, self.metrics = next_handler, metrics

    async def __call__(self, call: GatewayCall) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = await self.next(call)
        except PodiumError as exc:
            self.metrics.failed(call.request.model, exc, time.perf_counter() - started)
            raise

        async def record(response: ChatResponse | None, error: BaseException | None) -> None:
            self.metrics.finished(response, error, time.perf_counter() - started, call.request.stream)

        call.after.append(record)
        return outcome
