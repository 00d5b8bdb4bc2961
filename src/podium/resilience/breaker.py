"""A circuit breaker per deployment: stop calling what is down, and find out when it is back.

    closed ──(``failures`` in a row)──▶ open ──(``cooldown`` elapsed)──▶ half-open
       ▲                                  ▲                                 │
       └────────(probe succeeds)──────────┼───────(probe fails)─────────────┘

While open, calls are refused without touching the network, so a dead primary costs nothing
instead of a timeout. Half-open admits ``probes`` calls at a time; one success closes the circuit.
Only failures that say something about the deployment count (timeouts, 5xx, refused connections,
rate limits); a bad request is the caller's fault and leaves the breaker alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass
class CircuitBreaker:
    failures: int = 5
    cooldown: float = 30.0
    probes: int = 1
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _state: State = "closed"
    _consecutive: int = 0
    _opened_at: float = 0.0
    _probes_in_flight: int = 0
    opened_count: int = 0

    @property
    def state(self) -> State:
        if self._state == "open" and self.clock() - self._opened_at >= self.cooldown:
            self._state = "half-open"
            self._probes_in_flight = 0
        return self._state

    def allow(self) -> bool:
        """Whether a call may go through now; in half-open this reserves a probe slot."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and self._probes_in_flight < self.probes:
            self._probes_in_flight += 1
            return True
        return False

    def record_success(self) -> None:
        self._state = "closed"
        self._consecutive = 0
        self._probes_in_flight = 0

    def release(self) -> None:
        """An admitted call ended without a verdict on the deployment (the request's own fault, a policy
        refusal, a cancelled caller): free its half-open probe slot, so the next call can probe."""
        if self._probes_in_flight > 0:
            self._probes_in_flight -= 1

    def record_failure(self) -> None:
        if self.state == "half-open":
            self._open()
            return
        self._consecutive += 1
        if self._consecutive >= self.failures:
            self._open()

    def trip(self) -> None:
        """Open now, without waiting for failures: a health probe saw the deployment down."""
        if self.state != "open":
            self._open()

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self.clock()
        self._consecutive = 0
        self._probes_in_flight = 0
        self.opened_count += 1

    def retry_in(self) -> float:
        """Seconds until an open circuit admits a probe (0 when it would admit one now)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.cooldown - (self.clock() - self._opened_at))
