"""What the shared call skeleton does for every wire: content filters from the vendors' structured signs
only (both directions, through the whole client), and the environment's HTTP proxy with its exceptions."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from podium import errors
from podium.catalogue import ModelInfo
from podium.client import Podium
from podium.config import ProviderSpec, load_settings
from podium.providers.http import env_proxy
from podium.providers.plugins import build_provider
from podium.types import ChatRequest
from servers.http_server import Reply, Request, WireServer
from servers.wires import WIRES, Scenario

KEY = "sk-skeleton-test-5e4d3c2b1a09"
PREFIX = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta", "ollama": ""}
MODEL_ID = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5-20250929", "gemini": "gemini-2.5-flash",
            "ollama": "llama3.2:3b"}
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
             "no_proxy")


def model_for(kind: str) -> ModelInfo:
    return ModelInfo(name=f"{kind}-model", provider=kind, model_id=MODEL_ID[kind], display_name="m",
                     context_window=100_000, max_output_tokens=4096, input_price=1.0, output_price=2.0, tier="fast",
                     region="us")


def provider_for(kind: str, url: str):  # type: ignore[no-untyped-def]
    return build_provider(ProviderSpec(name=kind, kind=kind, enabled=True, reason="test", base_url=url + PREFIX[kind],
                                       api_key=KEY, timeout=5.0, connect_timeout=1.0))


async def run(provider: Any, request: ChatRequest, info: ModelInfo, streaming: bool) -> None:
    """One call to the end, streamed or whole."""
    if streaming:
        [c async for c in provider.stream(request, info)]
    else:
        await provider.complete(request, info)


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)


# --- content filters: structured signs only ---------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(WIRES))
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_a_bad_request_that_mentions_safety_is_not_a_content_filter(kind: str, streaming: bool, no_proxy_env):
    scenario = Scenario(error="safety_words")
    with WireServer(lambda request: WIRES[kind].handle(request, scenario)) as server:
        provider = provider_for(kind, server.url)
        with pytest.raises(errors.BadRequestError) as info:
            await run(provider, ChatRequest.from_prompt("hi"), model_for(kind), streaming)
        assert type(info.value) is errors.BadRequestError, info.value.message
        assert "safety" in info.value.message or "filter" in info.value.message  # the words are there, and ignored
        await provider.aclose()


FILTER_SIGNS = {"openai": "content_filter", "anthropic": "refusal", "gemini": "SAFETY"}


@pytest.mark.parametrize("kind", sorted(FILTER_SIGNS))
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_the_vendors_finish_reason_for_a_filtered_answer_is_a_content_filter(kind: str, streaming: bool,
                                                                                  no_proxy_env):
    scenario = Scenario(text="", finish=FILTER_SIGNS[kind])
    with WireServer(lambda request: WIRES[kind].handle(request, scenario)) as server:
        provider = provider_for(kind, server.url)
        with pytest.raises(errors.ContentFilteredError) as info:
            await run(provider, ChatRequest.from_prompt("hi"), model_for(kind), streaming)
        assert info.value.provider == kind and KEY not in info.value.message
        await provider.aclose()


@pytest.mark.parametrize("kind", sorted(FILTER_SIGNS))
async def test_a_stream_filtered_after_it_said_something_ends_with_that_reason(kind: str, no_proxy_env):
    scenario = Scenario(text="The first half of", finish=FILTER_SIGNS[kind])
    with WireServer(lambda request: WIRES[kind].handle(request, scenario)) as server:
        provider = provider_for(kind, server.url)
        chunks = [c async for c in provider.stream(ChatRequest.from_prompt("hi"), model_for(kind))]
        assert "".join(c.text for c in chunks) == "The first half of"
        assert [c.finish_reason for c in chunks if c.finish_reason] == ["content_filter"]
        await provider.aclose()


def _client_with_claude(tmp_path: Path, url: str) -> Podium:
    config = {
        "providers": {"claude": {"kind": "anthropic", "base_url": url, "api_key": KEY},
                      "other": {"kind": "scripted", "region": "us"},
                      "local": {"kind": "scripted", "options": {"answers": {"smollm2-135m-instruct": "local"}}}},
        "models": {"c": {"provider": "claude", "model_id": "claude-sonnet-4-5-20250929", "context_window": 200_000,
                         "max_output_tokens": 64000, "input_price": 3.0, "output_price": 15.0, "tier": "fast",
                         "region": "us", "capabilities": ["chat"]},
                   "o": {"provider": "other", "model_id": "o", "context_window": 8000, "input_price": 1.0,
                         "output_price": 1.0, "tier": "fast", "region": "us", "capabilities": ["chat"]}},
        "resilience": {"retries": {"max_attempts": 1}}, "ledger": {"enabled": False},
    }
    (tmp_path / "podium.yaml").write_text(json.dumps(config))
    return Podium(load_settings(tmp_path / "podium.yaml"))


async def test_only_a_real_content_filter_sends_the_request_to_another_provider(tmp_path: Path, no_proxy_env):
    scenario = Scenario()
    with WireServer(lambda request: WIRES["anthropic"].handle(request, scenario)) as server:
        podium = _client_with_claude(tmp_path, server.url)
        scenario.error = "filtered"  # stop_reason: refusal
        response = await podium.chat("hi", model="c")
        assert response.provider != "claude" and response.text
        assert any("claude filtered the content → another provider" in note for note in response.trace.notes)
        scenario.error = "safety_words"  # a 400 whose message says "content filtering policy"
        with pytest.raises(errors.BadRequestError) as info:
            await podium.chat("hi", model="c")
        assert type(info.value) is errors.BadRequestError
        await podium.aclose()


# --- proxies -----------------------------------------------------------------------------------------
class ForwardProxy:
    """A plain HTTP forward proxy (no CONNECT): requests arrive in absolute form, are recorded, and are
    sent on to the upstream they name; with ``credentials`` it answers 407 without Proxy-Authorization."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.seen: list[Request] = []
        self.credentials = credentials
        self.server = WireServer(self.handle)

    def handle(self, request: Request) -> Reply:
        self.seen.append(request)
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            if request.headers.get("proxy-authorization") != f"Basic {token}":
                return Reply(407, {"proxy-authenticate": 'Basic realm="proxy"'}, b"")
        target = urlsplit(request.path)
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        headers = {k: v for k, v in request.headers.items()
                   if k not in ("proxy-authorization", "proxy-connection", "connection", "host", "content-length")}
        upstream.request(request.method, target.path + (f"?{request.query}" if request.query else ""),
                         body=request.body, headers=headers)
        response = upstream.getresponse()
        body = response.read()
        upstream.close()
        return Reply(response.status, {"content-type": response.getheader("content-type") or "application/json"},
                     body)

    def __enter__(self) -> ForwardProxy:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


@pytest.fixture
def upstream() -> Iterator[WireServer]:
    scenario = Scenario(text="through the proxy")
    with WireServer(lambda request: WIRES["openai"].handle(request, scenario)) as server:
        yield server


async def test_http_proxy_carries_the_providers_requests(upstream: WireServer, monkeypatch, no_proxy_env):
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.server.url)
        provider = provider_for("openai", upstream.url)
        response = await provider.complete(ChatRequest.from_prompt("hi"), model_for("openai"))
        chunks = [c async for c in provider.stream(ChatRequest.from_prompt("hi"), model_for("openai"))]
        assert response.text == "through the proxy" and "".join(c.text for c in chunks) == "through the proxy"
        assert [r.path for r in proxy.seen] == [f"{upstream.url}/v1/chat/completions"] * 2  # absolute form
        assert [r.path for r in upstream.requests] == ["/v1/chat/completions"] * 2
        assert upstream.requests[0].headers["authorization"] == f"Bearer {KEY}"  # the vendor's key still arrives
        await provider.aclose()


async def test_no_proxy_bypasses_the_proxy(upstream: WireServer, monkeypatch, no_proxy_env):
    with ForwardProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.server.url)
        monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
        provider = provider_for("openai", upstream.url)
        assert (await provider.complete(ChatRequest.from_prompt("hi"), model_for("openai"))).text
        assert proxy.seen == [] and len(upstream.requests) == 1
        await provider.aclose()


async def test_proxy_credentials_are_sent_to_the_proxy_and_never_shown(upstream: WireServer, monkeypatch,
                                                                       no_proxy_env):
    with ForwardProxy(credentials=("alice", "s3cret-proxy-pw")) as proxy:
        host = urlsplit(proxy.server.url)
        monkeypatch.setenv("HTTP_PROXY", f"http://alice:s3cret-proxy-pw@{host.hostname}:{host.port}")
        provider = provider_for("openai", upstream.url)
        assert (await provider.complete(ChatRequest.from_prompt("hi"), model_for("openai"))).text
        assert "proxy-authorization" not in upstream.requests[-1].headers  # for the proxy, not the vendor
        await provider.aclose()
    # the proxy is gone: the failure names the provider, not the proxy's password
    provider = provider_for("openai", upstream.url)
    with pytest.raises(errors.ProviderUnavailableError) as info:
        await provider.complete(ChatRequest.from_prompt("hi"), model_for("openai"))
    assert "s3cret-proxy-pw" not in str(info.value) and "alice" not in str(info.value)
    await provider.aclose()


def test_which_proxy_a_url_gets(monkeypatch, no_proxy_env):
    assert env_proxy("https://api.openai.com/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain.corp:8080")
    assert env_proxy("https://api.openai.com/v1") == "http://proxy.corp:3128"  # a bare host:port is http://
    assert env_proxy("http://10.0.0.5:11434") == "http://plain.corp:8080"
    monkeypatch.setenv("https_proxy", "http://lower.corp:3128")  # the lower-case name wins, as in curl
    assert env_proxy("https://api.anthropic.com") == "http://lower.corp:3128"
    monkeypatch.setenv("NO_PROXY", " .internal.corp, *.googleapis.com ,10.0.0.5:11434")
    assert env_proxy("https://generativelanguage.googleapis.com/v1beta") is None
    assert env_proxy("https://vllm.internal.corp/v1") is None
    assert env_proxy("https://internal.corp/v1") is None
    assert env_proxy("https://notinternal.corp/v1") == "http://lower.corp:3128"
    assert env_proxy("http://10.0.0.5:11434") is None  # that port only
    assert env_proxy("http://10.0.0.5:8000/v1") == "http://plain.corp:8080"
    monkeypatch.setenv("no_proxy", "*")
    assert env_proxy("https://api.openai.com/v1") is None
