"""Every strategy end to end on the two local models (real llama.cpp generation, no network)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conftest import needs_local
from podium.client import Podium
from podium.config import load_settings
from podium.types import ChatRequest, Message

pytestmark = needs_local

SPECS = [
    "cascade:gemma3-270m,smollm2-135m",
    "vote:smollm2-135m,gemma3-270m,smollm2-135m",
    "consensus:smollm2-135m,gemma3-270m",
    "debate:smollm2-135m,gemma3-270m",
    "mixture:gemma3-270m,smollm2-135m,smollm2-135m",
    "pipeline:smollm2-135m",
    "fast-vote",
]


@pytest.fixture(scope="module")
def podium(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("local-strategies")
    (directory / "podium.yaml").write_text(f"ledger: {{path: {directory / 'ledger.sqlite3'}}}\n")
    client = Podium(load_settings(directory / "podium.yaml"))
    yield client
    asyncio.run(client.aclose())


@pytest.mark.parametrize("spec", SPECS)
async def test_strategy_runs_on_local_models(podium: Podium, spec: str):
    request = ChatRequest(messages=[Message.system("Answer briefly."), Message.user("What is the capital of France?")],
                          model=spec, max_tokens=12, temperature=0, seed=1)
    response = await podium.chat(request)
    trace = response.trace
    assert trace is not None and trace.strategy == spec.split(":")[0]
    assert response.text.strip()  # some answer came back
    calls = trace.calls
    assert len(calls) >= 2 and all(c.provider == "local" for c in calls)
    assert all(c.status == "ok" and c.usage.output_tokens > 0 for c in calls)
    assert response.usage.output_tokens == sum(c.usage.output_tokens for c in calls)
    assert response.cost == 0.0
    assert trace.notes  # every strategy explains its decisions


def test_cli_strategy_with_call_tree(tmp_path: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "200", "PODIUM_LEDGER": str(tmp_path / "l.sqlite3")}
    result = subprocess.run([sys.executable, "-m", "podium.cli", "ask", "--strategy", "debate", "--models",
                             "smollm2-135m,gemma3-270m", "--max-tokens", "8", "--temperature", "0", "--show-trace",
                             "Capital of France?"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "strategy debate" in result.stdout
    assert "round 1" in result.stdout and "agent 1: smollm2-135m (local) ok" in result.stdout
    assert "decisions" in result.stdout and " calls · $0.000000" in result.stdout
