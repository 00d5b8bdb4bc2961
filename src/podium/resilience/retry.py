"""When to try again, and how long to wait first.

Exponential backoff with full jitter (AWS architecture blog's "full jitter": a uniform draw in
[0, base·2^attempt], capped), never shorter than a ``Retry-After`` the provider asked for, itself
capped at ``max_retry_after`` (a provider asking for an hour must not park a request for an hour;
the caller moves on to a fallback when the wait would pass the deadline). Only
transient failures are retried (``PodiumError.retryable``: rate limits, timeouts, unavailable);
everything else is either the request's fault or a reason to fail over, not to repeat.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from podium.errors import PodiumError, RateLimitedError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    jitter: bool = True
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** attempt))
        wait = self.rng.uniform(0, ceiling) if self.jitter else ceiling
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            wait = max(wait, min(error.retry_after, self.max_retry_after))
        return wait


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, PodiumError) and error.retryable
