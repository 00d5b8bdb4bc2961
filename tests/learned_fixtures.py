"""What the learned-routing tests share: prompts, a router file trained on them, a small online router,
and a gateway config whose two chat models are served by a real OpenAI-wire server on loopback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from servers.http_server import WireServer
from test_provider_contract import KEY

MATH = ["What is 17 * 23?", "Solve for x: 3x + 5 = 20", "Compute the integral of x^2 from 0 to 3",
        "What is the derivative of sin(x) * x^2?",
        "If a train travels 60 km/h for 2.5 hours, how far does it go?",
        "Find the greatest common divisor of 84 and 126", "What is 15% of 240?", "Simplify (x^2 - 9)/(x - 3)"]
CHAT = ["Write a short poem about autumn leaves", "What is the capital of France?", "Say hello to my friend Anna",
        "Recommend a good book about history", "Translate 'good morning' into Spanish",
        "Describe the colour blue to someone", "Give me a name for my new cat",
        "What should I cook for dinner tonight?"]
NEW_MATH = ["Calculate 48 divided by 6 plus 7 squared", "Solve 2x - 7 = 11 for x", "What is 3 to the power of 5?"]
NEW_CHAT = ["Write a haiku about the sea", "Suggest a name for a dog", "Tell me a fun fact about Paris"]


def embed(texts: Sequence[str]) -> NDArray[np.float32]:
    from podium.providers.local import minilm

    return minilm.load().embed(list(texts))[0]


def train_knn(path: Path, models: Sequence[str] = ("cheap", "pricey"), knob: float = 0.5) -> Path:
    """A kNN router file (A's learner and file format): the cheap model fails the math prompts, both
    answer the rest; knob 0.5 sends math to the pricey model and the rest to the cheap one."""
    from podium.routing.learned.files import save_router
    from podium.routing.learned.knn import KnnRouter

    prompts = MATH + CHAT
    outcomes = np.array([[0.0, 1.0]] * len(MATH) + [[1.0, 1.0]] * len(CHAT))
    router = KnnRouter.fit(embed(prompts), outcomes, list(models), prompts, k=4, prior=0.5, knob=knob)
    save_router(router, path)
    return path


class TinyOnline:
    """An online router meeting the contract: each model's chance is a running mean of its rewards
    (the prompt is ignored); ``update`` is recorded so a test can see what it was told."""

    kind = "bandit"

    def __init__(self, models: Sequence[str], knob: float = 0.5) -> None:
        self.models = tuple(models)
        self.knob = knob
        self.sums = dict.fromkeys(self.models, 1.0)
        self.counts = dict.fromkeys(self.models, 2.0)
        self.updates: list[tuple[NDArray[np.float32], str, float]] = []

    def predict(self, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        row = [self.sums[m] / self.counts[m] for m in self.models]
        return np.tile(np.array(row, dtype=np.float64), (len(embeddings), 1))

    def explain(self, embedding: NDArray[np.float32]) -> str:
        return "bandit: mean rewards " + ", ".join(f"{m} {self.sums[m] / self.counts[m]:.2f}" for m in self.models)

    def update(self, embedding: NDArray[np.float32], model: str, reward: float) -> None:
        self.updates.append((np.array(embedding), model, reward))
        self.sums[model] += reward
        self.counts[model] += 1


def wire_config(tmp_path: Path, server: WireServer, *, routing: dict[str, Any] | None = None,
                ledger: dict[str, Any] | None = None, **gateway: Any) -> dict[str, Any]:
    """Two chat models on one OpenAI-wire server (cheap, pricey) plus an EU model of another provider."""
    def row(model_id: str, price_in: float, price_out: float, tier: str, region: str = "us",
            provider: str = "wire") -> dict[str, Any]:
        return {"provider": provider, "model_id": model_id, "context_window": 8000, "input_price": price_in,
                "output_price": price_out, "tier": tier, "region": region, "max_output_tokens": 100}

    return {
        "providers": {"wire": {"kind": "openai", "base_url": server.url + "/v1", "api_key": KEY},
                      "wire-eu": {"kind": "openai", "base_url": server.url + "/v1", "api_key": KEY, "region": "eu"},
                      "local": {"enabled": False}},
        "models": {"cheap": row("cheap-1", 0.1, 0.2, "fast"), "pricey": row("pricey-1", 10.0, 30.0, "advanced"),
                   "eu-model": row("eu-1", 1.0, 2.0, "standard", "eu", "wire-eu")},
        "routing": routing or {},
        "resilience": {"retries": {"max_attempts": 1}},
        "gateway": {"admin_key": "admin-secret-0123456789", "keys_path": str(tmp_path / "keys.sqlite3"), **gateway},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3"), **(ledger or {})},
    }
