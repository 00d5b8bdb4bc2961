"""``podium serve`` and ``podium keys``."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from podium.config import Settings, load_settings
from podium.errors import BadRequestError
from podium.server.keys import Keys, check_team

T = TypeVar("T")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def run_serve(*, host: str | None, port: int | None, no_auth: bool, config: str | None,
              log_level: str = "info") -> None:
    from podium.cli.stores import check_stores
    from podium.server.app import create_app

    configure_logging(log_level)
    settings = load_settings(config)
    if no_auth:
        settings.gateway.auth = "optional"
    check_stores(settings, gateway=True)  # PostgreSQL or Redis out of reach: one line now, not 503s later
    g = settings.gateway
    check_not_itself(settings, host or g.host, g.port if port is None else port)
    app = create_app(settings)
    run_uvicorn(app, settings, host=host or g.host, port=g.port if port is None else port,
                **uvicorn_options(header_timeout=g.header_timeout, idle_timeout=g.idle_timeout,
                                  body_timeout=g.body_timeout, max_header_bytes=g.max_header_bytes,
                                  log_level=log_level))


def uvicorn_options(*, header_timeout: float, idle_timeout: float, body_timeout: float = 30.0,
                    max_header_bytes: int = 65536, log_level: str = "info") -> dict[str, Any]:
    """uvicorn's settings for the gateway, apart from the address (the tests run a server with these too).

    uvicorn's access log stays off and its own logger at warning: the gateway writes one richer line
    per request itself (``podium.gateway``). uvicorn's own logging setup is skipped (``log_config``
    None): it would close every handler already installed, Podium's among them;
    ``configure_logging`` gives uvicorn's loggers Podium's handler instead. ``timeout_keep_alive``
    closes a connection idle after a response; the header timeout, one that has not finished sending
    its headers; the body timeout, one whose body has not all arrived that long after its headers; and
    headers over ``max_header_bytes`` are refused (see http_limits). On SIGTERM requests still running
    after ``SHUTDOWN_GRACE`` seconds are cancelled: their calls are accounted as cancelled and a local
    model stops generating, instead of the server waiting on them without end.
    """
    from podium.server.http_limits import with_header_timeout

    level = log_level.lower() if log_level.lower() in ("error", "critical") else "warning"
    protocol = with_header_timeout(header_timeout, body_timeout=body_timeout, max_header_bytes=max_header_bytes)
    return {"loop": "uvloop", "http": protocol, "timeout_keep_alive": idle_timeout, "log_level": level,
            "access_log": False, "log_config": None, "timeout_graceful_shutdown": SHUTDOWN_GRACE}


SHUTDOWN_GRACE = 15.0  # seconds a stopping gateway lets in-flight requests finish


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})


def check_not_itself(settings: Settings, host: str, port: int) -> None:
    """A provider whose base URL is this very gateway would send every request back to itself until the
    time limits end it. It happens when ``ANTHROPIC_BASE_URL`` or ``OPENAI_BASE_URL`` is exported for a
    client in the same shell that starts the gateway; refused here with one line that says so."""
    from urllib.parse import urlsplit

    if port == 0:
        return
    for spec in settings.providers.values():
        if not spec.enabled or not spec.base_url:
            continue
        try:
            url = urlsplit(spec.base_url)
            target_port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            continue
        if target_port == port and (url.hostname in _LOOPBACK or url.hostname == host):
            raise BadRequestError(f"provider '{spec.name}' points at this gateway itself ({spec.base_url}): a "
                                  "client's base-URL variable (ANTHROPIC_BASE_URL, OPENAI_BASE_URL, …) is set in "
                                  "the shell that starts the gateway; set it only for the client, or disable the "
                                  f"provider (providers: {{{spec.name}: {{enabled: false}}}})")


def run_uvicorn(app: Any, settings: Settings, *, host: str, port: int, **options: Any) -> None:
    """``uvicorn.run``, whose server also logs one line once its socket is bound (logger
    ``podium.serve``, info): the URL, with the port the system chose for ``--port 0``; whether keys
    are required; where the ledger is. uvicorn.run makes its server from ``uvicorn.main.Server``,
    so for the call that name is a subclass that adds the line."""
    import importlib
    import socket

    import uvicorn

    from podium.cli.stores import describe_ledger

    module = importlib.import_module("uvicorn.main")  # the package's ``uvicorn.main`` is the CLI command
    original = module.Server

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.started:
                return
            bound = [s.getsockname() for server in self.servers for s in server.sockets]
            real = bound[0][1] if bound and isinstance(bound[0], tuple) else port
            logging.getLogger("podium.serve").info(
                "listening on http://%s:%s (%s, ledger %s)", f"[{host}]" if ":" in host else host, real,
                f"auth {settings.gateway.auth}",
                describe_ledger(settings))

    setattr(module, "Server", Server)  # noqa: B010 (a module attribute mypy does not know)
    try:
        uvicorn.run(app, host=host, port=port, **options)
    finally:
        setattr(module, "Server", original)  # noqa: B010


class _LineFormatter(logging.Formatter):
    """ISO time to the second, formatted once per second rather than once per line."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second))
        return self._stamp


class _ServeHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Podium's lines to stderr through a buffer written out every quarter second (and at once for a
    warning or worse), so the per-request line costs the event loop no write system call of its own.
    Also marks the handler run_serve installs, so a second call replaces it instead of doubling lines."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        try:
            stream: Any = open(sys.stderr.fileno(), "w", buffering=1 << 16, closefd=False,  # noqa: SIM115 (kept)
                               encoding="utf-8", errors="replace")
        except (AttributeError, OSError, ValueError):  # stderr is not a file (captured, replaced): write through
            super().__init__(sys.stderr)
            self._buffered = False
            return
        super().__init__(stream)
        self._buffered = True
        threading.Thread(target=self._flush_every, args=(0.25,), name="podium-log", daemon=True).start()
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")
            if record.levelno >= logging.WARNING or not self._buffered:
                self.stream.flush()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # stderr closed at exit: nothing left to say
            super().flush()

    def _flush_every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self.flush()

    def stop(self) -> None:
        """Replaced by a new handler: write out what is buffered and end the flushing thread."""
        self._stop.set()
        self.flush()

    def close(self) -> None:
        self.flush()  # logging.shutdown closes every handler at exit; lines logged after it still get out
        super().close()


def configure_logging(log_level: str) -> None:
    """Podium's records (``podium.*``, the per-request line among them) to stderr, one line each.

    uvicorn configures only its own loggers; without a handler here an INFO record from ``podium.*``
    would reach Python's last-resort handler, which prints WARNING and above only, and bare. A record
    needs no thread or process names (they cost a third of each record's time).
    """
    level = log_level.lower()
    if level not in LOG_LEVELS:
        raise BadRequestError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not '{log_level}'")
    logger = logging.getLogger("podium")
    for old in [h for h in logger.handlers if isinstance(h, _ServeHandler)]:
        logger.removeHandler(old)
        old.stop()
    logging._srcfile = None  # no caller lookup (a stack walk per record): the lines say where they come from
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = _ServeHandler()
    handler.setFormatter(_LineFormatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    server = logging.getLogger("uvicorn")  # uvicorn's warnings and errors, in the same format
    for old in [h for h in server.handlers if isinstance(h, _ServeHandler)]:
        server.removeHandler(old)
    server.addHandler(handler)
    server.propagate = False


def _with_keys(config: str | None, action: Callable[[Keys], Awaitable[T]]) -> T:
    """Run ``action`` on the key store the gateway uses (PostgreSQL with a PostgreSQL ledger, else SQLite)."""
    from podium.cli.stores import check_keys_file, check_postgres
    from podium.server.app import open_keys
    from podium.server.keys_postgres import PostgresKeyStore

    settings = load_settings(config)
    if not settings.ledger_dsn or settings.gateway.keys_path:
        check_keys_file(settings)  # a file that cannot be written: one line, not a traceback
    keys = open_keys(settings)
    if settings.ledger_dsn and isinstance(keys, PostgresKeyStore):
        check_postgres(settings.ledger_dsn, "key store")  # out of reach: one line at once, not after the pool's wait

    async def run() -> T:
        try:
            return await action(keys)
        finally:
            await keys.aclose()

    return asyncio.run(run())


def run_keys_create(name: str, *, models: str | None, budget: float | None, period: str, rpm: int | None,
                    tpm: int | None, team: str | None, config: str | None) -> None:
    from podium.cli.key_options import new_key

    settings = load_settings(config)
    body = new_key(name, models=models, budget=budget, period=period, rpm=rpm, tpm=tpm, team=team, settings=settings)
    check_team(body.team, settings.gateway.teams)
    secret, key = _with_keys(config, lambda keys: keys.create(body.name, models=body.models, budget=body.budget,
                                                              budget_period=body.budget_period, rpm=body.rpm,
                                                              tpm=body.tpm, team=body.team))
    from podium.cli.render import console

    console.print(f"created {key.id} ({key.name}). The key, shown only now:")
    print(secret)


def run_keys_list(*, json_output: bool, config: str | None) -> None:
    keys = _with_keys(config, lambda store: store.list())
    if json_output:
        print(json.dumps([k.public() for k in keys], indent=2))
        return
    from rich.markup import escape

    from podium.cli import tables
    from podium.cli.render import console
    from podium.cli.tables import Column

    columns = (Column("id", identifier=True), Column("name", identifier=True, drop=1), Column("team", drop=4),
               Column("prefix", drop=5), Column("models", drop=3, wrap=True), Column("budget", drop=2),
               Column("rpm", drop=6), Column("tpm", drop=6), Column("state"))
    rows = [[escape(k.id), escape(k.name), escape(k.team or "-"), escape(k.prefix) + "…",
             escape(", ".join(k.models)) if k.models else "any",
             f"${k.budget:g}/{k.budget_period}" if k.budget else "-", str(k.rpm or "-"), str(k.tpm or "-"),
             "revoked" if k.revoked_at else "active"] for k in keys]
    tables.show(console, "virtual keys", columns, rows)


def run_keys_revoke(key_id: str, *, config: str | None) -> None:
    key = _with_keys(config, lambda keys: keys.revoke(key_id))
    from podium.cli.render import console

    console.print(f"revoked {key.id} ({key.name})")
