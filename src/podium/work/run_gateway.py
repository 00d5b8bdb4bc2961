"""Podium's own gateway, started for one work run, so external coding agents call models through Podium.

An agent (Aider, Claude Code, Codex, …) only knows how to talk to an HTTP endpoint. Pointing it at a
gateway started for the run — in this process, on 127.0.0.1 with a port the system picks, sharing the
run's ``Podium`` — puts every call it makes through the same choke point as the run's own calls: routed,
held to the run's preset and budget, and written to the ledger.

    RunGateway(podium, run_id, budget=2.0)
      ├─ keys: a SQLite file in a temp dir of the run; auth required; one key per subtask
      │        (``work-<run>-<subtask>``), scoped to the worker role's models (+ ``auto``), in team
      │        ``work-<run>`` (``run_team``)
      ├─ budget: ``gateway.teams[work-<run>] = {budget, period: total}``: the agents' calls hold and settle in
      │        the counter ``team:work-<run>:total`` of ``state`` (a MemoryState); the run's own calls are
      │        built with ``budget_slots()`` and ``state`` as their counters, so both draw from one counter
      └─ spent(key): what one key's calls cost, from the ledger (attributed to the worker role)

The run owns its ``Podium``: the gateway never closes it (uvicorn's lifespan is off; the gateway's keys
store and state are closed here). uvicorn's signal handlers are not installed either: Ctrl-C belongs to
the run, which stops the agents first and then this gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import shutil
import socket
import tempfile
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from pydantic import SecretStr

from podium.client import Podium
from podium.config import Settings
from podium.config.schema import TeamConfig
from podium.errors import BadRequestError, PodiumError
from podium.policy import BudgetSlot
from podium.server.keys import SQLiteKeys, VirtualKey
from podium.server.middleware import MIDDLEWARE
from podium.server.state import SharedState
from podium.work.contracts import run_team

log = logging.getLogger("podium.work")

_STOP_SECONDS = 5.0  # how long requests still in flight may take once the run is over


class GatewayStartError(PodiumError):
    """The run's gateway could not start (its socket, its keys store)."""


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: SIGINT and SIGTERM belong to the run."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class RunGateway:
    """Podium's gateway for one work run. ``async with RunGateway(podium, run_id, budget=…) as gw`` (or
    ``await gw.start()`` … ``await gw.stop()``); ``gw.base_url`` is ``http://127.0.0.1:<port>/v1``."""

    def __init__(self, podium: Podium, run_id: str, *, budget: float | None = None) -> None:
        if budget is not None and not budget > 0:
            raise BadRequestError(f"the run's budget must be a positive number of dollars, not {budget!r}")
        self.podium, self.run_id, self.budget = podium, run_id, budget
        self.team = run_team(run_id)
        self._state: SharedState | None = None
        self.port = 0
        self._dir: Path | None = None
        self._keys: SQLiteKeys | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self._issued: dict[tuple[str, tuple[str, ...]], tuple[str, VirtualKey]] = {}
        self._gateway: Any = None  # the Starlette app's Gateway, while serving
        self.budget_refused = asyncio.Event()  # set when the gateway refused one of the run's calls for budget

    # --- addresses ------------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>``: what Anthropic's clients take as a base URL (they add ``/v1/messages``)."""
        if not self.port:
            raise GatewayStartError("the run's gateway is not running; start it first (async with RunGateway(...))")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: what OpenAI's clients take (Chat Completions, Responses)."""
        return self.root_url + "/v1"

    # --- the budget -------------------------------------------------------------------------------
    @property
    def state(self) -> SharedState:
        """The gateway's counters (a MemoryState): where the run's budget is held, for the run's own calls too."""
        if self._state is None:
            raise GatewayStartError("the run's gateway is not running; start it first (async with RunGateway(...))")
        return self._state

    def budget_slots(self) -> list[BudgetSlot]:
        """The run's budget counter, for the run's own calls (with ``state`` as their counters): the very
        slot the gateway holds its agents' calls in, so one budget covers both."""
        if self.budget is None:
            return []
        return [BudgetSlot(f"team:{self.team}:total", self.budget, 0, f"work package run {self.run_id}", "total",
                           team=self.team)]

    def settings(self) -> Settings:
        """The gateway's settings: the run's, with a private keys store, auth required, memory state, the
        run's team and its budget, an admin key nobody knows, no dashboard, no CORS."""
        assert self._dir is not None
        g = self.podium.settings.gateway
        order = [name for name in MIDDLEWARE if name in g.middleware or name in ("auth", "budget")]
        gateway = g.model_copy(update={
            "host": "127.0.0.1", "auth": "required", "keys_path": str(self._dir / "keys.sqlite3"), "state": "memory",
            "admin_key": SecretStr(secrets.token_urlsafe(32)), "cors_origins": [], "middleware": order,
            "teams": {self.team: TeamConfig(budget=self.budget, budget_period="total")},
            "cache": g.cache.model_copy(update={"semantic": False}),
        })
        dashboard = self.podium.settings.dashboard.model_copy(update={"enabled": False})
        return dataclasses.replace(self.podium.settings, gateway=gateway, dashboard=dashboard)

    # --- start and stop ---------------------------------------------------------------------------
    async def __aenter__(self) -> RunGateway:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._task is not None:
            return
        from podium.cli.serve import uvicorn_options
        from podium.server.app import create_app

        self._dir = Path(tempfile.mkdtemp(prefix=f"podium-run-{self.run_id[:40]}-"))
        try:
            settings = self.settings()
            inner = create_app(settings, podium=self.podium)
            gateway = inner.state.gateway
            app = self._watched(inner)
            if not isinstance(gateway.keys, SQLiteKeys):  # keys_path is set: always the private SQLite file
                raise GatewayStartError("the run's gateway needs its own SQLite keys store")
            self._state, self._keys = gateway.state, gateway.keys
            self._gateway = gateway
            await self._seed()
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket = sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            sock.setblocking(False)
            self.port = sock.getsockname()[1]
            g = settings.gateway
            options = uvicorn_options(header_timeout=g.header_timeout, idle_timeout=g.idle_timeout,
                                      body_timeout=g.body_timeout, max_header_bytes=g.max_header_bytes,
                                      log_level="warning")
            options.update(lifespan="off", timeout_graceful_shutdown=_STOP_SECONDS)
            self._server = _Server(uvicorn.Config(app, **options))
            self._task = asyncio.create_task(self._server.serve(sockets=[sock]),
                                             name=f"podium-run-gateway-{self.run_id}")
            await self._started()
        except BaseException:
            await self.stop()
            raise
        log.info("work run %s: gateway on %s", self.run_id, self.base_url)

    def _watched(self, app: Any) -> Any:
        """The gateway's app (built by ``create_app`` over the run's ``Podium`` under the gateway's own settings:
        auth, middleware and teams from them; model calls through the run's instance), watched for the run's
        budget refusals: an agent's client takes that 429 for a rate limit and retries for minutes, so the run
        stops the agent instead (``budget_refused``)."""
        refused = self.budget_refused

        async def watched(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = 0

            async def watch(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                elif status == 429 and b"insufficient_quota" in message.get("body", b""):
                    refused.set()
                await send(message)

            await app(scope, receive, watch)

        return watched

    async def _seed(self) -> None:
        """The run's counter starts from what the ledger says the run's team has spent (a resumed run)."""
        from podium.work.calls import seed_run_budget

        for slot in self.budget_slots():
            await seed_run_budget(self.podium, self.state, slot)

    async def _started(self) -> None:
        assert self._task is not None
        assert self._server is not None
        for _ in range(500):
            if self._server.started:
                return
            if self._task.done():
                break
            await asyncio.sleep(0.01)
        error = self._task.exception() if self._task.done() and not self._task.cancelled() else None
        raise GatewayStartError(f"the run's gateway did not start on 127.0.0.1:{self.port}"
                                + (f" ({type(error).__name__}: {error})" if error else ""))

    async def stop(self) -> None:
        """Stop serving (requests in flight get a few seconds), close the keys store, remove the temp dir.
        Idempotent; never closes the run's ``Podium``."""
        task, server = self._task, self._server
        self._task = self._server = None
        if task is not None and server is not None:
            server.should_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(task), _STOP_SECONDS + 2.0)
            except (asyncio.TimeoutError, Exception):  # noqa: UP041 — asyncio.wait_for's, on 3.11 too
                server.force_exit = True
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._gateway is not None:  # uvicorn runs without lifespan here: the gateway's own tasks end now
            self._gateway.client_watch.close()
            self._gateway = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._keys is not None:
            await self._keys.aclose()
            self._keys = None
        if self._state is not None:
            await self._state.aclose()  # a MemoryState: nothing to close; kept readable for the run's report
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self.port = 0
        self._issued.clear()

    # --- keys and what they spent -------------------------------------------------------------------
    async def key_for(self, subtask_id: str, models: list[str]) -> str:
        """A virtual key for one subtask's agent: named ``work-<run>-<subtask>``, scoped to ``models``
        (+ ``auto``), in the run's team. The same subtask and models get the same key again."""
        if self._keys is None:
            raise GatewayStartError("the run's gateway is not running; start it before asking for keys")
        scope = tuple(dict.fromkeys([*models, "auto"]))
        unknown = self.podium.policies.unknown_names(list(scope))
        if unknown:
            raise BadRequestError(f"the worker role's models are not known here: {'; '.join(unknown[:3])}",
                                  code="unknown_model")
        issued = self._issued.get((subtask_id, scope))
        if issued is not None:
            return issued[0]
        # the store is a private file of this run: written inline (no thread left behind by the run)
        secret, key = self._keys.store.create(f"work-{self.run_id}-{subtask_id}", models=list(scope), team=self.team)
        self._issued[(subtask_id, scope)] = (secret, key)
        return secret

    def issued(self) -> list[str]:
        """The ids of the keys this run's gateway issued (one per subtask that ran an agent)."""
        return [record.id for _secret, record in self._issued.values()]

    def key_id(self, key: str) -> str | None:
        """The id of a key this gateway issued, by its id, its name or its secret."""
        for secret, record in self._issued.values():
            if key in (record.id, record.name, secret):
                return record.id
        return None

    async def spent(self, key: str) -> float:
        """What the calls made with one of this run's keys (by id, name or secret) cost so far, in USD, from
        the ledger (its buffered rows committed first). 0.0 without a ledger."""
        key_id = self.key_id(key)
        if key_id is None:
            raise BadRequestError("no key by that id or name was issued by this run's gateway")
        ledger = self.podium.ledger
        if ledger is None:
            return 0.0
        return await ledger.spent_since(0.0, key_id=key_id)


