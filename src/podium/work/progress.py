"""The live view of a run in the terminal: which subtask, which role, what it has cost so far.

On a terminal it is a table redrawn in place (rich ``Live``); otherwise (a CI log, a pipe) one line per
event, so a log stays readable. Model-written text never reaches it: only ids, statuses and numbers. (The
runner's event messages are built from those; they are still stripped of control characters and printed
without markup, so a name that slipped through could not move the cursor, retitle the terminal or restyle it.)

Money keeps its digits: a budget of $0.0004 shows as such, not as "$0.00".
"""

from __future__ import annotations

import math
import re
import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from podium.work.contracts import ROLES, RunRecord

_ROLE_OF = {"working": "worker", "checking": "check", "reviewing": "reviewer"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")  # C0 and C1 controls: ESC, BEL, CR, LF, CSI …
MAX_DECIMALS = 12


def plain(text: str) -> str:
    """``text`` on one line with every control character (escape sequences' ESC, BEL, CR, newlines) made a
    space."""
    return _CONTROL.sub(" ", text)


def money(value: float, decimals: int = 2, significant: int = 4) -> str:
    """``$`` and ``value`` with at least ``decimals`` decimals, more when a nonzero amount needs them to show
    ``significant`` digits (trailing zeros beyond ``decimals`` dropped): $0.0004, $0.125, $2.50."""
    if not math.isfinite(value):
        return f"${value}"
    places = decimals
    if value != 0:
        places = max(decimals, min(MAX_DECIMALS, significant - 1 - math.floor(math.log10(abs(value)))))
    text = f"{value:.{places}f}"
    if places > decimals:
        whole, _, fraction = text.partition(".")
        text = f"{whole}.{fraction[:decimals]}{fraction[decimals:].rstrip('0')}"
    return f"${text}"


def _cost(value: float) -> str:
    """A cost so far: four decimals, as many more as a tiny one needs to show two digits."""
    return money(value, 4, 2)


def cost_line(record: RunRecord) -> str:
    by_role = ", ".join(f"{role} {_cost(record.costs.cost.get(role, 0.0))}" for role in ROLES)
    budget = f" of {money(record.budget)}" if record.budget is not None else ""
    return f"{_cost(record.costs.total)}{budget} ({by_role})"


def table(record: RunRecord, started: float) -> Table:
    """The live view; every cell is plain Text (no rich markup read from it)."""
    title = f"podium work · run {record.run_id} · {time.monotonic() - started:.0f} s · {cost_line(record)}"
    t = Table(title=Text(plain(title)), title_justify="left")
    for column in ("subtask", "status", "role now", "round", "cost"):
        t.add_column(column)
    for sub in record.subtasks.values():
        cells = (sub.id, sub.status, _ROLE_OF.get(sub.status, ""), str(sub.rounds or ""),
                 _cost(sum(sub.cost.values())))
        t.add_row(*(Text(plain(c)) for c in cells))
    return t


class Progress:
    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live_mode = self.stream.isatty() if live is None else live
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.started = time.monotonic()
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.live_mode:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def __call__(self, record: RunRecord, message: str) -> None:
        if self._live is not None:
            self._live.update(table(record, self.started))
        else:
            line = f"[{time.monotonic() - self.started:6.1f}s] {message} · {cost_line(record)}"
            self.console.print(Text(plain(line)))
