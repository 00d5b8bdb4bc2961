"""Virtual keys: hashed at rest, a bounded lookup cache, and one set of keys in PostgreSQL shared by
every gateway instance (a revocation on one host reaches the others)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from podium.server.keys import KeyCache, KeyStore, SQLiteKeys, hash_key
from podium.server.keys_postgres import PostgresKeyStore


def test_the_lookup_cache_is_bounded_and_forgets_the_least_recent(tmp_path: Path):
    store = KeyStore(tmp_path / "keys.sqlite3")
    store.cache = KeyCache(seconds=60, entries=100)
    secret, key = store.create("real")
    for i in range(5_000):  # a flood of made-up keys
        assert store.lookup(f"pk-made-up-{i}") is None
    assert len(store.cache) == 100
    assert store.lookup(secret) == key
    store.close()


async def test_sqlite_keys_behind_the_async_protocol(tmp_path: Path):
    keys = SQLiteKeys(KeyStore(tmp_path / "keys.sqlite3"))
    secret, key = await keys.create("a", models=["echo"], budget=1.0, budget_period="day")
    assert await keys.lookup(secret) == key
    assert [k.id for k in await keys.list()] == [key.id]
    await keys.revoke(key.id)
    assert await keys.lookup(secret) is None
    await keys.aclose()


async def test_keys_in_postgres_are_shared_and_a_revocation_reaches_every_instance(dsn: str):
    first, second = PostgresKeyStore(dsn), PostgresKeyStore(dsn)
    try:
        secret, key = await first.create("shared", models=["echo", "panel"], budget=2.5, team=None)
        found = await second.lookup(secret)
        assert found is not None and found.models == ("echo", "panel") and found.budget == 2.5
        assert await second.lookup("pk-not-a-key") is None
        await first.revoke(key.id)
        second.cache.seconds = 0.0  # what CACHE_SECONDS later looks like
        assert await second.lookup(secret) is None
        assert [k.revoked_at is not None for k in await second.list()] == [True]
        import psycopg

        with psycopg.connect(dsn) as conn:  # hashes only
            stored = conn.execute("SELECT key_hash, prefix FROM virtual_keys").fetchall()
        assert stored == [(hash_key(secret), secret[:7])]
    finally:
        await first.aclose()
        await second.aclose()


def test_the_cli_creates_keys_where_the_gateway_reads_them(tmp_path: Path, dsn: str):
    config = tmp_path / "podium.yaml"
    config.write_text(json.dumps({"ledger": {"postgres_dsn": dsn}}))
    created = subprocess.run([sys.executable, "-m", "podium.cli", "keys", "create", "ci", "--models", "gpt-4o-mini",
                              "--config", str(config)], capture_output=True, text=True, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    import asyncio

    async def look() -> object:
        store = PostgresKeyStore(dsn)
        try:
            return await store.lookup(secret)
        finally:
            await store.aclose()

    key = asyncio.run(look())
    assert key is not None and key.models == ("gpt-4o-mini",)  # type: ignore[attr-defined]
    assert not (tmp_path / "keys.sqlite3").exists()


@pytest.mark.parametrize(("models", "scope"), [("gpt-4o", ("gpt-4o",)), ("", None), ("a,b", None),
                                               ("gpt-4o,,gpt-4o-mini", ("gpt-4o", "gpt-4o-mini"))])
def test_the_cli_reads_a_scope_as_a_comma_list_and_refuses_empty_or_unknown_ones(tmp_path: Path, models: str,
                                                                                 scope: tuple[str, ...] | None):
    config = tmp_path / "podium.yaml"
    config.write_text(json.dumps({"gateway": {"keys_path": str(tmp_path / "k.sqlite3")}}))
    result = subprocess.run([sys.executable, "-m", "podium.cli", "keys", "create", "x", "--models", models,
                             "--config", str(config)], capture_output=True, text=True, cwd=tmp_path)
    if scope is None:  # an empty scope would be no scope at all; an unknown name would reach nothing
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        return
    assert result.returncode == 0, result.stderr
    assert KeyStore(tmp_path / "k.sqlite3").list()[0].models == scope
