"""Cost through the whole stack for a remote adapter: the provider's reported usage times the catalogue's prices,
with cached input billed at the cached price."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podium.client import Podium
from podium.config import load_settings
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
async def test_cost_uses_reported_usage_and_cached_price(kind: str, tmp_path: Path):
    scenario = Scenario(input_tokens=10_000, cached_tokens=8_000, output_tokens=1_000)
    with WireServer(lambda req: WIRES[kind].handle(req, scenario)) as server:
        prefix = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta"}[kind]
        config = tmp_path / "podium.yaml"
        config.write_text(json.dumps({
            "providers": {"remote": {"kind": kind, "base_url": server.url + prefix, "api_key": "sk-x"}},
            "models": {"priced": {"provider": "remote", "model_id": "m-1", "context_window": 100_000,
                                  "input_price": 3.0, "cached_input_price": 0.3, "output_price": 15.0,
                                  "tier": "standard", "region": "us"}},
            "ledger": {"enabled": False}}))
        async with Podium(load_settings(config)) as podium:
            response = await podium.chat("hi", model="priced")
            stream = podium.stream("hi", model="priced")
            [c async for c in stream]
    expected = (2_000 * 3.0 + 8_000 * 0.3 + 1_000 * 15.0) / 1e6
    assert response.cost == pytest.approx(expected)
    assert response.usage.cached_input_tokens == 8_000
    assert stream.response is not None and stream.response.cost == pytest.approx(expected)
    assert not stream.response.trace.calls[0].usage_estimated
