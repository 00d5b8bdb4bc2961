"""The dashboard without a gateway: ``podium dashboard --ledger FILE_OR_DSN``.

The same pages and endpoints over any ledger (a copy of production's SQLite file, or its PostgreSQL
database). On a loopback address no key is asked for: whoever can reach 127.0.0.1 can read the file
anyway. On any other address a key is required (``--key`` or ``$PODIUM_DASHBOARD_KEY``), compared in
constant time. Nothing live is shown (no circuits, no refusals): those live in a gateway's memory.
"""

from __future__ import annotations

import contextlib
import hmac
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from podium.catalogue import ModelInfo
from podium.dashboard.api import Authorize, Dashboard, _error, bearer, open_access
from podium.dashboard.reader import LedgerReader
from podium.errors import AuthenticationError, NotFoundError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def key_authorizer(key: str) -> Authorize:
    async def authorize(request: Request) -> str:
        secret = bearer(request)
        if not secret:
            raise AuthenticationError("this dashboard needs its key (Authorization: Bearer …)", code="missing_api_key")
        if not hmac.compare_digest(secret.encode(), key.encode()):
            raise AuthenticationError("wrong key", code="invalid_api_key")
        return "key"

    return authorize


class KeysFile:
    """``api.KeySource`` over a gateway's SQLite keys file, read-only: the public fields, no teams (they
    live in the gateway's config)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def teams(self) -> dict[str, dict[str, Any]]:
        return {}

    async def keys(self) -> list[dict[str, Any]]:
        import asyncio

        return await asyncio.to_thread(self._read)

    def _read(self) -> list[dict[str, Any]]:
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            return []
        try:
            rows = conn.execute("SELECT id, name, budget, budget_period, rpm, tpm, team, revoked_at FROM virtual_keys"
                                " ORDER BY created_at").fetchall()
        except sqlite3.Error:  # not a keys file, or one from before teams
            return []
        finally:
            conn.close()
        return [{"id": r[0], "name": r[1], "budget": r[2], "budget_period": r[3], "rpm": r[4], "tpm": r[5],
                 "team": r[6], "revoked": r[7] is not None} for r in rows]


def create_dashboard_app(reader: LedgerReader, baseline: ModelInfo | None, *, key: str | None = None,
                         keys_file: Path | None = None, refresh_seconds: int = 30) -> Starlette:
    source = KeysFile(keys_file) if keys_file is not None and keys_file.exists() else None
    dashboard = Dashboard(reader, baseline, key_authorizer(key) if key else open_access, None, source,
                          mode="ledger", refresh_seconds=refresh_seconds)

    async def home(request: Request) -> Response:
        return RedirectResponse("/dashboard/", 307)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await dashboard.aclose()

    async def not_found(request: Request, exc: Exception) -> Response:
        """Unknown URLs answer as the gateway's API does: OpenAI-style JSON, not Starlette's plain text."""
        return _error(NotFoundError(f"no such page or endpoint: {request.url.path[:200]}", code="not_found"))

    app = Starlette(routes=[Route("/", home, methods=["GET"]), *dashboard.routes()], lifespan=lifespan,
                    exception_handlers={404: not_found})
    app.state.dashboard = dashboard
    return app
