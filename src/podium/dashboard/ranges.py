"""The time range a dashboard page asks for, checked: a hostile or absurd range is a 400, never a 500.

``?range=24h`` (the last 24 hours up to now; ``all`` for the whole ledger) or ``?from=EPOCH&to=EPOCH``
(seconds). Charts cut the range into at most ``MAX_BUCKETS`` buckets of a round step, so a ten-year
range costs as few points as a day.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from podium.errors import BadRequestError

PRESETS: dict[str, float] = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400,
                             "30d": 30 * 86400, "90d": 90 * 86400, "365d": 365 * 86400}
ALL = "all"
DEFAULT = "24h"
MAX_BUCKETS = 96
# Round steps for a chart's buckets, in seconds: a minute up to a year.
STEPS = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
         14 * 86400, 30 * 86400, 91 * 86400, 365 * 86400)
_LATEST = 4102444800.0  # 2100-01-01: later bounds are no one's real data


@dataclass(frozen=True)
class Span:
    """Requests started in ``[since, until)``; ``until`` None means no upper bound (as ``podium report``)."""

    since: float
    until: float | None
    label: str

    def end(self, now: float) -> float:
        return self.until if self.until is not None else now

    def step(self, start: float, now: float) -> float:
        """The bucket size for a chart from ``start`` to the range's end: the smallest round step that
        keeps it to ``MAX_BUCKETS`` buckets."""
        width = max(self.end(now) - start, 1.0)
        for step in STEPS:
            if width / step <= MAX_BUCKETS:
                return float(step)
        return float(math.ceil(width / MAX_BUCKETS))


def _epoch(value: str, name: str) -> float:
    # ASCII decimal only: ``float`` also reads '٣' as 3, and takes '1_000', 'inf' and '1e9'
    if re.fullmatch(r"[0-9]{1,12}(?:\.[0-9]{1,9})?", value.strip()) is None:
        raise BadRequestError(f"'{name}' must be a time in epoch seconds, not '{value[:40]}'")
    number = float(value)
    if not math.isfinite(number) or number < 0 or number > _LATEST:
        raise BadRequestError(f"'{name}' must be epoch seconds between 0 and {_LATEST:.0f}")
    return number


def parse_span(params: Mapping[str, str], now: float | None = None) -> Span:
    """The span of ``params`` (a query string): ``range`` or ``from``/``to``; the default is the last day."""
    now = time.time() if now is None else now
    start, stop = params.get("from"), params.get("to")
    if start is not None or stop is not None:
        if params.get("range") not in (None, "", "custom"):
            raise BadRequestError("give either 'range' or 'from'/'to', not both")
        since = _epoch(start, "from") if start else 0.0
        until = _epoch(stop, "to") if stop else None
        if until is not None and until <= since:
            raise BadRequestError("'to' must be later than 'from'")
        return Span(since, until, "custom")
    name = params.get("range") or DEFAULT
    if name == ALL:
        return Span(0.0, None, ALL)
    if name not in PRESETS:
        raise BadRequestError(f"unknown range '{name[:40]}' (one of: {', '.join([*PRESETS, ALL])}, or from/to)")
    return Span(now - PRESETS[name], None, name)
