import asyncio
import json
from pathlib import Path

from podium.client import Podium
from podium.config import load_settings
from podium.providers import Health


async def test_probes_trip_and_close_circuits(tmp_path: Path):
    (tmp_path / "podium.yaml").write_text(json.dumps({
        "providers": {"a": {"kind": "scripted", "options": {"default": "from a"}},
                      "b": {"kind": "scripted", "options": {"default": "from b"}}},
        "models": {"m": {"provider": "a", "context_window": 1000, "input_price": 0, "output_price": 0,
                         "tier": "fast", "region": "us"}},
        "deployments": {"m": [{"provider": "a", "weight": 5}, {"provider": "b"}]},
        "resilience": {"balancing": "lowest_cost", "health_probe_interval": 0.01},
        "ledger": {"enabled": False}}))
    podium = Podium(load_settings(tmp_path / "podium.yaml"))
    a = podium.registry.get_provider("a")
    healthy = {"a": False}
    probes = asyncio.Event()

    async def a_health() -> Health:
        probes.set()
        return Health(healthy["a"], "ok" if healthy["a"] else "down")

    a.health = a_health  # type: ignore[method-assign]
    assert (await podium.chat("hi", model="m")).text == "from a"  # before any probe: a is first
    report = await podium.health()
    states = {d.id: d.state for d in report["deployments"]}
    assert states == {"m@a": "open", "m@b": "closed"} and not report["providers"]["a"].ok
    answer = await podium.chat("hi", model="m")
    assert answer.text == "from b" and len(a.calls) == 1  # type: ignore[attr-defined]
    healthy["a"] = True
    podium.start_health_probes()
    for _ in range(2):  # when the second background probe starts, the first one's result has been applied
        probes.clear()
        await asyncio.wait_for(probes.wait(), 5)
    assert podium.deployments(podium.settings.catalogue.get("m"))[0].breaker.state == "closed"
    assert (await podium.chat("hi", model="m")).text == "from a"
    await podium.aclose()
