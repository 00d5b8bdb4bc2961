"""What each adapter puts on the wire: headers, paths and bodies as the vendors' references specify."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec, known_hosts, resolve
from podium.config.loader import validate
from podium.providers.openai.provider import OpenAIProvider
from podium.providers.plugins import BUILTIN_KINDS, build_provider
from podium.types import ChatRequest
from servers.http_server import Request, WireServer
from servers.wires import WIRES, Scenario

KEY = "sk-wire-test-0123456789abcdef"


@pytest.fixture
def captured() -> Iterator[tuple[WireServer, dict[str, Scenario]]]:
    scenarios = {kind: Scenario() for kind in WIRES}
    state: dict[str, str] = {"kind": "openai"}

    def handler(request: Request):
        return WIRES[state["kind"]].handle(request, scenarios[state["kind"]])

    server = WireServer(handler).start()
    server.state = state  # type: ignore[attr-defined]
    yield server, scenarios
    server.stop()


def provider(kind: str, server: WireServer, prefix: str = "", **spec: object):
    server.state["kind"] = kind  # type: ignore[attr-defined]
    return build_provider(ProviderSpec(name=kind, kind=kind, enabled=True, reason="t", base_url=server.url + prefix,
                                       api_key=KEY, **spec))  # type: ignore[arg-type]


def model(kind: str, model_id: str, **fields: object) -> ModelInfo:
    return ModelInfo(name="m", provider=kind, model_id=model_id, display_name="m", context_window=1000,
                     input_price=0, output_price=0, tier="fast", region="us", **fields)  # type: ignore[arg-type]


CONVERSATION = ChatRequest.model_validate({
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                              "function": {"name": "lookup", "arguments": "{\"q\": \"png\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a tiny image"},
    ],
    "temperature": 1.5, "top_p": 0.9, "stop": ["END"], "seed": 7, "max_tokens": 50,
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    "tool_choice": "auto", "metadata": {"user": "user-42"},
})


async def test_openai_body_and_headers(captured):
    server, _ = captured
    p = provider("openai", server, "/v1")
    await p.complete(CONVERSATION.model_copy(update={"response_format": {"type": "json_object"}, "n": 2}),
                     model("openai", "gpt-4o-mini"))
    request = server.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body
    assert body["messages"][1]["content"][1] == {"type": "image_url",
                                                 "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert body["messages"][2]["tool_calls"][0]["function"]["arguments"] == "{\"q\": \"png\"}"
    assert body["messages"][3] == {"role": "tool", "content": "a tiny image", "tool_call_id": "call_1"}
    assert (body["temperature"], body["top_p"], body["stop"], body["seed"], body["n"]) == (1.5, 0.9, ["END"], 7, 2)
    assert body["user"] == "user-42" and body["tool_choice"] == "auto"
    assert body["response_format"] == {"type": "json_object"}
    assert "stream" not in body
    await p.aclose()


async def test_openai_stream_asks_for_usage_and_reasoning_models_take_max_completion_tokens(captured):
    server, _ = captured
    p = provider("openai", server, "/v1")
    [c async for c in p.stream(ChatRequest.from_prompt("hi", max_tokens=10), model("openai", "gpt-5-mini"))]
    body = server.requests[-1].json
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 10 and "max_tokens" not in body
    await p.aclose()


async def test_anthropic_body_and_headers(captured):
    server, _ = captured
    p = provider("anthropic", server)
    await p.complete(CONVERSATION, model("anthropic", "claude-sonnet-4-5-20250929"))
    request = server.requests[-1]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    body = request.json
    assert body["system"] == "Be brief."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    image = body["messages"][0]["content"][1]
    assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert body["messages"][1]["content"] == [{"type": "tool_use", "id": "call_1", "name": "lookup",
                                               "input": {"q": "png"}}]
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_1",
                                               "content": "a tiny image"}]
    assert body["max_tokens"] == 50 and body["stop_sequences"] == ["END"]
    assert body["temperature"] == 1.0  # Anthropic's range ends at 1
    assert body["tools"] == [{"name": "lookup", "description": "", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "auto"} and body["metadata"] == {"user_id": "user-42"}
    await p.aclose()


async def test_anthropic_requires_max_tokens_so_the_models_own_most_is_sent(captured):
    server, _ = captured
    p = provider("anthropic", server)
    await p.complete(ChatRequest.from_prompt("hi"), model("anthropic", "claude-haiku-4-5", max_output_tokens=64000))
    assert server.requests[-1].json["max_tokens"] == 64000  # the catalogue's most, never a smaller invented cap
    [c async for c in p.stream(ChatRequest.from_prompt("hi"), model("anthropic", "claude-haiku-4-5"))]
    assert server.requests[-1].json["max_tokens"] == 4096 and server.requests[-1].json["stream"] is True
    await p.aclose()
    capped = provider("anthropic", server, options={"default_max_tokens": 2000})  # an explicit override
    await capped.complete(ChatRequest.from_prompt("hi"),
                          model("anthropic", "claude-haiku-4-5", max_output_tokens=64000))
    assert server.requests[-1].json["max_tokens"] == 2000
    await capped.complete(ChatRequest.from_prompt("hi", max_tokens=99), model("anthropic", "claude-haiku-4-5"))
    assert server.requests[-1].json["max_tokens"] == 99  # the request's own always wins
    await capped.aclose()


async def test_gemini_body_path_and_key_header(captured):
    server, _ = captured
    p = provider("gemini", server, "/v1beta")
    await p.complete(CONVERSATION.model_copy(update={"response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}),
        model("gemini", "gemini-2.5-flash"))
    request = server.requests[-1]
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.headers["x-goog-api-key"] == KEY and KEY not in request.query
    body = request.json
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "lookup", "args": {"q": "png"}}}]
    assert body["contents"][2]["parts"] == [{"functionResponse": {"name": "lookup",
                                                                  "response": {"content": "a tiny image"}}}]
    config = body["generationConfig"]
    assert (config["temperature"], config["topP"], config["maxOutputTokens"], config["stopSequences"],
            config["seed"]) == (1.5, 0.9, 50, ["END"], 7)
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == {"type": "object"}
    assert body["tools"] == [{"functionDeclarations": [{"name": "lookup", "parametersJsonSchema": {"type": "object"}}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    [c async for c in p.stream(ChatRequest.from_prompt("hi"), model("gemini", "gemini-2.5-flash"))]
    assert server.requests[-1].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert server.requests[-1].query == "alt=sse"
    await p.aclose()


async def test_ollama_body(captured):
    server, _ = captured
    p = provider("ollama", server)
    await p.complete(CONVERSATION.model_copy(update={"response_format": {"type": "json_object"}}),
                     model("ollama", "llama3.2:3b"))
    request = server.requests[-1]
    assert request.path == "/api/chat" and "authorization" in request.headers
    body = request.json
    assert body["stream"] is False and body["format"] == "json"
    assert body["options"] == {"temperature": 1.5, "top_p": 0.9, "num_predict": 50, "stop": ["END"], "seed": 7}
    assert body["messages"][1]["images"] == ["iVBORw0KGgo="]
    assert body["messages"][2]["tool_calls"] == [{"function": {"name": "lookup", "arguments": {"q": "png"}}}]
    await p.aclose()


def test_ollama_host_without_scheme_is_accepted():
    p = build_provider(ProviderSpec(name="ollama", kind="ollama", enabled=True, reason="t", base_url="127.0.0.1:11434"))
    assert str(p._http.client.base_url).rstrip("/") == "http://127.0.0.1:11434"  # type: ignore[attr-defined]


def test_every_known_host_row_is_valid_and_builds():
    regions = {"eu", "us", "ch", "cn", "global", "local"}
    for name, row in known_hosts().items():
        assert row.kind in BUILTIN_KINDS, name
        assert row.region in regions, name
        if row.kind != "local":
            assert row.base_url and row.base_url.startswith(("http://", "https://")), name
            assert row.base_url_env and row.base_url_env.isupper(), name
        if row.key_env is not None:
            assert row.key_env.endswith("_API_KEY"), name
        settings = resolve(validate({}), None, env={row.key_env: "k"} if row.key_env else {})
        spec = settings.providers[name]
        built = build_provider(spec)
        assert built.name == name


def test_compatible_hosts_are_rows_over_one_class():
    compatible = [name for name, row in known_hosts().items() if row.kind == "openai"]
    assert {"openai", "mistral", "deepseek", "openrouter", "groq", "together", "publicai", "vllm", "llamacpp",
            "lmstudio"} <= set(compatible)
    env = {"OPENROUTER_API_KEY": "k", "MISTRAL_API_KEY": "k"}
    settings = resolve(validate({}), None, env=env)
    openrouter = build_provider(settings.providers["openrouter"])
    mistral = build_provider(settings.providers["mistral"])
    assert type(openrouter) is type(mistral) is OpenAIProvider
    assert openrouter._http.client.headers["X-Title"] == "Podium"  # type: ignore[attr-defined]
    assert str(mistral._http.client.base_url).rstrip("/") == "https://api.mistral.ai/v1"  # type: ignore[attr-defined]
    assert settings.providers["mistral"].region == "eu" and settings.providers["publicai"].region == "ch"


def test_base_url_and_key_follow_the_vendors_environment_variables():
    env = {"OPENAI_API_KEY": "sk-a", "OPENAI_BASE_URL": "http://proxy.local/v1",
           "ANTHROPIC_API_KEY": "sk-b", "ANTHROPIC_BASE_URL": "http://proxy.local/anthropic",
           "GEMINI_API_KEY": "g", "GEMINI_BASE_URL": "http://proxy.local/gemini", "OLLAMA_HOST": "10.0.0.5:11434"}
    settings = resolve(validate({}), None, env=env)
    assert settings.providers["openai"].base_url == "http://proxy.local/v1"
    assert settings.providers["anthropic"].base_url == "http://proxy.local/anthropic"
    assert settings.providers["gemini"].base_url == "http://proxy.local/gemini"
    assert settings.providers["ollama"].base_url == "10.0.0.5:11434"
    configured = resolve(validate({"providers": {"openai": {"base_url": "http://cfg/v1", "api_key": "sk-cfg"}}}),
                         None, env=env)
    assert configured.providers["openai"].base_url == "http://cfg/v1"  # the config file wins
    assert configured.providers["openai"].api_key == "sk-cfg"


async def test_stream_usage_json_round_trip_is_exact(captured):
    """Tool-call argument fragments are passed on byte for byte, not parsed and re-serialised."""
    server, scenarios = captured
    odd = '{"city":  "Zürich" ,"days":3}'  # unusual spacing and a non-ASCII character
    scenarios["openai"].tool = ("call_9", "forecast", odd)
    p = provider("openai", server, "/v1")
    chunks = [c async for c in p.stream(ChatRequest.from_prompt("hi"), model("openai", "gpt-4o-mini"))]
    assert "".join(d.arguments for c in chunks for d in (c.tool_calls or [])) == odd
    assert json.loads(odd)["city"] == "Zürich"
    await p.aclose()
