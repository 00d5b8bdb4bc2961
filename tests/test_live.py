"""Live calls to the real vendors, only when their keys are set (never in CI here: no network)."""

from __future__ import annotations

import os

import pytest

from podium.client import Podium
from podium.config import load_settings

LIVE = {"OPENAI_API_KEY": "gpt-4o-mini", "ANTHROPIC_API_KEY": "claude-haiku-4-5",
        "GEMINI_API_KEY": "gemini-2.5-flash-lite", "MISTRAL_API_KEY": "mistral-small",
        "DEEPSEEK_API_KEY": "deepseek-chat", "OPENROUTER_API_KEY": "openrouter/gpt-4o-mini"}


@pytest.fixture
def real_keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """conftest hides keys from every test; live tests read them from PODIUM_LIVE_<VAR> instead."""
    keys = {var: os.environ[f"PODIUM_LIVE_{var}"] for var in LIVE if os.environ.get(f"PODIUM_LIVE_{var}")}
    for var, value in keys.items():
        monkeypatch.setenv(var, value)
    return keys


@pytest.mark.parametrize("key_var", sorted(LIVE))
async def test_live_provider_answers_and_streams(key_var: str, real_keys: dict[str, str]):
    if key_var not in real_keys:
        pytest.skip(f"live test: set PODIUM_LIVE_{key_var} to call the real API")
    async with Podium(load_settings(None), ledger=None) as podium:
        response = await podium.chat("Reply with the single word: pong", model=LIVE[key_var], max_tokens=16)
        assert "pong" in response.text.lower() and response.usage.output_tokens > 0 and response.cost > 0
        stream = podium.stream("Reply with the single word: pong", model=LIVE[key_var], max_tokens=16)
        assert "pong" in "".join([c.text async for c in stream]).lower()
