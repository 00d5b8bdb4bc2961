"""The live view of a run in the terminal: which subtask, which role, what it has cost so far.

On a terminal it is a table redrawn in place (rich ``Live``); otherwise (a CI log, a pipe) one line per
event, so a log stays readable. Model-written text never reaches it: only ids, statuses and numbers.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from podium.work.contracts import ROLES, RunRecord

_ROLE_OF = {"working": "worker", "checking": "check", "reviewing": "reviewer"}


def cost_line(record: RunRecord) -> str:
    by_role = ", ".join(f"{role} ${record.costs.cost.get(role, 0.0):.4f}" for role in ROLES)
    budget = f" of ${record.budget:.2f}" if record.budget is not None else ""
    return f"${record.costs.total:.4f}{budget} ({by_role})"


def table(record: RunRecord, started: float) -> Table:
    t = Table(title=f"podium work · run {record.run_id} · {time.monotonic() - started:.0f} s · {cost_line(record)}",
              title_justify="left")
    for column in ("subtask", "status", "role now", "round", "cost"):
        t.add_column(column)
    for sub in record.subtasks.values():
        t.add_row(sub.id, sub.status, _ROLE_OF.get(sub.status, ""), str(sub.rounds or ""),
                  f"${sum(sub.cost.values()):.4f}")
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
            self.console.print(f"[{time.monotonic() - self.started:6.1f}s] {message} · {cost_line(record)}",
                               markup=False)
