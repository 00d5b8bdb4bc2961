"""One contract every remote adapter keeps, checked against local servers speaking each wire format."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from podium import errors
from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.providers import Provider
from podium.providers.plugins import build_provider
from podium.types import ChatRequest, Message, Tool
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario

KEY = "sk-test-9f8e7d6c5b4a39281706"
PREFIX = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta", "ollama": ""}
MODEL_ID = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5-20250929", "gemini": "gemini-2.5-flash",
            "ollama": "llama3.2:3b"}


@dataclass
class Harness:
    kind: str
    server: WireServer
    scenario: Scenario
    provider: Provider
    model: ModelInfo

    def set(self, **fields: object) -> None:
        for name, value in fields.items():
            setattr(self.scenario, name, value)


def make_provider(kind: str, base_url: str, timeout: float = 5.0, total: float | None = None) -> Provider:
    return build_provider(ProviderSpec(name=f"{kind}-test", kind=kind, enabled=True, reason="test",
                                       base_url=base_url + PREFIX[kind], api_key=KEY, timeout=timeout,
                                       connect_timeout=1.0, total_timeout=total))


def model_for(kind: str) -> ModelInfo:
    return ModelInfo(name=f"{kind}-model", provider=f"{kind}-test", model_id=MODEL_ID[kind], display_name="m",
                     context_window=100_000, input_price=1.0, output_price=2.0, tier="fast", region="us",
                     max_output_tokens=4096)


@pytest.fixture(params=sorted(WIRES))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    kind = request.param
    scenario = Scenario()
    server = WireServer(lambda req: WIRES[kind].handle(req, scenario)).start()
    provider = make_provider(kind, server.url, timeout=1.0)
    yield Harness(kind, server, scenario, provider, model_for(kind))
    server.stop()


def ask(text: str = "Say hello.", **fields: object) -> ChatRequest:
    return ChatRequest(messages=[Message.system("Be brief."), Message.user(text)], max_tokens=64, **fields)


async def call(harness: Harness, streaming: bool) -> list[object]:
    """Run one request to the end, streaming or not; what arrived is returned."""
    if streaming:
        return [c async for c in harness.provider.stream(ask(), harness.model)]
    return [await harness.provider.complete(ask(), harness.model)]


WEATHER = [Tool.model_validate({"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})]


async def test_plain_answer_with_usage(harness: Harness):
    harness.set(text="Hello there!", input_tokens=20, output_tokens=9)
    response = await harness.provider.complete(ask(), harness.model)
    assert response.text == "Hello there!"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 9)
    assert response.finish_reason == "stop"
    assert response.provider == harness.provider.name and response.model == harness.model.name
    await harness.provider.aclose()


async def test_cached_and_reasoning_tokens_are_reported(harness: Harness):
    if harness.kind == "ollama":
        pytest.skip("Ollama reports neither cached nor reasoning tokens")
    harness.set(input_tokens=100, cached_tokens=60, output_tokens=50,
                reasoning_tokens=0 if harness.kind == "anthropic" else 30)
    usage = (await harness.provider.complete(ask(), harness.model)).usage
    assert usage.input_tokens == 100 and usage.cached_input_tokens == 60
    assert usage.output_tokens == 50
    assert usage.reasoning_tokens == (0 if harness.kind == "anthropic" else 30)
    await harness.provider.aclose()


async def test_stream_arrives_in_pieces_with_usage_at_the_end(harness: Harness):
    harness.set(text="one two three four", input_tokens=15, output_tokens=4)
    chunks = [c async for c in harness.provider.stream(ask(), harness.model)]
    assert "".join(c.text for c in chunks) == "one two three four"
    assert sum(1 for c in chunks if c.text) >= 3
    final = [c for c in chunks if c.finish_reason]
    assert len(final) == 1 and final[0].finish_reason == "stop"
    usage = next(c.usage for c in reversed(chunks) if c.usage)
    assert (usage.input_tokens, usage.output_tokens) == (15, 4)
    await harness.provider.aclose()


async def test_tool_call_whole_and_streamed(harness: Harness):
    arguments = json.dumps({"city": "Paris", "unit": "celsius"})
    harness.set(tool=("call_abc123", "get_weather", arguments))
    response = await harness.provider.complete(ask("Weather in Paris?", tools=WEATHER), harness.model)
    assert response.finish_reason == "tool_calls"
    (call,) = response.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == json.loads(arguments)
    chunks = [c async for c in harness.provider.stream(ask("Weather in Paris?", tools=WEATHER), harness.model)]
    deltas = [d for c in chunks for d in (c.tool_calls or [])]
    assert {d.index for d in deltas} == {0}
    assert next(d.name for d in deltas if d.name) == "get_weather"
    assert json.loads("".join(d.arguments for d in deltas)) == json.loads(arguments)
    assert any(c.finish_reason == "tool_calls" for c in chunks)
    await harness.provider.aclose()


ERRORS = {
    "context": errors.ContextTooLongError,
    "auth": errors.AuthenticationError,
    "permission": errors.PermissionDeniedError,
    "not_found": errors.NotFoundError,
    "rate_limit": errors.RateLimitedError,
    "server": errors.ProviderError,
    "unavailable": errors.ProviderUnavailableError,
    "filtered": errors.ContentFilteredError,
}


@pytest.mark.parametrize("kind", sorted(ERRORS))
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_each_error_maps_onto_the_tree(harness: Harness, kind: str, streaming: bool):
    if kind == "filtered" and harness.kind == "ollama":
        pytest.skip("Ollama has no content filter")
    harness.set(error=kind)
    with pytest.raises(ERRORS[kind]) as info:
        await call(harness, streaming)
    exc = info.value
    assert type(exc) is ERRORS[kind] or (kind == "server" and type(exc) is errors.ProviderError)
    assert KEY not in exc.message and KEY not in str(exc)
    assert exc.provider == harness.provider.name
    if kind == "rate_limit":
        assert exc.retry_after == pytest.approx(20)
    await harness.provider.aclose()


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_connection_reset_mid_body(harness: Harness, streaming: bool):
    harness.set(fault="reset_mid_body", fault_after_chunks=2, repeat=3)
    with pytest.raises(errors.ProviderUnavailableError):
        await call(harness, streaming)
    await harness.provider.aclose()


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_reset_before_headers_and_connection_refused(harness: Harness, streaming: bool):
    harness.set(fault="reset_before_headers")
    with pytest.raises(errors.ProviderUnavailableError):
        await call(harness, streaming)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = make_provider(harness.kind, f"http://127.0.0.1:{port}")
    with pytest.raises(errors.ProviderUnavailableError, match="cannot connect"):
        await refused.complete(ask(), harness.model)
    await refused.aclose()
    await harness.provider.aclose()


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_hang_past_the_timeout(harness: Harness, streaming: bool):
    harness.set(fault="hang")
    with pytest.raises(errors.TimeoutError):
        await call(harness, streaming)
    await harness.provider.aclose()


async def test_total_timeout_stops_a_stream_that_drips_forever(harness: Harness):
    """Each chunk arrives well within the read timeout, but the whole stream would take 20 s."""
    harness.set(text="drip " * 4, repeat=100, chunk_delay=0.05)
    capped = make_provider(harness.kind, harness.server.url, timeout=1.0, total=0.5)
    received = []

    async def drain() -> None:
        async for chunk in capped.stream(ask(), harness.model):
            received.append(chunk)

    with pytest.raises(errors.TimeoutError, match="total_timeout"):
        await drain()
    assert received  # it did stream for a while before the cap
    harness.set(repeat=1, chunk_delay=0.0, fault="hang")
    with pytest.raises(errors.TimeoutError, match="total_timeout"):
        await capped.complete(ask(), harness.model)
    await capped.aclose()
    await harness.provider.aclose()


async def test_malformed_json(harness: Harness):
    harness.set(malformed=True)
    with pytest.raises(errors.ProviderError, match="malformed JSON"):
        await harness.provider.complete(ask(), harness.model)
    await harness.provider.aclose()


async def test_stream_without_its_terminator_is_an_error(harness: Harness):
    harness.set(truncate=True, text="a b c d e")
    with pytest.raises(errors.ProviderError, match="truncated"):
        [c async for c in harness.provider.stream(ask(), harness.model)]
    await harness.provider.aclose()


async def test_cancelling_a_stream_closes_the_upstream_connection(harness: Harness):
    harness.set(text="tick " * 5, repeat=200, chunk_delay=0.01)
    stream = harness.provider.stream(ask(), harness.model)
    first = await anext(stream)
    assert first.text or first.tool_calls is None
    assert not harness.server.disconnected.is_set()
    await stream.aclose()
    # the server notices the closed connection while it is still writing the long stream (waited for off the
    # event loop: the client's socket is closed by the loop, which a blocking wait would stall)
    assert await asyncio.to_thread(harness.server.disconnected.wait, 5)
    await harness.provider.aclose()


async def test_health_and_model_listing(harness: Harness):
    health = await harness.provider.health()
    assert health.ok, health.detail
    assert await harness.provider.list_models()
    await harness.provider.aclose()


async def test_one_pooled_connection_serves_sequential_calls(harness: Harness):
    for _ in range(3):
        await harness.provider.complete(ask(), harness.model)
    assert len(harness.server.requests) == 3
    assert harness.server.connections == 1  # keep-alive: one TCP connection for all three
    await harness.provider.aclose()
