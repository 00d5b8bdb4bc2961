"""CLI tables keep identifiers whole: in a narrow terminal less important columns are left out
(and named), piped output has every column of a row on one line. Never ``smollm2…``.

The commands run as a user runs them (``.venv/bin/podium``): in a real pseudo-terminal of 40
columns (``COLUMNS=40``), and with stdout a pipe.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from podium.cli.tables import Column, build, fit

PODIUM = Path(sys.executable).with_name("podium")
LONG = "an-uncommonly-long-model-name-v2"  # 32 characters: wider than a 40-column table leaves a column
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _row(model_id: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "canned-provider-eu", "model_id": model_id, "context_window": 128000, "input_price": 1.25,
            "output_price": 10.0, "tier": "standard", "region": "eu",
            "capabilities": ["chat", "code", "analysis", "long-context"], **extra}


CONFIG: dict[str, Any] = {
    "providers": {"canned-provider-eu": {"kind": "scripted", "region": "eu",
                                         "options": {"default": "Paris"}}},
    "models": {LONG: _row("long-1"), "short": _row("short-1", tier="fast", input_price=0.1, output_price=0.2)},
    "routing": {"default": "short"},
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data = {**CONFIG, "ledger": {"path": str(tmp_path / "ledger.sqlite3")}}
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "LINES", "PODIUM_CONFIG"}
           and not k.endswith("_API_KEY")}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg"), NO_COLOR="1", **extra)
    return env


def in_terminal(tmp_path: Path, *args: str, columns: int = 40) -> str:
    """What the command shows in a terminal ``columns`` wide (a real pseudo-terminal)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(PODIUM), *args], stdout=follower, stderr=follower, stdin=subprocess.DEVNULL,
                               cwd=tmp_path, env=_env(tmp_path, COLUMNS=str(columns), TERM="xterm"))
    os.close(follower)
    output = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not data:
            break
        output += data
    os.close(leader)
    assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    return _ANSI.sub("", output.decode()).replace("\r\n", "\n")


def piped(tmp_path: Path, *args: str, **env: str) -> str:
    result = subprocess.run([str(PODIUM), *args], cwd=tmp_path, env=_env(tmp_path, **env), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _table_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("│", "┃"))]


def _first_column(output: str) -> str:
    """The first column's cells joined: an identifier folded onto several lines reads whole here."""
    return "".join(line.split("│")[1].strip() for line in output.splitlines() if line.startswith("│"))


def test_a_narrow_terminal_keeps_model_names_whole_and_names_what_it_left_out(config: Path, tmp_path: Path):
    output = in_terminal(tmp_path, "models", "--all", "--config", str(config))
    rows = _table_lines(output)
    assert any(LONG in line for line in rows), output
    assert "…" not in "\n".join(rows)
    assert all(len(line) <= 40 for line in output.splitlines()), output
    # the name takes 36 of the 40 columns: everything else (the provider last) is left out, and named
    assert "not shown at this width: provider, tier, region, context, $/M in, $/M out, capabilities" in \
        " ".join(output.split())
    wider = in_terminal(tmp_path, "models", "--all", "--config", str(config), columns=60)
    rows = _table_lines(wider)
    assert any(LONG in line and "canned-provider-eu" in line for line in rows), wider
    assert "…" not in "\n".join(rows) and "not shown at this width: tier" in " ".join(wider.split())


def test_piped_output_has_every_column_of_a_row_on_its_line(config: Path, tmp_path: Path):
    for env in ({}, {"COLUMNS": "40"}):  # a pipe has no width, whatever COLUMNS says
        output = piped(tmp_path, "models", "--all", "--config", str(config), **env)
        line = next(line for line in output.splitlines() if LONG in line)
        for cell in ("canned-provider-eu", "standard", "128,000", "1.25", "10", "analysis, chat, code, long-context"):
            assert cell in line, line
        assert "…" not in output and "not shown" not in output


def test_report_and_providers_check_keep_identifiers_whole(config: Path, tmp_path: Path):
    piped(tmp_path, "ask", "hi", "--model", LONG, "--config", str(config))
    report = in_terminal(tmp_path, "report", "--config", str(config))
    # calls and cost are never left out: the 32-character name folds onto two lines, every character kept
    assert LONG in _first_column(report), report
    assert all(len(line) <= 40 for line in report.splitlines()), report
    providers = in_terminal(tmp_path, "providers", "check", "--config", str(config))
    assert any("canned-provider-eu" in line for line in _table_lines(providers)), providers
    assert "…" not in "\n".join(_table_lines(report) + _table_lines(providers))


def test_keys_list_keeps_the_key_id_whole(config: Path, tmp_path: Path):
    created = piped(tmp_path, "keys", "create", "a-team-with-a-long-name", "--models", LONG, "--config", str(config))
    key_id = re.search(r"created (key_\w+)", created)
    assert key_id is not None, created
    listing = in_terminal(tmp_path, "keys", "list", "--config", str(config))
    rows = _table_lines(listing)
    assert any(key_id.group(1) in line for line in rows), listing
    # the key's name is whole, or left out (and named) when the id leaves no room for it
    assert any("a-team-with-a-long-name" in line for line in rows) or "shown at this width: name" in listing
    assert "…" not in "\n".join(rows).replace(key_id.group(1)[:8] + "…", "")  # the secret's prefix is "…"-marked


def test_fitting_leaves_out_the_most_droppable_first_and_refills_room():
    columns = [Column("name", identifier=True), Column("tier", drop=1), Column("notes", drop=3, wrap=True),
               Column("price", drop=2)]
    rows = [["a-long-identifier-name", "standard", "some words here", "1.25"]]
    assert fit(columns, rows, 200) == ([0, 1, 2, 3], "whole")
    # 1 + (22+3) + (8+3) + (5+3) + (5+3) = 53: notes (wrapped at its longest word, 5) goes first
    assert fit(columns, rows, 50) == ([0, 1, 3], "whole")
    # down to the name (26), then the narrow price comes back into the room tier's leaving made (34)
    assert fit(columns, rows, 34) == ([0, 3], "whole")
    assert fit(columns, rows, 26) == ([0], "whole")
    assert fit(columns, rows, 20) == ([0], "fold-all")  # the identifier alone is wider: it folds, is not cut
    essential = [Column("name", identifier=True), Column("state"), Column("detail", wrap=True)]
    long_words = [["a-long-identifier-name", "on", "supercalifragilistic expialidocious"]]
    assert fit(essential, long_words, 40) == ([0, 1, 2], "fold-text")  # the name whole, the detail folded
    table, left_out = build("t", columns, rows, 20)
    assert left_out == ["tier", "notes", "price"] and [c.header for c in table.columns] == ["name"]
