"""The live progress view: money shown with enough digits, and nothing but ids, statuses and numbers —
no control characters or rich markup — reaching the terminal (security review, issue 14)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium.work.contracts import RunRecord, SubtaskRecord
from podium.work.progress import Progress, cost_line, money, table


def record(budget: float | None = None, **subtasks: str) -> RunRecord:
    r = RunRecord(run_id="20260101-000000-abcd", package="p.md", repo="/r", base="abc", integration_branch="b",
                  preset="production", worker="editor", max_parallel=2, started_at=0.0, budget=budget)
    for sid, status in subtasks.items():
        r.subtasks[sid] = SubtaskRecord(id=sid, status=status)  # type: ignore[arg-type]
    return r


@pytest.mark.parametrize(("value", "shown"), [
    (0.0004, "$0.0004"), (0.00045678, "$0.0004568"), (1.0, "$1.00"), (2.5, "$2.50"), (0.125, "$0.125"),
    (0.05, "$0.05"), (12.0, "$12.00"), (0.0, "$0.00"),
])
def test_a_budget_shows_with_its_digits(value: float, shown: str) -> None:
    assert money(value) == shown
    assert f"of {shown} " in cost_line(record(budget=value))


def test_costs_keep_four_decimals_and_show_tiny_ones() -> None:
    assert money(0.012345, 4, 2) == "$0.0123"
    assert money(0.000012, 4, 2) == "$0.000012"
    assert money(0.0, 4, 2) == "$0.0000"
    r = record(budget=1.0)
    r.costs.add("worker", 0.00003, 1.0, 10)
    assert cost_line(r).startswith("$0.00003 of $1.00 (")
    assert "worker $0.00003" in cost_line(r)


@given(st.floats(min_value=1e-9, max_value=1e6))
def test_a_positive_amount_never_shows_as_zero(value: float) -> None:
    assert money(value).strip("$0.") != ""
    assert money(value, 4, 2).strip("$0.") != ""


def test_the_line_view_prints_no_control_characters_or_markup() -> None:
    out = io.StringIO()
    with Progress(out, live=False) as progress:
        progress(record(1.0, a="working"), "a: \x1b]0;TITLE\x07worker [bold red]round\x1b[2J 1\r\nsecond line")
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "[bold red]round" in text and text.count("\n") == 1


def test_the_table_shows_markup_as_text() -> None:
    console_out = io.StringIO()
    from rich.console import Console

    Console(file=console_out, width=200).print(table(record(1.0, a="working"), 0.0))
    shown = console_out.getvalue()
    assert "$1.00" in shown and "worker" in shown
