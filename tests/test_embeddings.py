"""Embeddings: each vendor's wire (request shape, vectors in order, usage, errors) and Podium.embed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import needs_local, write_config
from podium import errors
from podium.client import Podium
from podium.config import load_settings
from podium.embeddings import Embeddings
from podium.providers import EmbeddingProvider
from podium.types import EmbeddingRequest
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario, word_vector
from test_provider_contract import KEY, make_provider, model_for

EMBEDDING_WIRES = ["gemini", "ollama", "openai"]
TEXTS = ["the quick brown fox", "jumps over the lazy dog today"]


@pytest.fixture(params=EMBEDDING_WIRES)
def wire(request: pytest.FixtureRequest) -> Iterator[tuple[str, WireServer, Scenario]]:
    scenario = Scenario()
    server = WireServer(lambda req: WIRES[request.param].handle(req, scenario)).start()
    yield request.param, server, scenario
    server.stop()


async def test_vectors_come_back_in_input_order_with_usage(wire: tuple[str, WireServer, Scenario]):
    kind, server, _ = wire
    provider = make_provider(kind, server.url)
    assert isinstance(provider, EmbeddingProvider)
    model = model_for(kind)
    response = await provider.embed(EmbeddingRequest(input=TEXTS), model)
    await provider.aclose()
    assert len(response.vectors) == 2
    for vector, text in zip(response.vectors, TEXTS, strict=True):
        assert vector == pytest.approx(word_vector(text))
    assert response.model == model.name and response.provider == f"{kind}-test"
    # OpenAI and Ollama report the prompt tokens (the server counts words: 4 + 6); Gemini reports none,
    # so Podium estimates them from the text
    assert response.usage.input_tokens == 10 if kind != "gemini" else response.usage.input_tokens > 0


async def test_request_shapes_follow_each_vendors_reference(wire: tuple[str, WireServer, Scenario]):
    kind, server, _ = wire
    provider = make_provider(kind, server.url)
    model = model_for(kind)
    response = await provider.embed(EmbeddingRequest(input=TEXTS, dimensions=16), model)
    await provider.aclose()
    request = server.requests[-1]
    body = json.loads(request.body)
    if kind == "openai":
        assert request.path == "/v1/embeddings"
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert body == {"model": "gpt-4o-mini", "input": TEXTS, "encoding_format": "float", "dimensions": 16}
    elif kind == "gemini":
        assert request.path == "/v1beta/models/gemini-2.5-flash:batchEmbedContents"
        assert request.headers["x-goog-api-key"] == KEY
        assert body == {"requests": [{"model": "models/gemini-2.5-flash", "content": {"parts": [{"text": t}]},
                                      "outputDimensionality": 16} for t in TEXTS]}
    else:
        assert request.path == "/api/embed"
        assert body == {"model": "llama3.2:3b", "input": TEXTS, "dimensions": 16}
    if kind != "ollama":  # the test server's Ollama ignores dimensions
        assert [len(v) for v in response.vectors] == [16, 16]


@pytest.mark.parametrize("kind_error", [("auth", errors.AuthenticationError), ("rate_limit", errors.RateLimitedError),
                                        ("server", errors.ProviderError)])
async def test_errors_map_onto_the_tree_without_the_key(wire: tuple[str, WireServer, Scenario],
                                                        kind_error: tuple[str, type[Exception]]):
    kind, server, scenario = wire
    scenario.error, expected = kind_error
    provider = make_provider(kind, server.url)
    with pytest.raises(expected) as info:
        await provider.embed(EmbeddingRequest(input=["x"]), model_for(kind))
    await provider.aclose()
    assert KEY not in str(info.value)


async def test_podium_embed_refuses_chat_models_and_providers_without_an_api(tmp_path: Path):
    config = write_config(tmp_path, {
        "providers": {"canned": {"kind": "scripted"}, "anthropic": {"api_key": "sk-ant-test"}},
        "models": {"echo": {"provider": "canned", "context_window": 8000, "input_price": 1.0, "output_price": 1.0,
                            "tier": "fast", "region": "us"},
                   "claude-vectors": {"provider": "anthropic", "capabilities": ["embeddings"], "context_window": 8000,
                                      "input_price": 1.0, "output_price": 0.0, "tier": "fast", "region": "us"}}})
    async with Podium.from_config(config, ledger=None) as podium:
        with pytest.raises(errors.BadRequestError, match=r"'echo' is not an embedding model; embedding models: .*"
                                                         r"smollm2-135m-embed"):
            await podium.embed("hello", model="echo")
        with pytest.raises(errors.BadRequestError, match="provider 'anthropic' has no embeddings API"):
            await podium.embed("hello", model="claude-vectors")
        with pytest.raises(errors.NotFoundError, match=r"needs provider 'openai', which is not enabled"):
            await podium.embed("hello", model="text-embedding-3-small")
        with pytest.raises(errors.BadRequestError, match="input"):
            await podium.embed([])


def test_a_chat_model_as_embedding_model_fails_at_load_with_the_key_path(tmp_path: Path):
    config = write_config(tmp_path, {"routing": {"embedding_model": "gpt-4o"}})
    with pytest.raises(errors.ConfigError, match=r"routing\.embedding_model.*not an embedding model"):
        load_settings(config)


async def test_remote_embeddings_are_priced_and_in_the_ledger(tmp_path: Path):
    scenario = Scenario()
    server = WireServer(lambda req: WIRES["openai"].handle(req, scenario)).start()
    ledger = tmp_path / "ledger.sqlite3"
    config = write_config(tmp_path, {
        "providers": {"vectors": {"kind": "openai", "base_url": server.url + "/v1", "api_key": KEY}},
        "models": {"vec": {"provider": "vectors", "model_id": "text-embedding-3-small", "capabilities": ["embeddings"],
                           "context_window": 8191, "input_price": 0.02, "output_price": 0.0, "tier": "fast",
                           "region": "us"}}}, ledger=ledger)
    try:
        async with Podium.from_config(config) as podium:
            response = await podium.embed(TEXTS, model="vec")
    finally:
        server.stop()
    assert response.cost == pytest.approx(10 * 0.02 / 1e6)
    assert response.id.startswith("req_")
    import sqlite3

    with sqlite3.connect(ledger) as conn:
        row = conn.execute("SELECT strategy, model, input_tokens, cost, calls, status FROM requests").fetchone()
        call = conn.execute("SELECT step, model, input_tokens FROM calls").fetchone()
    assert row == ("embeddings", "vec", 10, pytest.approx(2e-7), 1, "ok")
    assert call == ("embed", "vec", 10)


@needs_local
async def test_local_embeddings_from_the_embedded_model(tmp_path: Path):
    async with Podium(load_settings(None), ledger=None) as podium:
        embeddings: Embeddings = podium.embeddings
        assert "smollm2-135m-embed" in [m.name for m in embeddings.models()]
        model = "smollm2-135m-embed"  # llama.cpp's embed path (the default, minilm-l6: tests/test_minilm.py)
        response = await podium.embed(["Paris is in France.", "Paris is in France.", "Bananas are yellow."],
                                      model=model)
        again = await podium.embed("Paris is in France.", model=model)
    assert response.model == "smollm2-135m-embed" and response.provider == "local"
    assert [len(v) for v in response.vectors] == [576, 576, 576]
    assert response.vectors[0] == pytest.approx(response.vectors[1])
    assert again.vectors[0] == pytest.approx(response.vectors[0], rel=1e-4)  # deterministic across calls
    assert response.vectors[0] != pytest.approx(response.vectors[2], rel=1e-2)
    assert response.usage.input_tokens > 0 and response.cost == 0.0


def test_the_semantic_cache_needs_an_embedding_model(tmp_path: Path):
    config = write_config(tmp_path, {"gateway": {"cache": {"enabled": True, "semantic": True}}})
    assert load_settings(config).embedding_model == "minilm-l6"  # its default when none is named
    config = write_config(tmp_path, {"gateway": {"cache": {"enabled": True, "semantic": True,
                                                           "semantic_model": "gpt-4o"}}})
    with pytest.raises(errors.ConfigError, match=r"gateway\.cache\.semantic_model.*not an embedding model"):
        load_settings(config)


async def test_malformed_embedding_answers_are_provider_errors(tmp_path: Path):
    from servers.http_server import Reply

    answers = [{"object": "list"}, {"object": "list", "data": [{"index": 0, "embedding": [1.0, 0.0]}]}]
    server = WireServer(lambda req: Reply.json(answers.pop(0))).start()
    config = write_config(tmp_path, {
        "providers": {"vectors": {"kind": "openai", "base_url": server.url + "/v1", "api_key": KEY}},
        "models": {"vec": {"provider": "vectors", "capabilities": ["embeddings"], "context_window": 8191,
                           "input_price": 0.02, "output_price": 0.0, "tier": "fast", "region": "us"}}})
    try:
        async with Podium.from_config(config, ledger=None) as podium:
            with pytest.raises(errors.ProviderError, match="answered without 'data'"):
                await podium.embed(TEXTS, model="vec")
            with pytest.raises(errors.ProviderError, match="returned 1 vectors for 2 inputs"):
                await podium.embed(TEXTS, model="vec")
    finally:
        server.stop()
