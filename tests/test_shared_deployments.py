"""Two Podium instances sharing one Redis: a deployment's RPM and its open circuit hold across both."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conftest import require_redis
from podium.client import Podium
from podium.config import load_settings
from podium.resilience.shared import SharedDeployments
from podium.server.state import RedisState
from test_resilience_faults import Pair


@pytest.fixture
async def state() -> AsyncIterator[RedisState]:
    require_redis()
    shared = RedisState("redis://127.0.0.1:6379/0", prefix=f"podium-test:{uuid.uuid4().hex}:")
    yield shared
    await shared.aclose()


@pytest.fixture
def pair() -> Iterator[Pair]:
    servers = Pair()
    yield servers
    servers.stop()


def two_instances(config: Path, state: RedisState) -> tuple[Podium, Podium]:
    instances = []
    for _ in range(2):
        podium = Podium(load_settings(config))
        podium.caller.shared = SharedDeployments(state, podium.deployments.all)
        instances.append(podium)
    return instances[0], instances[1]


async def test_a_deployments_rpm_is_shared_by_both_instances(pair: Pair, tmp_path: Path, state: RedisState):
    pair.bad_scenario.text = "from primary"  # healthy: the primary is only limited, not broken
    config = pair.config(tmp_path)
    data = json.loads(config.read_text())
    data["deployments"]["m"][0]["rpm"] = 2
    config.write_text(json.dumps(data))
    a, b = two_instances(config, state)
    try:
        assert (await a.chat("hi", model="m")).text == "from primary"
        assert (await b.chat("hi", model="m")).text == "from primary"
        third = await a.chat("hi", model="m")  # the primary's 2 requests per minute are used up, across both
        assert third.text == "from secondary"
        assert any("m@primary over its shared RPM/TPM: m@secondary instead" in n for n in third.trace.notes)
        assert len(pair.bad.requests) == 2
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_circuit_opened_by_one_instance_opens_in_the_other(pair: Pair, tmp_path: Path, state: RedisState):
    pair.bad_scenario.status = 503
    config = pair.config(tmp_path, breaker={"failures": 1, "cooldown": 30}, retries={"max_attempts": 2,
                                                                                     "base_delay": 0})
    a, b = two_instances(config, state)
    try:
        answered = await a.chat("hi", model="m")  # the primary fails once: A opens its circuit and publishes it
        assert answered.text == "from secondary" and len(pair.bad.requests) == 1
        assert a.caller.shared is not None and b.caller.shared is not None
        await a.caller.shared.flush()
        b.deployments(b.settings.catalogue.get("m"))  # B knows the deployments (made on first use)
        assert await b.caller.shared.sync_once() == ["m@primary"]
        skipped = await b.chat("hi", model="m")
        assert skipped.text == "from secondary"
        assert len(pair.bad.requests) == 1  # B never called the dead primary
        assert any("circuit open for m@primary" in n for n in skipped.trace.notes)
    finally:
        await a.aclose()
        await b.aclose()
