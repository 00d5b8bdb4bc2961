"""Shared by the dashboard's tests: a gateway in-process over scripted models, and traffic through it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from podium.client import Podium
from podium.config import load_settings
from podium.server.app import create_app
from podium.server.keys import KeyStore

ADMIN = "admin-secret-dashboard-0123456789"
PROMPT = "What is the capital of France? zebra-marker-91"  # must never appear on a page or in an answer of the API


def config(tmp_path: Path, *, dsn: str | None = None, keys_in_postgres: bool = False,
           **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "providers": {"canned": {"kind": "scripted", "options": {"answers": {
            "echo-1": "Paris is the capital of France.", "other-1": "Paris", "pricey-1": "Paris, of course."}}},
            "local": {"enabled": False}},
        "models": {name: {"provider": "canned", "model_id": f"{name}-1", "context_window": 8000,
                          "input_price": price, "output_price": 2 * price, "tier": "fast", "region": "us",
                          "max_output_tokens": 100}
                   for name, price in (("echo", 1.0), ("other", 0.5), ("pricey", 10.0))},
        "strategies": {"panel": {"type": "consensus", "models": ["echo", "other", "pricey"]}},
        "routing": {"default": "echo", "rules": [{"task_type": "planning", "model": "pricey"}]},
        "resilience": {"retries": {"max_attempts": 1}},
        "gateway": {"admin_key": ADMIN, "teams": {"core": {"budget": 100.0, "budget_period": "month"}},
                    **({} if keys_in_postgres else {"keys_path": str(tmp_path / "keys.sqlite3")})},
        "ledger": {"postgres_dsn": dsn} if dsn else {"path": str(tmp_path / "ledger.sqlite3")},
    }
    data.update(extra)
    return data


@dataclass
class Gw:
    http: httpx.AsyncClient
    podium: Podium
    app: Any
    config: Path
    tmp: Path

    def keys(self) -> KeyStore:
        return KeyStore(self.tmp / "keys.sqlite3")

    async def chat(self, key: str, **body: Any) -> httpx.Response:
        body.setdefault("messages", [{"role": "user", "content": PROMPT}])
        return await self.http.post("/v1/chat/completions", json=body, headers=bearer(key))

    async def api(self, path: str, auth: str = ADMIN, **params: Any) -> httpx.Response:
        return await self.http.get(f"/dashboard/api/{path}", params=params, headers=bearer(auth))

    async def aclose(self) -> None:
        dashboard = getattr(self.app.state, "dashboard", None)
        if dashboard is not None:
            await dashboard.aclose()
        await self.http.aclose()
        await self.podium.aclose()


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def open_gateway(tmp_path: Path, data: dict[str, Any]) -> Gw:
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(data))
    settings = load_settings(path)
    podium = Podium(settings)
    app = create_app(settings, podium=podium)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    return Gw(http, podium, app, path, tmp_path)


async def traffic(gw: Gw) -> dict[str, Any]:
    """A mix: two keys (one in a team), task types, a routing rule, a strategy, a failure, feedback, tags."""
    made = {}
    for body in ({"name": "alice", "team": "core", "budget": 5.0, "budget_period": "month"}, {"name": "bob"}):
        answered = await gw.http.post("/admin/keys", json=body, headers=bearer(ADMIN))  # whichever store holds keys
        assert answered.status_code == 201, answered.text
        made[body["name"]] = answered.json()
    alice, bob = made["alice"]["key"], made["bob"]["key"]
    ids: dict[str, Any] = {"alice": made["alice"]["id"], "bob": made["bob"]["id"], "alice_secret": alice,
                           "bob_secret": bob}
    first = await gw.chat(alice, model="echo", user="user-a", metadata={"task_type": "qa", "tags": "area:core"})
    assert first.status_code == 200, first.text
    ids["first"] = first.headers["x-request-id"]
    for _ in range(3):
        assert (await gw.chat(alice, model="other", metadata={"task_type": "qa"})).status_code == 200
    planned = await gw.chat(bob, metadata={"task_type": "planning"}, user="user-b")
    assert planned.status_code == 200, planned.text
    ids["planned"] = planned.headers["x-request-id"]
    panel = await gw.chat(bob, model="panel", metadata={"task_type": "review"})
    assert panel.status_code == 200, panel.text
    ids["panel"] = panel.headers["x-request-id"]
    feedback = await gw.http.post("/v1/feedback", json={"request_id": f"chatcmpl-{ids['first']}", "score": 0.9,
                                                        "label": "good"}, headers=bearer(alice))
    assert feedback.status_code == 200, feedback.text
    return ids
