import asyncio

import pytest

from podium.catalogue import bundled_catalogue
from podium.errors import NotFoundError
from podium.providers import Health, ProviderRegistry
from podium.providers.scripted import ScriptedProvider


class _Named(ScriptedProvider):
    def __init__(self, name: str, health: Health | None = None, gate: asyncio.Event | None = None,
                 started: asyncio.Event | None = None, raises: bool = False) -> None:
        super().__init__(name)
        self._health, self._gate, self._started, self._raises = health, gate, started, raises

    async def health(self) -> Health:
        if self._started:
            self._started.set()
        if self._gate:
            await self._gate.wait()
        if self._raises:
            raise RuntimeError("probe exploded")
        return self._health or Health(True, "ok")


def registry(*names: str) -> ProviderRegistry:
    return ProviderRegistry(bundled_catalogue(), [_Named(n) for n in names])


def test_list_models_only_from_registered_providers_and_filters_combine():
    reg = registry("openai", "anthropic", "mistral", "local")
    assert {m.provider for m in reg.list_models()} == {"openai", "anthropic", "mistral", "local"}
    code_advanced = reg.list_models(capability="code", tier="advanced")
    assert code_advanced and all(m.has("code") and m.tier == "advanced" for m in code_advanced)
    eu = reg.list_models(region="eu")
    assert eu and {m.provider for m in eu} == {"mistral"}
    assert {m.region for m in reg.list_models(region=["eu", "local"])} == {"eu", "local"}
    big = reg.list_models(min_context=1_000_000)
    assert big and all(m.context_window >= 1_000_000 for m in big)
    cheap = reg.list_models(max_cost=0.5)
    assert cheap and all(m.blended_price <= 0.5 for m in cheap)
    assert reg.list_models(provider="gemini") == []
    assert reg.list_models(provider="gemini", include_unavailable=True)


def test_cheapest_and_best_model():
    reg = registry("openai", "anthropic", "local")
    planners = reg.list_models(capability="planning")
    cheapest = reg.find_cheapest_model(capability="planning")
    assert cheapest.name == "gpt-5"  # (3 x 1.25 + 10) / 4 = 3.44 beats o3's (3 x 2 + 8) / 4 = 3.5
    assert cheapest.blended_price == min(m.blended_price for m in planners)
    assert reg.find_cheapest_model().local  # free local models are cheapest of all
    best = reg.find_best_model(capability="code")
    assert best.tier == "advanced"
    assert best.blended_price == min(m.blended_price for m in reg.list_models("code", tier="advanced"))
    assert reg.find_best_model(prefer_local=True).provider == "local"
    assert reg.find_best_model(capability="vision", prefer_local=True).provider != "local"  # none local: falls back
    assert reg.find_cheapest_model(capability="no-such-capability") is None


def test_get_provider_explains_how_to_enable():
    with pytest.raises(NotFoundError, match="set its key"):
        registry("local").get_provider("openai")


async def test_check_availability_runs_concurrently_and_survives_failures():
    gate, started_a, started_b = asyncio.Event(), asyncio.Event(), asyncio.Event()
    reg = ProviderRegistry(bundled_catalogue(), [
        _Named("a", gate=gate, started=started_a),
        _Named("b", gate=gate, started=started_b, health=Health(False, "down")),
        _Named("c", raises=True),
    ])
    task = asyncio.create_task(reg.check_availability(timeout=5))
    # both probes are in flight at the same time before either may finish: proof of concurrency
    await asyncio.wait_for(asyncio.gather(started_a.wait(), started_b.wait()), 2)
    gate.set()
    result = await task
    assert result["a"].ok and not result["b"].ok
    assert not result["c"].ok and "probe exploded" in result["c"].detail


async def test_a_hung_provider_costs_the_timeout_once():
    reg = ProviderRegistry(bundled_catalogue(), [_Named("hung", gate=asyncio.Event()), _Named("fine")])
    result = await reg.check_availability(timeout=0.05)
    assert not result["hung"].ok and "no answer" in result["hung"].detail
    assert result["fine"].ok


def test_summary_counts():
    summary = registry("openai", "local").summary()
    assert summary["providers"] == ["local", "openai"]
    assert summary["total_models"] == sum(summary["models_per_provider"].values())
    assert summary["local_models"] == 4  # two chat models and the two embedding ones
    assert summary["best"] is not None
