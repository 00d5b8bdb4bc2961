"""Routing rules name a model or a strategy, and a rule that names a strategy runs it.

``routing.rules[].model`` takes what a request's ``model`` takes: a catalogue model, a strategy
named under ``strategies:``, or an inline one (``vote:a,b*2``). Scripted models answer (no network),
through the whole stack: config file, resolution, router, strategy runner, ledger, stream, CLI.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import write_config
from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError
from podium.types import RequestMetadata


def _row(model_id: str) -> dict[str, Any]:
    return {"provider": "canned", "model_id": model_id, "context_window": 8000, "input_price": 1.0,
            "output_price": 2.0, "tier": "fast", "region": "us"}


CONFIG: dict[str, Any] = {
    "providers": {"canned": {"kind": "scripted", "options": {"answers": {
        "a-1": "The answer is 42.", "b-1": "42", "c-1": "41", "d-1": "plain"}}}},
    "models": {"a": _row("a-1"), "b": _row("b-1"), "c": _row("c-1"), "d": _row("d-1")},
    "strategies": {"panel": {"type": "vote", "models": ["a", "b", "c"]}},
    "routing": {"default": "d", "rules": [
        {"task_type": "classify", "model": "panel"},
        {"task_type": "quick", "model": "vote:b*2,c"},
        {"task_type": "plain", "model": "a"},
    ]},
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, CONFIG, ledger=tmp_path / "ledger.sqlite3")


def meta(task: str) -> RequestMetadata:
    return RequestMetadata(task_type=task)


async def test_a_rule_naming_a_strategy_runs_it(config: Path, tmp_path: Path):
    async with Podium(load_settings(config)) as podium:
        named = await podium.chat("6*7?", metadata=meta("classify"))
        inline = await podium.chat("6*7?", metadata=meta("quick"))
        model = await podium.chat("6*7?", metadata=meta("plain"))
        other = await podium.chat("6*7?", metadata=meta("chat"))
    assert named.text == "The answer is 42." and named.model == "panel"
    assert named.trace.strategy == "panel" and len(named.trace.calls) == 3
    assert named.trace.decision.model == "panel" and "rule: task type 'classify'" in named.trace.decision.rationale
    assert sorted(c.model for c in inline.trace.calls) == ["b", "b", "c"] and inline.text == "42"
    assert inline.trace.strategy == "vote"
    assert (model.model, model.trace.strategy, len(model.trace.calls)) == ("a", "single", 1)
    assert (other.model, other.trace.decision.rationale) == ("d", "default model (routing.default)")
    rows = sqlite3.connect(tmp_path / "ledger.sqlite3").execute(
        "SELECT task_type, strategy, calls FROM requests ORDER BY started_at").fetchall()
    assert rows == [("classify", "panel", 3), ("quick", "vote", 3), ("plain", "single", 1), ("chat", "single", 1)]


async def test_a_rule_naming_a_strategy_runs_it_for_a_stream(config: Path):
    async with Podium(load_settings(config)) as podium:
        stream = podium.stream("6*7?", metadata=meta("classify"))
        chunks = [chunk async for chunk in stream]
    assert "".join(c.text for c in chunks) == "The answer is 42."
    assert stream.response is not None and stream.response.trace.strategy == "panel"
    assert len(stream.response.trace.calls) == 3


def test_a_rule_naming_a_strategy_runs_from_the_cli(config: Path, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "PODIUM_CONFIG"}
    result = subprocess.run([str(Path(sys.executable).with_name("podium")), "ask", "6*7?", "--task-type", "classify",
                             "--json", "--config", str(config)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["text"] == "The answer is 42." and answer["trace"]["strategy"] == "panel"


@pytest.mark.parametrize(("rule", "message"), [
    ("pannel", r"routing\.rules\[0\]\.model: Unknown model 'pannel'\. Did you mean: panel"),
    ("vote:a,zz", r"routing\.rules\[0\]\.model: in 'vote:a,zz': Unknown model 'zz'"),
    ("vote:a*x", r"routing\.rules\[0\]\.model: 'a\*x' in 'vote:a\*x': write model\*N"),
])
def test_a_rule_naming_what_does_not_exist_is_a_config_error(tmp_path: Path, rule: str, message: str):
    data = {**CONFIG, "routing": {"rules": [{"task_type": "x", "model": rule}]}}
    with pytest.raises(ConfigError, match=message):
        load_settings(write_config(tmp_path, data), env={})
