"""The services a command needs, checked before it starts: a PostgreSQL ledger, Redis, SQLite files.

A server that cannot be reached is one line within seconds (``StoreUnavailableError``: where, why,
what to do; never a password), not a 30-second wait and a page of retries. The stores fail fast
on their own too (``ledger.postgres.open_pool``), but a command that would only hear of it from
the middle of a request (``podium ask``, ``podium serve``) asks first. A SQLite ledger or key file
that cannot be created or written (a directory given as the file, a path under a regular file, a
directory the user may not write) is the same one line, before anything opens it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from podium.config import Settings
from podium.errors import StoreUnavailableError, redact

REDIS_TIMEOUT = 3.0  # seconds to connect and to answer PING


def check_postgres(dsn: str, what: str = "ledger") -> None:
    """Connect once (``CONNECT_TIMEOUT`` at most) and let go; StoreUnavailableError if that fails."""
    import psycopg

    from podium.ledger.postgres import connect_kwargs, unreachable

    try:
        psycopg.connect(dsn, **connect_kwargs(dsn)).close()
    except psycopg.Error as exc:
        raise unreachable(dsn, what, exc) from None


def redis_where(url: str) -> str:
    """host:port of a Redis URL (or its socket path), never its password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return "(an invalid URL)"


def check_redis(url: str) -> None:
    """PING Redis (``REDIS_TIMEOUT`` at most); StoreUnavailableError if it does not answer."""
    try:
        import redis
    except ImportError:  # the gateway explains a missing package itself
        return
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        text = " ".join(str(exc).split()).rstrip(".")[:200]
        why = redact(text[:1].lower() + text[1:], password, url) or type(exc).__name__
        raise StoreUnavailableError(f"cannot connect to Redis at {redis_where(url)} ({why}): start Redis there, "
                                    "fix gateway.redis_url, or set gateway.state: memory for one instance") from None


def check_sqlite(path: Path, what: str, fix: str) -> None:
    """Create (if need be) and write to the SQLite file at ``path``; StoreUnavailableError if that fails.

    A write, not just an open: SQLite opens a read-only file and fails only at the first write."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=5)
        try:
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock: fails on a file or directory we may not write
            conn.rollback()
        finally:
            conn.close()
    except (OSError, sqlite3.Error) as exc:
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        blocker = next((p for p in (path, *path.parents) if p.exists()), None)
        if blocker == path and path.is_dir():
            reason = "it is a directory; name a file in it"
        elif blocker is not None and blocker != path and not blocker.is_dir():
            reason = f"{blocker} is a file, not a directory"
        raise StoreUnavailableError(f"cannot write the {what} at {path} ({reason.rstrip('.')}): {fix}") from None


def check_stores(settings: Settings, *, gateway: bool = False) -> None:
    """The ledger (PostgreSQL, or its SQLite file); with ``gateway``, also the gateway's key store
    (there too, unless gateway.keys_path) and Redis when the gateway keeps its state there."""
    if settings.ledger_dsn:
        keys_there = gateway and not settings.gateway.keys_path
        check_postgres(settings.ledger_dsn, "ledger and key store" if keys_there else "ledger")
    elif settings.ledger_path is not None:
        check_sqlite(settings.ledger_path, "ledger", "set ledger.path (or $PODIUM_LEDGER) to a file you may "
                     "write, or ledger.enabled: false")
    if gateway and (not settings.ledger_dsn or settings.gateway.keys_path):
        check_keys_file(settings)
    if gateway and settings.gateway.state == "redis":
        check_redis(settings.gateway.redis_url)


def check_keys_file(settings: Settings) -> None:
    """The SQLite file of virtual keys (gateway.keys_path, or beside the ledger)."""
    from podium.server.app import keys_path

    check_sqlite(keys_path(settings), "key store", "set gateway.keys_path to a file you may write")


def describe_ledger(settings: Settings) -> str:
    """Where the ledger is, for a status line: the SQLite file, or PostgreSQL's host:port (no password)."""
    if settings.ledger_dsn:
        from podium.ledger.postgres import where

        return f"PostgreSQL at {where(settings.ledger_dsn)}"
    return str(settings.ledger_path) if settings.ledger_path else "off"
