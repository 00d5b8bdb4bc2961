"""Virtual keys in PostgreSQL: with a PostgreSQL ledger, every gateway instance shares one set of keys.

Same table and columns as the SQLite store (``keys.COLUMNS``), hashes only; the table is created
under an advisory lock so instances starting together do not race. Lookups go through the same
bounded ``KeyCache``, so a revocation made on one host reaches every host within ``CACHE_SECONDS``.
A server that cannot be reached fails in seconds with ``StoreUnavailableError`` (``ledger.postgres.open_pool``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from podium.errors import NotFoundError
from podium.ledger.postgres import new_pool, open_pool
from podium.server.keys import COLUMNS, KeyCache, VirtualKey, hash_key, key_from_row, new_secret

_LOCK_ID = 0x70_6B_65_79_73  # "pkeys"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS virtual_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
    models TEXT, budget DOUBLE PRECISION, budget_period TEXT NOT NULL DEFAULT 'total', rpm INTEGER, tpm INTEGER,
    created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION, team TEXT
)"""


class PostgresKeyStore:
    def __init__(self, dsn: str, *, max_size: int = 4) -> None:
        self._dsn = dsn
        self._pool = new_pool(dsn, min_size=1, max_size=max_size)
        self._ready = False
        self.cache = KeyCache()

    async def _open(self) -> None:
        if self._ready:
            return
        await open_pool(self._pool, self._dsn, "key store")
        async with self._pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
            try:
                await conn.execute(_SCHEMA)
                await conn.commit()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
                await conn.commit()
        self._ready = True

    async def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        await self._open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            row = await cursor.fetchone()
        return tuple(row) if row is not None else None

    async def lookup(self, secret: str) -> VirtualKey | None:
        digest = hash_key(secret)
        hit, key = self.cache.get(digest)
        if hit:
            return key
        row = await self._one(f"SELECT {COLUMNS} FROM virtual_keys WHERE key_hash = %s AND revoked_at IS NULL",
                              (digest,))
        key = key_from_row(row) if row is not None else None
        self.cache.put(digest, key)
        return key

    async def get(self, key_id: str) -> VirtualKey:
        row = await self._one(f"SELECT {COLUMNS} FROM virtual_keys WHERE id = %s", (key_id,))
        if row is None:
            raise NotFoundError(f"no key with id '{key_id}'")
        return key_from_row(row)

    async def create(self, name: str, *, models: list[str] | None = None, budget: float | None = None,
                     budget_period: str = "total", rpm: int | None = None, tpm: int | None = None,
                     team: str | None = None, secret: str | None = None) -> tuple[str, VirtualKey]:
        fresh, key_id = new_secret()
        secret = secret or fresh
        await self._open()
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO virtual_keys (id, name, key_hash, prefix, models, budget, budget_period, rpm, tpm,"
                " created_at, team) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key_id, name, hash_key(secret), secret[:7], json.dumps(models) if models is not None else None,
                 budget, budget_period, rpm, tpm, time.time(), team))
        return secret, await self.get(key_id)

    async def list(self) -> list[VirtualKey]:
        await self._open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(f"SELECT {COLUMNS} FROM virtual_keys ORDER BY created_at")
            rows = await cursor.fetchall()
        return [key_from_row(tuple(r)) for r in rows]

    async def revoke(self, key_id: str) -> VirtualKey:
        await self._open()
        async with self._pool.connection() as conn:
            cursor = await conn.execute("UPDATE virtual_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                                        (time.time(), key_id))
            changed = cursor.rowcount
        if not changed:
            raise NotFoundError(f"no active key with id '{key_id}'")
        self.cache.clear()
        return await self.get(key_id)

    async def aclose(self) -> None:
        if not self._pool.closed:  # opened, even if it never connected
            await self._pool.close()
