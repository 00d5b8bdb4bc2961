"""The promises across instances: two gateways share Redis (budgets, limits, circuits) and one
PostgreSQL ledger and key store, and 64 requests of one key with a budget and a team budget arrive
at both at once, with random strategies and failures (the worlds of ``test_properties``).

Checked as there: scope, regions, no 500, one ledger row per answer, and the budget: what Redis says
the key and its team spent is at most the budget plus the largest single call's worst case, and equals
what the ledger's calls cost (every hold released, on both instances).

Redis db 9 is flushed before each example (the gateway takes no key prefix); each example has a
PostgreSQL schema of its own. ``PODIUM_SHARED_EXAMPLES`` sets the example count (default 10).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import require_redis, require_server
from podium.catalogue import ModelInfo
from podium.client import Podium
from podium.config import load_settings
from podium.policy import BudgetSlot, RequestPolicy
from podium.server.state import RedisState
from test_properties import (
    PROFILE,
    Outcome,
    Req,
    Run,
    World,
    asgi_post,
    calls_by_tag,
    check,
    http_outcome,
    install,
    scope_of,
    scripted,
    worlds,
    write,
)

EXAMPLES = int(os.environ.get("PODIUM_SHARED_EXAMPLES", "0") or 0) or 10
REDIS_URL = "redis://127.0.0.1:6379/9"
PG = "host=127.0.0.1 port=5432 dbname=test user=postgres"
CONCURRENT = 64


@contextmanager
def schema() -> Iterator[str]:
    name = f"podium_prop_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{PG} options=-csearch_path={name}"
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


@st.composite
def shared_worlds(draw: st.DrawFn) -> World:
    world = draw(worlds(concurrency=False, requests=(CONCURRENT, CONCURRENT)))
    return replace(world, concurrent=True, key_budget=draw(st.sampled_from([1e-4, 1e-3, 0.01, 0.05])),
                   team_budget=draw(st.sampled_from([5e-4, 0.005, 0.05, 1.0])))


async def run_shared(world: World, directory: Path, dsn: str) -> Run:
    path = write(world, directory, state="redis", redis_url=REDIS_URL)
    data = json.loads(path.read_text())
    data["ledger"] = {"postgres_dsn": dsn}
    data["gateway"].pop("keys_path")  # keys in PostgreSQL too, shared by both instances
    path.write_text(json.dumps(data))
    from podium.server.app import create_app

    instances = []
    for _ in range(2):
        loaded = load_settings(path)
        podium = Podium(loaded)
        app = create_app(loaded, podium=podium)
        providers = scripted(podium)
        install(world, providers)
        if podium.caller.shared is not None:
            podium.caller.shared.start()
        instances.append((app, podium, providers))
    first = instances[0][0].state.gateway
    secret, key = await first.keys.create("p", models=world.key_models, budget=world.key_budget,
                                          team="t" if world.team_budget is not None else None)
    headers = {"authorization": f"Bearer {secret}"}

    async def send(index: int, req: Req) -> Outcome:
        app = instances[index % 2][0]  # alternately to each instance
        status, answer_headers, raw = await asgi_post(app, "/v1/chat/completions", json.dumps(req.body()).encode(),
                                                      headers, req.leave_after if req.stream else None)
        return http_outcome(req, status, answer_headers, raw)

    outcomes = list(await asyncio.gather(*(send(i, req) for i, req in enumerate(world.requests))))
    limits = {f"{key.id}:total": world.key_budget or 0.0, "team:t:total": world.team_budget or 0.0}
    state = first.state
    spent = {slot: await state.spent(slot) for slot in limits}
    tagged: dict[str, list[Any]] = {}
    catalogue = {}
    for app, podium, providers in instances:
        for tag, calls in calls_by_tag(providers).items():
            tagged.setdefault(tag, []).extend(calls)
        catalogue = {name: podium.settings.catalogue.get(name) for name in world.models}
        gateway = app.state.gateway
        if podium.caller.shared is not None:
            await podium.caller.shared.stop()
        await podium.aclose()  # the ledger drains
        await gateway.state.aclose()
        if gateway.cache is not None and hasattr(gateway.cache, "aclose"):
            await gateway.cache.aclose()
        await gateway.keys.aclose()
    for outcome in outcomes:
        outcome.calls = tagged.get(outcome.req.tag, [])
    rows: dict[str, list[tuple[str, float]]] = {}
    key_cost = 0.0
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('requests')").fetchone() != (None,):  # None: nothing was written
            for request_id, status, cost in conn.execute("SELECT request_id, status, cost FROM requests"):
                rows.setdefault(request_id, []).append((status, cost))
            found = conn.execute("SELECT COALESCE(SUM(c.cost), 0) FROM calls c JOIN requests r "
                                 "USING (request_id) WHERE r.key_id = %s", (key.id,)).fetchone()
            key_cost = float(found[0]) if found else 0.0
    return Run(outcomes, spent, limits, rows, key_cost, None, catalogue)


@settings(max_examples=EXAMPLES, **PROFILE)
@given(shared_worlds())
def test_two_gateways_sharing_redis_and_postgres_keep_the_promises(world: World):
    require_redis()
    require_server("PostgreSQL", 5432)
    flush_redis()
    with tempfile.TemporaryDirectory() as tmp, schema() as dsn:
        directory = Path(tmp)
        scope = scope_of(world, directory)
        run = asyncio.run(run_shared(world, directory, dsn))
        check(world, run, scope, "shared")


class SlowReply:
    """Redis counters whose replies are read a moment after Redis has run the command (as on any network):
    ``sent`` is set once the reservation has gone out."""

    remote = True  # a Redis round trip: a cancellation can arrive while it is on its way

    def __init__(self, state: RedisState) -> None:
        self.state, self.sent = state, asyncio.Event()

    async def take(self, buckets: list[tuple[str, int, float]]) -> tuple[bool, float]:
        return await self.state.take(buckets)

    async def give_back(self, key: str, per_minute: int, amount: float) -> None:
        await self.state.give_back(key, per_minute, amount)

    async def reserve(self, slots: list[BudgetSlot], amount: float) -> tuple[int, float]:
        result = await self.state.reserve(slots, amount)  # done in Redis
        self.sent.set()
        await asyncio.sleep(0.05)  # the reply on its way back
        return result

    async def settle(self, key: str, delta: float) -> None:
        await self.state.settle(key, delta)


async def test_a_hold_cancelled_during_its_redis_reservation_is_released():
    require_redis()
    state = RedisState(REDIS_URL, prefix=f"podium-prop:{uuid.uuid4().hex}:")
    counters = SlowReply(state)
    model = ModelInfo(name="m", display_name="m", provider="p", model_id="m", context_window=8000, input_price=1.0,
                      output_price=1.0, tier="fast", region="us")
    policy = RequestPolicy(request_id="req_1", budgets=(BudgetSlot("k", 1.0),), counters=counters)
    task = asyncio.ensure_future(policy.hold(model, 100, 100))  # worst case $0.0002
    await counters.sent.wait()
    task.cancel()  # the caller goes away: no call is made, nothing may stay held
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    spent = await state.spent("k")
    await state.aclose()
    assert spent == 0.0, f"${spent:.6f} stays held for a call that was never made"
