"""all-MiniLM-L6-v2 in numpy (podium.providers.local.minilm): the same vectors as the full-precision model,
the same vectors in any batch, empty and over-long inputs, and /v1/embeddings through the gateway."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from podium.client import Podium
from podium.config import load_settings
from podium.providers.local import minilm
from podium.server.app import create_app

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm" / "reference.json").read_text())
pytestmark = pytest.mark.skipif(minilm.missing() is not None or importlib.util.find_spec("tokenizers") is None,
                                reason=f"needs the MiniLM runtime and weights: {minilm.INSTALL}")


@pytest.fixture(scope="module")
def model() -> minilm.MiniLM:
    return minilm.load()


def cosines(vectors: np.ndarray) -> np.ndarray:
    ref = np.asarray(REFERENCE["vectors"], dtype=np.float64)
    return (vectors * ref).sum(1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(ref, axis=1)


def test_every_reference_sentence_matches_the_full_precision_model(model: minilm.MiniLM):
    vectors = np.stack([model.embed([text])[0][0] for text in REFERENCE["sentences"]])
    assert vectors.shape == (len(REFERENCE["sentences"]), 384)
    found = cosines(vectors)
    assert found.min() >= 0.99, [(s[:40], c) for s, c in zip(REFERENCE["sentences"], found, strict=True) if c < 0.99]
    assert found.min() >= 0.9999  # fp32 against fp32: only rounding differs
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)


def test_the_tokenizer_counts_as_the_reference_did_with_truncation_at_256(model: minilm.MiniLM):
    assert [len(ids) for ids in model.tokenize(REFERENCE["sentences"])] == REFERENCE["tokens"]
    assert max(REFERENCE["tokens"]) == minilm.MAX_TOKENS  # the long paragraph was cut, as sentence-transformers does


def test_a_text_gets_the_same_vector_alone_or_in_any_batch(model: minilm.MiniLM):
    texts = REFERENCE["sentences"]
    alone = np.stack([model.embed([t])[0][0] for t in texts])
    together, tokens = model.embed(texts)
    shuffled = list(reversed(texts)) * 3  # more than one batch, mixed lengths, duplicates
    again, _ = model.embed(shuffled)
    assert np.abs(together - alone).max() < 1e-5
    assert np.abs(again[: len(texts)][::-1] - alone).max() < 1e-5
    assert tokens == sum(REFERENCE["tokens"])
    assert cosines(together).min() >= 0.9999


def test_empty_whitespace_and_very_long_inputs(model: minilm.MiniLM):
    vectors, tokens = model.embed(["", "   ", "word " * 5000, "x" * 20000])
    assert vectors.shape == (4, 384) and np.isfinite(vectors).all()
    assert model.tokenize([""])[0] == [101, 102]  # [CLS] [SEP]
    assert [len(ids) for ids in model.tokenize(["word " * 5000, "word " * 255])] == [256, 256]
    assert tokens == 2 + 2 + 256 + len(model.tokenize(["x" * 20000])[0])
    cut, _ = model.embed(["word " * 254, "word " * 5000])  # 254 words + [CLS] [SEP] = 256: what the long one keeps
    assert np.abs(cut[0] - cut[1]).max() < 1e-5
    assert model.embed([])[0].shape == (0, 384)


def test_related_sentences_score_higher_than_unrelated(model: minilm.MiniLM):
    vectors, _ = model.embed(["What is the capital of France?", "Which city is the capital of France?",
                              "How do I reverse a list in Python?"])
    assert vectors[0] @ vectors[1] > 0.9 > 0.3 > vectors[0] @ vectors[2]


async def test_it_is_the_default_embedding_model_through_the_gateway(tmp_path: Path):
    (tmp_path / "podium.yaml").write_text(json.dumps({"ledger": {"path": str(tmp_path / "ledger.sqlite3")},
                                                      "gateway": {"keys_path": str(tmp_path / "keys.sqlite3"),
                                                                  "middleware": ["guardrails", "metrics"]}}))
    settings = load_settings(tmp_path / "podium.yaml")
    assert settings.embedding_model == "minilm-l6"
    async with Podium(settings) as podium:
        app = create_app(settings, podium=podium)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            answer = await http.post("/v1/embeddings", json={"input": ["What is the capital of France?", "hello"]})
            named = await http.post("/v1/embeddings", json={"model": "minilm-l6", "input": "Why is the sky blue?"})
            sized = await http.post("/v1/embeddings", json={"model": "minilm-l6", "input": "x", "dimensions": 8})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "minilm-l6"
    assert [len(row["embedding"]) for row in body["data"]] == [384, 384]
    assert body["usage"]["prompt_tokens"] == 9 + 3  # with [CLS] and [SEP]; the gateway refuses "" as OpenAI does
    i = REFERENCE["sentences"].index("What is the capital of France?")
    assert float(np.dot(body["data"][0]["embedding"], REFERENCE["vectors"][i])) >= 0.9999
    assert named.status_code == 200 and len(named.json()["data"][0]["embedding"]) == 384
    assert sized.status_code == 400 and "fixed-size" in sized.text


def test_the_semantic_cache_defaults_to_it(tmp_path: Path):
    (tmp_path / "podium.yaml").write_text(json.dumps({"gateway": {"cache": {"enabled": True, "semantic": True}}}))
    settings = load_settings(tmp_path / "podium.yaml")
    assert settings.gateway.cache.semantic_model is None and settings.embedding_model == "minilm-l6"
