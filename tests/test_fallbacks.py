"""Fallback chains through the whole client, with scripted providers (the logic, not the network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from podium import errors
from podium.client import Podium
from podium.config import load_settings
from podium.providers.scripted import Step


def row(provider: str, model_id: str, **fields: Any) -> dict[str, Any]:
    return {"provider": provider, "model_id": model_id, "context_window": fields.pop("context_window", 8000),
            "input_price": fields.pop("input_price", 1.0), "output_price": 1.0, "tier": fields.pop("tier", "fast"),
            "region": fields.pop("region", "us"), **fields}


def podium_with(tmp_path: Path, resilience: dict[str, Any] | None = None, **extra: Any) -> Podium:
    config = {
        "providers": {"us-a": {"kind": "scripted", "region": "us"}, "us-b": {"kind": "scripted", "region": "us"},
                      "eu-c": {"kind": "scripted", "region": "eu"},
                      "local": {"kind": "scripted", "options": {"answers": {"smollm2-135m-instruct": "local"}}}},
        "models": {"small": row("us-a", "small"), "big": row("us-a", "big", context_window=200_000, input_price=3),
                   "other": row("us-b", "other"), "eu": row("eu-c", "eu", region="eu")},
        "resilience": {"retries": {"max_attempts": 1}, **(resilience or {})},
        "ledger": {"enabled": False}, **extra,
    }
    (tmp_path / "podium.yaml").write_text(json.dumps(config))
    podium = Podium(load_settings(tmp_path / "podium.yaml"))
    for name, answer in (("us-a", None), ("us-b", "from other"), ("eu-c", "from eu")):
        provider = podium.registry.get_provider(name)
        if answer:
            provider._default = Step(text=answer)  # type: ignore[attr-defined]
    podium.registry.get_provider("us-a").set_script("big", "from big")  # type: ignore[attr-defined]
    return podium


def fail(podium: Podium, model_id: str, error: errors.PodiumError) -> None:
    podium.registry.get_provider("us-a").set_script(model_id, Step(error=error))  # type: ignore[attr-defined]


async def test_configured_chain_on_unavailable(tmp_path: Path):
    podium = podium_with(tmp_path, {"fallbacks": [{"model": "small", "to": ["other"]}]})
    fail(podium, "small", errors.ProviderUnavailableError("down"))
    response = await podium.chat("hi", model="small")
    assert response.text == "from other"
    assert any(n.startswith("fallback → other: unavailable on small → configured fallback")
               for n in response.trace.notes)
    await podium.aclose()


async def test_chain_only_on_listed_errors(tmp_path: Path):
    podium = podium_with(tmp_path, {"fallbacks": [{"model": "small", "to": ["other"], "on": ["timeout"]}]})
    fail(podium, "small", errors.ProviderUnavailableError("down"))
    with pytest.raises(errors.ProviderUnavailableError):
        await podium.chat("hi", model="small")
    await podium.aclose()


async def test_context_too_long_goes_to_a_larger_window(tmp_path: Path):
    podium = podium_with(tmp_path)
    fail(podium, "small", errors.ContextTooLongError("too long"))
    response = await podium.chat("hi", model="small")
    assert response.text == "from big"
    assert any("context too long for small (8,000 tokens) → 200,000-token window" in n for n in response.trace.notes)
    await podium.aclose()


async def test_content_filtered_goes_to_another_provider(tmp_path: Path):
    podium = podium_with(tmp_path)
    fail(podium, "small", errors.ContentFilteredError("blocked"))
    response = await podium.chat("hi", model="small")
    assert response.provider != "us-a"
    assert any("us-a filtered the content → another provider" in n for n in response.trace.notes)
    await podium.aclose()


async def test_emergency_table_when_a_provider_is_down(tmp_path: Path):
    podium = podium_with(tmp_path, {"emergency": [{"provider": "us-a", "to": ["eu"]}]})
    fail(podium, "small", errors.ProviderUnavailableError("down"))
    response = await podium.chat("hi", model="small")
    assert response.text == "from eu" and any("emergency table" in n for n in response.trace.notes)
    await podium.aclose()


async def test_fallbacks_respect_the_privacy_constraint(tmp_path: Path):
    podium = podium_with(tmp_path, {"fallbacks": [{"model": "eu", "to": ["other", "small"]}]})
    podium.registry.get_provider("eu-c").set_script("eu", Step(error=errors.ProviderUnavailableError("down")))  # type: ignore[attr-defined]
    with pytest.raises(errors.ProviderUnavailableError):  # US fallbacks exist but confidential data may not go there
        await podium.chat("hi", model="eu", metadata={"sensitivity": "confidential"})
    await podium.aclose()


async def test_preset_last_resort_is_the_local_model(tmp_path: Path):
    podium = podium_with(tmp_path, routing={"preset": "production"})
    fail(podium, "small", errors.ProviderUnavailableError("down"))
    response = await podium.chat("hi", model="small")
    assert response.text == "local" and response.model == "smollm2-135m"
    assert any("last resort" in n for n in response.trace.notes)
    await podium.aclose()


async def test_a_bad_request_is_not_retried_or_failed_over(tmp_path: Path):
    podium = podium_with(tmp_path, {"fallbacks": [{"model": "small", "to": ["other"]}], "retries": {"max_attempts": 3}})
    fail(podium, "small", errors.BadRequestError("invalid 'temperature'"))
    with pytest.raises(errors.BadRequestError):
        await podium.chat("hi", model="small")
    assert len(podium.registry.get_provider("us-a").calls) == 1  # type: ignore[attr-defined]
    assert podium.registry.get_provider("us-b").calls == []  # type: ignore[attr-defined]
    await podium.aclose()
