"""Tables that stay readable at any width: identifiers are never cut, less important columns go first.

Rich squeezes a table that is wider than the terminal by cutting every cell to ``smollm2…``: a model
name or key id a user cannot copy. Here each column says whether it holds an identifier (model,
provider, key id: shown whole) and how readily it may be left out (``drop``: 0 never, higher first).
When the columns do not fit the terminal even with text columns wrapped at word boundaries, the
least important ones are left out and a note under the table names them (``--json`` has everything).
A secondary identifier (a model's provider, a key's name) may be left out too, after the others.
Should the identifiers that remain still not fit, they wrap (fold) onto further lines: never an ellipsis.

Output that is not a terminal (a pipe, a file) has no width: rows are printed whole, one line each,
so ``grep`` and ``awk`` see every column. ``COLUMNS`` describes a terminal and is not applied there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

UNBOUNDED = 1_000_000  # the width a pipe or file is rendered at: no wrapping, no column left out
_EDGE = 1  # a table's left border
_PER_COLUMN = 3  # each column's padding (one each side) and its right border


@dataclass(frozen=True)
class Column:
    header: str
    identifier: bool = False  # shown whole: folded onto more lines at worst, never cut
    drop: int = 0  # 0: always shown; when the width is short, the highest numbers are left out first
    wrap: bool = False  # free text that may wrap at spaces
    justify: Literal["left", "right"] = "left"


def _plain(cell: str) -> str:
    return Text.from_markup(cell).plain


def _needed(column: Column, cells: Sequence[str]) -> int:
    """The narrowest this column can be without cutting anything (wrapping text at its spaces)."""
    texts = [column.header, *(_plain(cell) for cell in cells)]
    if column.wrap:
        return max(len(word) for text in texts for word in (text.split() or [""]))
    return max(len(line) for text in texts for line in (text.splitlines() or [""]))


Fit = Literal["whole", "fold-text", "fold-all"]
_FOLDED = 1  # the narrowest a folded column is given


def fit(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> tuple[list[int], Fit]:
    """Indexes of the columns to show within ``width`` (all, or without the most droppable), and how
    they fit: ``whole`` (text wrapped at spaces at most), ``fold-text`` (identifiers whole, the other
    columns folded into the room left), ``fold-all`` (the identifiers alone are wider than ``width``)."""
    keep = list(range(len(columns)))
    needed = [_needed(c, [row[i] for row in rows]) for i, c in enumerate(columns)]

    def total() -> int:
        return _EDGE + sum(needed[i] + _PER_COLUMN for i in keep)

    while total() > width:
        droppable = [i for i in keep if columns[i].drop > 0]
        if not droppable:
            break
        keep.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    # a narrow column left out on the way may fit in the room a wide one left: most important first
    for i in sorted(set(range(len(columns))) - set(keep), key=lambda i: (columns[i].drop, i)):
        if total() + needed[i] + _PER_COLUMN <= width:
            keep = sorted([*keep, i])
    if total() <= width:
        return keep, "whole"
    identifiers = _EDGE + sum((needed[i] if columns[i].identifier else _FOLDED) + _PER_COLUMN for i in keep)
    return keep, "fold-text" if identifiers <= width else "fold-all"


def table_width(console: Console) -> int:
    """The terminal's width; unbounded when the output is a pipe or a file."""
    return console.width if console.is_terminal else UNBOUNDED


def _unbounded(console: Console) -> Console:
    """A console like ``console`` (same file, colours) without a width: Rich never renders wider than
    its console, whatever ``print(width=...)`` asks."""
    return Console(file=console.file, width=UNBOUNDED, no_color=console.no_color, force_terminal=console.is_terminal,
                   highlight=False)  # colours: detected the same way as for ``console``


def build(title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]],
          width: int) -> tuple[Table, list[str]]:
    """The table for ``width`` and the headers of the columns left out."""
    shown, how = fit(columns, rows, width)
    table = Table(title=title)
    for i in shown:
        column = columns[i]
        # Rich cuts a no_wrap cell that does not fit (even with overflow="fold") and crops a table wider
        # than the terminal; it narrows only the columns that may wrap. So a column is no_wrap (and an
        # identifier held at its width) only where ``fit`` made room for it whole; the others fold
        whole = (how == "whole" and not column.wrap) or (how == "fold-text" and column.identifier)
        longest = max([len(_plain(row[i])) for row in rows] + [len(column.header)]) \
            if whole and column.identifier else None
        table.add_column(column.header, justify=column.justify, overflow="fold", min_width=longest, no_wrap=whole)
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table, [columns[i].header for i in range(len(columns)) if i not in shown]


def show(console: Console, title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
    """Print the table fitted to the console (see the module docstring), and what it left out."""
    width = table_width(console)
    table, left_out = build(title, columns, rows, width)
    (console if width < UNBOUNDED else _unbounded(console)).print(table)
    if left_out:
        console.print(f"[dim]not shown at this width: {', '.join(left_out)} (a wider terminal or --json shows "
                      "them)[/]", highlight=False)
