"""What each attempt's outcome does to its deployment, and what the request is billed (issue 10, part 5):
probe slots freed on every outcome, no backoff when another deployment can answer, Retry-After
capped and never waited past the deadline, cut streams and rejected upstream keys counted."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from podium import errors
from podium.client import Podium
from podium.config import load_settings
from podium.providers.scripted import ScriptedProvider, Step


def make(tmp_path: Path, **resilience: Any) -> Podium:
    row = {"context_window": 8000, "input_price": 1.0, "output_price": 1.0, "tier": "fast", "region": "us"}
    config = {
        "providers": {"a": {"kind": "scripted", "options": {"default": "from a"}},
                      "b": {"kind": "scripted", "options": {"default": "from b"}},
                      "local": {"enabled": False}},
        "models": {"m": {"provider": "a", "model_id": "m", **row},
                   "spare": {"provider": "b", "model_id": "spare", **row}},
        "deployments": {"m": [{"provider": "a"}, {"provider": "b"}]},
        "resilience": {"retries": {"max_attempts": 3, "base_delay": 0.0, "max_delay": 0.0},
                       "balancing": "round_robin", **resilience},
        "ledger": {"enabled": False},
    }
    (tmp_path / "podium.yaml").write_text(json.dumps(config))
    return Podium(load_settings(tmp_path / "podium.yaml"))


def scripted(podium: Podium, name: str) -> ScriptedProvider:
    found = podium.registry.get_provider(name)
    assert isinstance(found, ScriptedProvider)
    return found


def deployment(podium: Podium, ident: str) -> Any:
    deps = podium.deployments(podium.settings.catalogue.get("m"))
    return next(d for d in deps if d.id == ident)


async def test_a_half_open_probe_is_freed_by_a_request_fault_and_by_a_cancellation(tmp_path: Path):
    podium = make(tmp_path, breaker={"failures": 1, "cooldown": 0.05, "probes": 1},
                  retries={"max_attempts": 1})
    a = deployment(podium, "m@a")
    scripted(podium, "a").set_script("m", Step(error=errors.ProviderUnavailableError("down")))
    scripted(podium, "b").set_script("m", Step(error=errors.ProviderUnavailableError("down")))
    for _ in range(2):
        with pytest.raises(errors.ProviderUnavailableError):
            await podium.chat("hi", model="m")
    assert a.breaker.state == "open"
    await asyncio.sleep(0.06)
    scripted(podium, "a").set_script("m", Step(error=errors.BadRequestError("your fault")))
    scripted(podium, "b").set_script("m", Step(error=errors.BadRequestError("your fault")))
    with pytest.raises(errors.BadRequestError):
        await podium.chat("hi", model="m")  # the probe saw no verdict on the deployment
    scripted(podium, "a").set_script("m", Step(text="slow", latency=5))
    scripted(podium, "b").set_script("m", Step(text="slow", latency=5))
    task = asyncio.create_task(podium.chat("hi", model="m"))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    scripted(podium, "a").set_script("m", "back")
    scripted(podium, "b").set_script("m", "back")
    assert (await podium.chat("hi", model="m")).text == "back"  # a probe slot was free: the circuit closes
    assert a.breaker.state == "closed" or deployment(podium, "m@b").breaker.state == "closed"
    await podium.aclose()


async def test_a_rate_limited_deployment_does_not_delay_the_healthy_one(tmp_path: Path):
    podium = make(tmp_path)
    scripted(podium, "a").set_script("m", Step(error=errors.RateLimitedError("slow down", retry_after=20)))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    podium.caller.sleep = sleep
    for _ in range(4):
        assert (await podium.chat("hi", model="m")).text == "from b"
    assert slept == []
    await podium.aclose()


async def test_retry_after_is_capped_and_never_waited_past_the_deadline(tmp_path: Path):
    podium = make(tmp_path, retries={"max_attempts": 2, "base_delay": 0.0, "max_delay": 0.0, "max_retry_after": 0.05})
    podium.settings.deployments.pop("m")
    scripted(podium, "a").set_script("m", [Step(error=errors.RateLimitedError("slow", retry_after=3600)), "ok"])
    started = time.monotonic()
    assert (await podium.chat("hi", model="m")).text == "ok"
    assert time.monotonic() - started < 1.0  # waited the cap, not an hour
    await podium.aclose()

    (tmp_path / "late").mkdir()
    late = make(tmp_path / "late", deadline=0.5,
                retries={"max_attempts": 3, "max_retry_after": 60},
                fallbacks=[{"model": "m", "to": ["spare"]}])
    late.settings.deployments.pop("m")
    scripted(late, "a").set_script("m", Step(error=errors.RateLimitedError("slow", retry_after=30)))
    started = time.monotonic()
    response = await late.chat("hi", model="m")
    assert response.text == "from b" and time.monotonic() - started < 0.4  # moved on at once
    assert any("would pass the deadline" in n for n in response.trace.notes)
    await late.aclose()


async def test_a_deployment_that_cuts_its_streams_opens_its_circuit(tmp_path: Path):
    podium = make(tmp_path, breaker={"failures": 2, "cooldown": 60})
    podium.settings.deployments.pop("m")
    scripted(podium, "a").set_script("m", Step(text="one two three", fail_after_chunks=1,
                                               error=errors.ProviderError("connection reset")))
    for _ in range(2):
        with pytest.raises(errors.ProviderError):
            async for _chunk in podium.stream("hi", model="m"):
                pass
    deps = podium.deployments(podium.settings.catalogue.get("m"))
    assert deps[0].breaker.state == "open"
    await podium.aclose()


async def test_a_rejected_upstream_key_fails_over_and_opens_that_deployments_circuit(tmp_path: Path):
    podium = make(tmp_path)
    scripted(podium, "a").set_script("m", Step(error=errors.AuthenticationError("invalid x-api-key")))
    for _ in range(3):
        response = await podium.chat("hi", model="m")
        assert response.text == "from b"
    assert deployment(podium, "m@a").breaker.state == "open"
    assert len(scripted(podium, "a").calls) == 1  # not asked again while its circuit is open
    await podium.aclose()


async def test_a_failed_over_stream_reports_the_answering_attempts_usage(tmp_path: Path):
    podium = make(tmp_path)
    scripted(podium, "a").set_script("m", Step(error=errors.ProviderUnavailableError("down")))
    scripted(podium, "b").set_script("m", Step(text="Paris", input_tokens=9, output_tokens=2))
    stream = podium.stream("Capital of France?", model="m")
    text = "".join([chunk.text async for chunk in stream])
    assert text == "Paris" and stream.response is not None
    assert (stream.response.usage.input_tokens, stream.response.usage.output_tokens) == (9, 2)
    failed = [c for c in stream.response.trace.calls if c.status == "error"]
    assert failed and all(c.cost == 0 and c.usage.total_tokens == 0 for c in failed)
    await podium.aclose()


async def test_when_every_deployment_rejects_podiums_key_the_client_hears_502_not_401(tmp_path: Path):
    """A 401 would send the client looking at its own key; the key at fault is Podium's."""
    podium = make(tmp_path)
    for name in ("a", "b"):
        scripted(podium, name).set_script("m", Step(error=errors.AuthenticationError("invalid x-api-key",
                                                                                      provider=name, model="m")))
    with pytest.raises(errors.ProviderError, match="refused Podium's credentials") as raised:
        await podium.chat("hi", model="m")
    assert raised.value.status == 502 and raised.value.code == "upstream_credentials_rejected"
    await podium.aclose()
