"""LangChain's standard chat-model integration suite (``langchain-tests``) through ``ChatOpenAI``.

The suite is the one every LangChain chat integration runs: invoke, stream, batch, multi-turn
histories, tool calling (forced and not, with and without arguments, Unicode arguments, an agent
loop), structured output (pydantic, TypedDict, JSON schema, JSON mode), usage metadata in streams,
stop sequences, images. It runs

- once with ``ChatOpenAI`` pointed straight at the OpenAI-wire upstream (the reference: the upstream
  reached directly), and
- once through Podium's gateway for each outbound wire (OpenAI, Anthropic, Gemini, Ollama; Anthropic
  also on a model without structured output, whose JSON answers come by a forced tool), whose
  upstream is a server speaking that vendor's format (``servers.wires``) with answers that follow
  the request (``servers.answers``).

Every upstream answers through the same rules, so "the same results as the upstream reached
directly" means: every test that passes against the OpenAI upstream directly passes through the
gateway on every wire, unless the wire lacks the feature, which the class says with the suite's own
feature flags (as LangChain integrations do): Ollama's API has no ``tool_choice``, and only the
OpenAI wire takes PDF and audio parts (the README's field table refuses them elsewhere).
A test that fails on a wire because of a bug in that wire's module is an ``xfail(strict=True)``
naming it.

The suite asserts little about what comes back, so ``test_same_answers_as_the_upstream_reached_directly``
compares answers too: each probe through the gateway on each wire against the OpenAI upstream
reached directly. The reference is the OpenAI upstream for every wire (not LangChain's own
Anthropic, Gemini or Ollama integrations at their upstreams): every upstream answers by the same
rules, so one reference shows what a wire loses, and no further integrations need installing.
Test images, PDFs and audio come from local bytes (the suite would download them; nothing here
reaches the internet).
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests
from pydantic import BaseModel, Field

from drop_in import WIRE_KINDS, Gateway, running_gateway
from servers.http_server import WireServer

# ChatOpenAI keeps one async HTTP client per base URL for the process: every async test of this module
# runs on one event loop, as LangChain's own integration tests do.
pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio'")]


def _png(width: int = 4, height: int = 4) -> bytes:
    """A real (tiny, red) PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


_PDF = (b"%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj "
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
_WAV = b"RIFF" + struct.pack("<I", 36 + 800) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8) + \
    b"data" + struct.pack("<I", 800) + bytes(800)


def _local_get(url: str, *args: Any, **kwargs: Any) -> httpx.Response:
    """What the suite downloads (an image, a PDF, a WAV), served from local bytes."""
    body = _PDF if url.endswith(".pdf") else _WAV if url.endswith(".wav") else _png()
    return httpx.Response(200, content=body, request=httpx.Request("GET", url))


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpx, "get", _local_get)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("langchain-gateway")) as running:
        yield running


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[WireServer]:
    """The OpenAI-wire upstream on its own, for ChatOpenAI to reach directly."""
    from drop_in import upstream_handler

    with WireServer(upstream_handler("openai")) as server:
        yield server


class _Standard(ChatModelIntegrationTests):
    wire = "openai"
    alt = False  # the wire's other model (no "json" capability), with the main one as the override
    base_url = ""
    model_name = ""
    override = ""

    @pytest.fixture(autouse=True)
    def _where(self, gateway: Gateway, openai_upstream: WireServer) -> None:
        if type(self) is TestDirectOpenAI:
            self.base_url, self.model_name, self.override = f"{openai_upstream.url}/v1", "gpt-4o-mini", "gpt-4.1-mini"
        else:
            self.base_url, self.model_name = f"{gateway.url}/v1", gateway.model(self.wire, self.alt)
            self.override = gateway.model(self.wire, not self.alt)

    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.model_name, "base_url": self.base_url, "api_key": "sk-gateway-test",
                "stream_usage": True}

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return {**super().standard_chat_model_params, "max_retries": 0, "timeout": 20}

    @property
    def model_override_value(self) -> str | None:
        return self.override

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return self.wire == "openai"

    @property
    def supports_audio_inputs(self) -> bool:
        return self.wire == "openai"

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True


class TestDirectOpenAI(_Standard):
    """The reference: ChatOpenAI at the OpenAI-wire upstream itself, no gateway."""


class TestGatewayOpenAI(_Standard):
    wire = "openai"


class TestGatewayAnthropic(_Standard):
    wire = "anthropic"


class TestGatewayAnthropicWithoutStructuredOutput(_Standard):
    """A Claude model without structured output in the catalogue: JSON answers come by a forced tool."""

    wire = "anthropic"
    alt = True


class TestGatewayGemini(_Standard):
    wire = "gemini"


class TestGatewayOllama(_Standard):
    wire = "ollama"

    @property
    def has_tool_choice(self) -> bool:
        return False  # Ollama's /api/chat has no tool_choice (the field table drops it with a note)



# --- the same answers as the upstream reached directly ------------------------------------------------
# The suite above says pass or fail; these compare what comes back. Each probe is asked once of the
# OpenAI upstream directly and once through the gateway on each wire. The upstreams answer by the same
# rules (``servers.answers``: they echo the last user text, count every word and image they were sent,
# call tools with arguments read from the prompt), so anything the gateway loses or alters on the way
# across a wire (a system prompt, a turn, a stop sequence, an image, a tool result) changes the answer.
class Joke(BaseModel):
    """Joke to tell user."""

    setup: str = Field(description="question to set up a joke")
    punchline: str = Field(description="answer to resolve the joke")


@tool
def get_weather(location: str) -> str:
    """Get the weather at a location."""
    return "It's sunny."


_IMAGE = f"data:image/png;base64,{base64.b64encode(_png()).decode()}"
_CALL = {"name": "get_weather", "args": {"location": "Paris"}, "id": "call_1", "type": "tool_call"}


def _usage(message: Any) -> tuple[int, int] | None:
    usage = message.usage_metadata
    return (usage["input_tokens"], usage["output_tokens"]) if usage else None


def _stream(model: ChatOpenAI) -> Any:
    full: Any = None
    for chunk in model.stream("Write me 2 haikus."):
        full = chunk if full is None else full + chunk
    return [full.text, _usage(full)]


PROBES: dict[str, Callable[[ChatOpenAI], Any]] = {
    "invoke": lambda m: [(r := m.invoke("Hello")).content, _usage(r)],
    "system_and_turns": lambda m: [(r := m.invoke([SystemMessage("Be brief."), HumanMessage("hello"),
                                                   AIMessage("hello"), HumanMessage("how are you")])).content,
                                   _usage(r)],
    "named_user": lambda m: m.invoke([HumanMessage("hello", name="example_user")]).content,
    "stream": _stream,
    "stop": lambda m: m.invoke("hi", stop=["you"]).content,
    "tool_call": lambda m: [(c["name"], c["args"]) for c in m.bind_tools([get_weather]).invoke(
        "What is the weather in Paris?").tool_calls],
    "unicode_tool_call": lambda m: [(c["name"], c["args"]) for c in m.bind_tools([get_weather]).invoke(
        "What is the weather in '東京'?").tool_calls],
    "tool_result": lambda m: [(r := m.bind_tools([get_weather]).invoke([
        HumanMessage("What is the weather in Paris?"), AIMessage("", tool_calls=[_CALL]),
        ToolMessage("It's sunny.", tool_call_id="call_1")])).content, _usage(r)],
    "structured": lambda m: m.with_structured_output(Joke).invoke("Tell me a joke about cats.").model_dump(),
    "json_mode": lambda m: m.with_structured_output(Joke, method="json_mode").invoke(
        "A joke about cats as JSON with 'setup' and 'punchline' keys.").model_dump(),
    "image": lambda m: m.invoke([HumanMessage([{"type": "text", "text": "Describe this."},
                                               {"type": "image_url", "image_url": {"url": _IMAGE}}])]).content,
    "image_in_tool_result": lambda m: m.bind_tools([get_weather]).invoke([
        HumanMessage("Show me the weather map of Paris."), AIMessage("", tool_calls=[_CALL]),
        ToolMessage([{"type": "image_url", "image_url": {"url": _IMAGE}}], tool_call_id="call_1")]).content,
    "cache_control": lambda m: m.invoke([HumanMessage([{"type": "text", "text": "Hello",
                                                        "cache_control": {"type": "ephemeral"}}])]).content,
}
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}  # (wire, probe): the bug, named where it is


@pytest.fixture(scope="module")
def direct_answers(openai_upstream: WireServer) -> dict[str, Any]:
    model = ChatOpenAI(model="gpt-4o-mini", base_url=f"{openai_upstream.url}/v1", api_key="sk-direct",  # type: ignore[arg-type]
                       max_retries=0, stream_usage=True)
    return {name: probe(model) for name, probe in PROBES.items()}


@pytest.mark.parametrize("probe", list(PROBES))
@pytest.mark.parametrize("wire", WIRE_KINDS)
def test_same_answers_as_the_upstream_reached_directly(gateway: Gateway, direct_answers: dict[str, Any], wire: str,
                                                       probe: str, request: pytest.FixtureRequest) -> None:
    if (wire, probe) in KNOWN_DIFFERENCES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[wire, probe]))
    model = ChatOpenAI(model=gateway.model(wire), base_url=f"{gateway.url}/v1", api_key="sk-gateway",  # type: ignore[arg-type]
                       max_retries=0, stream_usage=True)
    assert PROBES[probe](model) == direct_answers[probe]
