"""Virtual keys: what a client presents instead of a provider key.

Keys are shown once at creation and stored only as SHA-256 hashes (a leaked database reveals no
usable key). Each key may be limited to some models or strategies (its scopes), a budget per
period, and RPM/TPM limits. Lookups are cached for a few seconds (``KeyCache``: bounded, so a flood
of made-up keys cannot grow it) so the hot path does not touch the database; a revocation takes
effect within that time on every instance.

Two stores: ``KeyStore`` (SQLite, beside the ledger; synchronous, for the CLI and tests too) and
``PostgresKeyStore`` (with a PostgreSQL ledger, so gateways on several hosts share one set of keys).
The gateway speaks to either through the async ``Keys`` protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from podium.errors import BadRequestError, NotFoundError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS virtual_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL,
    models TEXT, budget DOUBLE PRECISION, budget_period TEXT NOT NULL DEFAULT 'total', rpm INTEGER, tpm INTEGER,
    created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION
);
"""
_ADD_TEAM = "ALTER TABLE virtual_keys ADD COLUMN team TEXT"  # keys databases made before teams existed
CACHE_SECONDS = 5.0
CACHE_ENTRIES = 10_000
COLUMNS = "id, name, prefix, models, budget, budget_period, rpm, tpm, created_at, revoked_at, team"


@dataclass(frozen=True)
class VirtualKey:
    id: str
    name: str
    prefix: str
    models: tuple[str, ...] | None
    budget: float | None
    budget_period: str
    rpm: int | None
    tpm: int | None
    created_at: float
    revoked_at: float | None = None
    team: str | None = None

    def allows(self, model: str | None) -> bool:
        if self.models is None:
            return True
        return (model or "auto") in self.models

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "prefix": self.prefix, "models": self.models,
                "budget": self.budget, "budget_period": self.budget_period, "rpm": self.rpm, "tpm": self.tpm,
                "team": self.team, "created_at": self.created_at, "revoked": self.revoked_at is not None}


def key_from_row(row: tuple[Any, ...]) -> VirtualKey:
    """A ``VirtualKey`` from a row in ``COLUMNS`` order (both stores)."""
    models = json.loads(str(row[3])) if row[3] else None
    return VirtualKey(str(row[0]), str(row[1]), str(row[2]), tuple(models) if models is not None else None,
                      row[4], str(row[5]), row[6], row[7], float(row[8]), row[9], row[10])


def new_secret() -> tuple[str, str]:
    """A fresh key and its id."""
    return "pk-" + secrets.token_urlsafe(32), "key_" + secrets.token_hex(6)


class KeyCache:
    """Recent lookups, known and unknown keys alike, for ``CACHE_SECONDS``; at most ``CACHE_ENTRIES``
    (least recently used go first), so presenting millions of made-up keys costs bounded memory."""

    def __init__(self, seconds: float = CACHE_SECONDS, entries: int = CACHE_ENTRIES) -> None:
        self.seconds, self.entries = seconds, entries
        self._found: OrderedDict[str, tuple[float, VirtualKey | None]] = OrderedDict()

    def get(self, digest: str) -> tuple[bool, VirtualKey | None]:
        cached = self._found.get(digest)
        if cached is None or time.monotonic() - cached[0] >= self.seconds:
            return False, None
        self._found.move_to_end(digest)
        return True, cached[1]

    def put(self, digest: str, key: VirtualKey | None) -> None:
        self._found[digest] = (time.monotonic(), key)
        self._found.move_to_end(digest)
        while len(self._found) > self.entries:
            self._found.popitem(last=False)

    def clear(self) -> None:
        self._found.clear()

    def __len__(self) -> int:
        return len(self._found)


class Keys(Protocol):
    """What the gateway needs of a key store (SQLite or PostgreSQL)."""

    async def lookup(self, secret: str) -> VirtualKey | None: ...

    async def create(self, name: str, *, models: list[str] | None = None, budget: float | None = None,
                     budget_period: str = "total", rpm: int | None = None, tpm: int | None = None,
                     team: str | None = None, secret: str | None = None) -> tuple[str, VirtualKey]: ...

    async def list(self) -> list[VirtualKey]: ...

    async def revoke(self, key_id: str) -> VirtualKey: ...

    async def aclose(self) -> None: ...


def check_team(team: str | None, teams: Collection[str]) -> None:
    """A key may only join a team the config defines (else its team budget would silently not apply)."""
    if team is not None and team not in teams:
        known = ", ".join(sorted(teams)) or "none defined; add them under gateway.teams"
        raise BadRequestError(f"unknown team '{team}' (teams: {known})")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        if "team" not in {row[1] for row in self._conn.execute("PRAGMA table_info(virtual_keys)")}:
            with self._conn:
                self._conn.execute(_ADD_TEAM)
        self._lock = threading.Lock()
        self.cache = KeyCache()

    def create(self, name: str, *, models: list[str] | None = None, budget: float | None = None,
               budget_period: str = "total", rpm: int | None = None, tpm: int | None = None,
               team: str | None = None, secret: str | None = None) -> tuple[str, VirtualKey]:
        """Returns the key itself (shown once) and its record.

        ``secret`` imports an existing key (e.g. one a client already has configured) instead of minting one.
        """
        fresh, key_id = new_secret()
        secret = secret or fresh
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT INTO virtual_keys (id, name, key_hash, prefix, models, budget, budget_period, rpm, tpm,"
                " created_at, team) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, name, hash_key(secret), secret[:7], json.dumps(models) if models is not None else None,
                 budget, budget_period, rpm, tpm, time.time(), team))
        return secret, self.get(key_id)

    def get(self, key_id: str) -> VirtualKey:
        with self._lock:
            row = self._conn.execute(f"SELECT {COLUMNS} FROM virtual_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no key with id '{key_id}'")
        return key_from_row(row)

    def lookup(self, secret: str) -> VirtualKey | None:
        """The live key for a presented secret, or None (unknown or revoked)."""
        digest = hash_key(secret)
        hit, key = self.cache.get(digest)
        if hit:
            return key
        with self._lock:
            row = self._conn.execute(f"SELECT {COLUMNS} FROM virtual_keys WHERE key_hash = ?"
                                     " AND revoked_at IS NULL", (digest,)).fetchone()
        key = key_from_row(row) if row is not None else None
        self.cache.put(digest, key)
        return key

    def list(self) -> list[VirtualKey]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {COLUMNS} FROM virtual_keys ORDER BY created_at").fetchall()
        return [key_from_row(r) for r in rows]

    def revoke(self, key_id: str) -> VirtualKey:
        with self._lock, self._conn:
            changed = self._conn.execute("UPDATE virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                         (time.time(), key_id)).rowcount
        if not changed:
            raise NotFoundError(f"no active key with id '{key_id}'")
        self.cache.clear()
        return self.get(key_id)

    def close(self) -> None:
        self._conn.close()


class SQLiteKeys:
    """``KeyStore`` behind the async ``Keys`` protocol. Cached lookups answer inline; a miss reads one
    indexed row (microseconds, a local file); writes, which may wait for SQLite's lock, run in a thread."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    async def lookup(self, secret: str) -> VirtualKey | None:
        return self.store.lookup(secret)

    async def create(self, name: str, *, models: list[str] | None = None, budget: float | None = None,
                     budget_period: str = "total", rpm: int | None = None, tpm: int | None = None,
                     team: str | None = None, secret: str | None = None) -> tuple[str, VirtualKey]:
        return await asyncio.to_thread(self.store.create, name, models=models, budget=budget,
                                       budget_period=budget_period, rpm=rpm, tpm=tpm, team=team, secret=secret)

    async def list(self) -> list[VirtualKey]:
        return await asyncio.to_thread(self.store.list)

    async def revoke(self, key_id: str) -> VirtualKey:
        return await asyncio.to_thread(self.store.revoke, key_id)

    async def aclose(self) -> None:
        self.store.close()
