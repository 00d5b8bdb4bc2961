"""The work run's calls layer: roles' fallbacks, one budget, one deadline, the preset's regions, cost per role.

A real Podium over scripted providers and a real SQLite ledger; the promises are checked where they are
enforced (the invoker), so a fallback cannot route around them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from podium.client import Podium
from podium.config import load_settings
from podium.errors import BudgetExceededError, ConfigError, ProviderUnavailableError
from podium.providers.scripted import ScriptedProvider, Step
from podium.server.state import MemoryState
from podium.types import Message
from podium.work.calls import DeadlineReached, WorkCalls, run_budget_slot
from podium.work.contracts import RoleCosts
from podium.work.roles import RoleModels, resolve_roles


def row(provider: str, model_id: str, **fields: Any) -> dict[str, Any]:
    return {"provider": provider, "model_id": model_id, "context_window": 8000, "max_output_tokens": 200,
            "input_price": fields.pop("input_price", 1.0), "output_price": fields.pop("output_price", 1.0),
            "tier": fields.pop("tier", "standard"), "region": fields.pop("region", "us"), **fields}


def make(tmp_path: Path, **work: Any) -> Podium:
    config = {
        "providers": {"us": {"kind": "scripted", "region": "us", "options": {"default": "from us"}},
                      "eu": {"kind": "scripted", "region": "eu", "options": {"default": "from eu"}},
                      "local": {"enabled": False}},
        "models": {"boss": row("us", "boss", input_price=10.0, output_price=30.0, tier="advanced"),
                   "hand": row("us", "hand"), "spare": row("eu", "spare", region="eu"),
                   "judge": row("eu", "judge", region="eu")},
        "resilience": {"retries": {"max_attempts": 1, "base_delay": 0.0}},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
        "work": {"presets": {"team": {"conductor": ["boss"], "worker": ["hand", "spare"],
                                      "reviewer": ["hand", "judge"]},
                             "private": {"conductor": ["boss", "spare"], "worker": ["hand", "spare"],
                                         "reviewer": ["judge"], "preset": "privacy-first"}},
                 **work},
    }
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(config))
    return Podium(load_settings(path))


def scripted(podium: Podium, name: str) -> ScriptedProvider:
    provider = podium.registry.get_provider(name)
    assert isinstance(provider, ScriptedProvider)
    return provider


def calls_for(podium: Podium, preset: str = "team", **kwargs: Any) -> WorkCalls:
    roles = resolve_roles(podium.settings, podium.registry, preset)
    return WorkCalls(podium, roles, run_id="r1", costs=RoleCosts(), **kwargs)


HI = [Message(role="user", content="hello there")]


async def test_role_fallback_cost_per_role_and_ledger_tags(tmp_path: Path):
    podium = make(tmp_path)
    scripted(podium, "us").set_script("hand", Step(error=ProviderUnavailableError("down")))
    calls = calls_for(podium)
    answer = await calls.ask("worker", HI, subtask="s1")
    assert answer.model == "spare"  # the role's next model
    await calls.ask("conductor", HI)
    assert set(calls.costs.cost) == {"worker", "conductor"} and calls.costs.calls == {"worker": 1, "conductor": 1}
    assert calls.costs.cost["conductor"] > calls.costs.cost["worker"] > 0
    assert calls.baseline > calls.costs.total  # everything on the conductor's model would cost more
    assert any("answered by spare after hand failed" in n for n in calls.notes)
    await podium.aclose()
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        rows = db.execute("SELECT tags, task_type, team FROM requests ORDER BY started_at").fetchall()
    assert any("role:worker" in tags and "subtask:s1" in tags and "work:r1" in tags for tags, _, _ in rows)
    assert {task for _, task, _ in rows} >= {"work-worker", "work-conductor"}
    assert {team for _, _, team in rows} == {"work-r1"}


async def test_reviewer_avoids_the_workers_provider(tmp_path: Path):
    podium = make(tmp_path)
    calls = calls_for(podium)
    assert (await calls.ask("reviewer", HI, avoid_provider="us")).model == "judge"
    assert (await calls.ask("reviewer", HI, avoid_provider="eu")).model == "hand"
    await podium.aclose()


async def test_one_budget_for_every_role_and_no_fallback_around_it(tmp_path: Path):
    podium = make(tmp_path, presets={"thrifty": {"conductor": ["hand"], "worker": ["boss", "hand"],
                                                 "reviewer": ["hand"]}})
    state = MemoryState()
    calls = calls_for(podium, "thrifty", budget_slots=(run_budget_slot("r1", 0.00025),), counters=state)
    spent = 0
    while True:  # the conductor spends the run's budget (each call holds its worst case: 200 tokens)
        try:
            await calls.ask("conductor", HI)
        except BudgetExceededError:
            break
        spent += 1
        assert spent < 100
    us = scripted(podium, "us")
    before = len(us.calls)
    with pytest.raises(BudgetExceededError):
        await calls.ask("worker", HI)  # boss is refused by the same budget, and its fallback is not tried
    assert len(us.calls) == before
    await podium.aclose()


async def test_deadline_stops_new_calls(tmp_path: Path):
    podium = make(tmp_path)
    calls = calls_for(podium, deadline=time.monotonic() - 1)
    with pytest.raises(DeadlineReached, match="deadline"):
        await calls.ask("worker", HI)
    await podium.aclose()


async def test_privacy_first_is_held_at_the_choke_point(tmp_path: Path):
    podium = make(tmp_path)
    # resolving the preset already leaves the US model out (so it is never in an agent's key either) …
    assert resolve_roles(podium.settings, podium.registry, "private").for_role("conductor") == ("spare",)
    # … and were it listed, the invoker every call passes refuses it
    roles = RoleModels("private", "privacy-first", {"conductor": ("boss", "spare"), "worker": ("hand", "spare"),
                                                    "reviewer": ("judge",)})
    calls = WorkCalls(podium, roles, run_id="r1", costs=RoleCosts())
    assert (await calls.ask("conductor", HI)).model == "spare"
    assert (await calls.ask("worker", HI)).model == "spare"
    assert "boss" not in [m for m, _ in scripted(podium, "us").calls]
    assert "hand" not in [m for m, _ in scripted(podium, "us").calls]
    assert any("boss refused" in n for n in calls.notes)
    await podium.aclose()


def test_presets_resolve_and_errors_name_the_key(tmp_path: Path):
    podium = make(tmp_path)
    roles = resolve_roles(podium.settings, podium.registry, "team")
    assert roles.for_role("worker") == ("hand", "spare")
    built_in = resolve_roles(podium.settings, podium.registry, "privacy-first")
    assert all(m in ("spare", "judge") for role in ("conductor", "worker", "reviewer")
               for m in built_in.for_role(role))  # EU models only
    production = resolve_roles(podium.settings, podium.registry, "production")
    assert production.for_role("conductor")[0] == "boss"  # the advanced tier conducts
    with pytest.raises(ConfigError, match="unknown work preset 'nope'"):
        resolve_roles(podium.settings, podium.registry, "nope")
    bad = make(tmp_path / "b" if (tmp_path / "b").mkdir() is None else tmp_path,
               presets={"x": {"conductor": ["bosss"], "worker": ["hand"], "reviewer": ["hand"]}})
    with pytest.raises(ConfigError, match=r"work.presets.x.conductor\[0\]"):
        resolve_roles(bad.settings, bad.registry, "x")
