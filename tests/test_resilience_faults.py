"""The fault matrix: a primary deployment misbehaving in every way a real one does, a healthy second one,
and real HTTP in between. While any healthy deployment remains, no request is lost."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium import errors
from podium.client import Podium
from podium.config import load_settings
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario

MODEL = {"provider": "primary", "model_id": "gpt-4o-mini", "context_window": 100_000, "input_price": 1.0,
         "output_price": 2.0, "tier": "fast", "region": "us"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Pair:
    """Two OpenAI-wire servers: ``bad`` takes a scenario, ``good`` always answers."""

    def __init__(self) -> None:
        self.bad_scenario = Scenario(text="from primary")
        self.good_scenario = Scenario(text="from secondary")
        self.bad = WireServer(lambda r: WIRES["openai"].handle(r, self.bad_scenario)).start()
        self.good = WireServer(lambda r: WIRES["openai"].handle(r, self.good_scenario)).start()

    def config(self, tmp_path: Path, *, primary_url: str | None = None, **resilience: Any) -> Path:
        data = {
            "providers": {"primary": {"kind": "openai", "base_url": (primary_url or self.bad.url) + "/v1",
                                      "api_key": "sk-1", "timeout": 2},
                          "secondary": {"kind": "openai", "base_url": self.good.url + "/v1", "api_key": "sk-2"}},
            "models": {"m": MODEL},
            "deployments": {"m": [{"provider": "primary", "weight": 2}, {"provider": "secondary", "weight": 1}]},
            "resilience": {"balancing": "lowest_cost", "retries": {"max_attempts": 3, "base_delay": 0},
                           "attempt_timeout": 0.5, **resilience},
            "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
        }
        path = tmp_path / "podium.yaml"
        path.write_text(json.dumps(data))
        return path

    def stop(self) -> None:
        self.bad.stop()
        self.good.stop()


@pytest.fixture
def pair() -> Iterator[Pair]:
    servers = Pair()
    yield servers
    servers.stop()


FAULTS: dict[str, dict[str, Any]] = {
    "500": {"status": 500},
    "502": {"status": 502},
    "503": {"status": 503},
    "529": {"status": 529},
    "429 with Retry-After": {"status": 429, "retry_after": "0.05"},
    "reset before headers": {"fault": "reset_before_headers"},
    "reset mid-body": {"fault": "reset_mid_body", "fault_after_chunks": 1},
    "hang past the timeout": {"fault": "hang"},
    "malformed JSON": {"malformed": True},
    "stream ends before the first token": {"truncate_after": 1},  # only the role chunk, then EOF
}


async def run(podium: Podium, streaming: bool) -> tuple[str, Any]:
    if streaming:
        stream = podium.stream("hello", model="m")
        text = "".join([c.text async for c in stream])
        return text, stream.response
    response = await podium.chat("hello", model="m")
    return response.text, response


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_a_broken_primary_never_loses_the_request(pair: Pair, tmp_path: Path, fault: str, streaming: bool):
    if fault == "stream ends before the first token" and not streaming:
        pytest.skip("truncation is a stream fault")
    for name, value in FAULTS[fault].items():
        setattr(pair.bad_scenario, name, value)
    async with Podium(load_settings(pair.config(tmp_path))) as podium:
        text, response = await run(podium, streaming)
    assert text == "from secondary"
    assert len(pair.bad.requests) >= 1  # the primary was really tried
    calls = response.trace.calls
    assert calls[0].provider == "primary" and calls[0].status in {"error", "cancelled"}
    assert calls[-1].provider == "secondary" and calls[-1].status == "ok"
    assert any("attempt 1 on m@primary failed" in note for note in response.trace.notes)


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_connection_refused(pair: Pair, tmp_path: Path, streaming: bool):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with Podium(load_settings(pair.config(tmp_path, primary_url=closed))) as podium:
        text, response = await run(podium, streaming)
    assert text == "from secondary"
    assert "cannot connect" in response.trace.calls[0].error


async def test_reset_mid_stream_after_the_first_token_ends_the_stream_with_an_error(pair: Pair, tmp_path: Path):
    pair.bad_scenario.text = "one two three four five"
    pair.bad_scenario.fault, pair.bad_scenario.fault_after_chunks = "reset_mid_body", 3  # role, "one ", "two "
    got: list[str] = []
    async with Podium(load_settings(pair.config(tmp_path))) as podium:
        stream = podium.stream("hello", model="m")

        async def consume() -> None:
            async for chunk in stream:
                got.append(chunk.text)

        with pytest.raises(errors.ProviderUnavailableError):
            await consume()
    assert "".join(got) == "one two "  # the primary's words only: nothing spliced from the secondary
    assert pair.good.requests == []
    assert stream.response is not None and stream.response.finish_reason == "error"


async def test_truncated_after_tokens_is_an_error_not_a_splice(pair: Pair, tmp_path: Path):
    pair.bad_scenario.text = "one two three"
    pair.bad_scenario.truncate = True  # everything but the usage chunk and [DONE]
    got: list[str] = []
    async with Podium(load_settings(pair.config(tmp_path))) as podium:
        async def consume() -> None:
            async for chunk in podium.stream("hello", model="m"):
                got.append(chunk.text)

        with pytest.raises(errors.ProviderError, match="truncated"):
            await consume()
    assert "".join(got) == "one two three" and pair.good.requests == []


async def test_a_rate_limited_deployment_fails_over_at_once_without_waiting(pair: Pair, tmp_path: Path):
    """Another healthy deployment answers now: the 429's Retry-After is not slept first."""
    pair.bad_scenario.status, pair.bad_scenario.retry_after = 429, "0.2"
    slept: list[float] = []
    async with Podium(load_settings(pair.config(tmp_path))) as podium:
        real_sleep = podium.caller.sleep

        async def recording_sleep(seconds: float) -> None:
            slept.append(seconds)
            await real_sleep(seconds)

        podium.caller.sleep = recording_sleep
        text, _ = await run(podium, False)
    assert text == "from secondary" and slept == []


async def test_no_request_is_lost_under_concurrency(pair: Pair, tmp_path: Path):
    pair.bad_scenario.status = 503
    async with Podium(load_settings(pair.config(tmp_path, breaker={"failures": 1000}))) as podium:
        results = await asyncio.gather(*(run(podium, i % 2 == 0) for i in range(30)))
    assert [text for text, _ in results] == ["from secondary"] * 30


async def test_breaker_opens_skips_probes_and_closes(pair: Pair, tmp_path: Path):
    pair.bad_scenario.status = 503
    clock = Clock()
    config = pair.config(tmp_path, breaker={"failures": 2, "cooldown": 30})
    async with Podium(load_settings(config), clock=clock) as podium:
        for _ in range(2):
            await podium.chat("hello", model="m")
        assert len(pair.bad.requests) == 2
        primary = podium.deployments(podium.settings.catalogue.get("m"))[0]
        assert primary.breaker.state == "open"
        skipped = await podium.chat("hello", model="m")
        assert len(pair.bad.requests) == 2  # open: not called at all, no extra failure
        assert skipped.trace.calls[0].provider == "secondary"
        assert any("circuit open for m@primary" in n for n in skipped.trace.notes)
        clock.now += 30
        pair.bad_scenario.status = None  # it recovered
        probed = await podium.chat("hello", model="m")
        assert probed.text == "from primary" and len(pair.bad.requests) == 3
        assert primary.breaker.state == "closed"


async def test_deadline_bounds_the_whole_request(pair: Pair, tmp_path: Path):
    pair.bad_scenario.fault = "hang"
    pair.good_scenario.fault = "hang"
    config = pair.config(tmp_path, attempt_timeout=5, deadline=0.4)
    async with Podium(load_settings(config)) as podium:
        with pytest.raises(errors.TimeoutError):
            await podium.chat("hello", model="m")
