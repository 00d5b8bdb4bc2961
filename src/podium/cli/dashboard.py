"""``podium dashboard``: the dashboard's pages over a ledger, without a gateway.

``--ledger`` takes a SQLite file or a PostgreSQL DSN (``postgresql://…`` or ``host=… dbname=…``);
without it, the ledger the config names. The ledger is only ever read: a SQLite file is opened
read-only (``mode=ro``) and never migrated, so pointing the viewer at a copy, at production's file or
at the wrong file changes nothing (the pages read older schemas defensively: what a migration has not
added yet is shown as absent). Everything is checked before the server starts, each failure one line
and exit 2: a file that is not a Podium ledger, a PostgreSQL server that cannot be reached (its
password never shown), a ``--keys`` file that is not a keys file, a port out of range or in use, a
refresh the config would refuse. On a loopback address the pages need no key; on any other a key is
required (``--key`` or ``$PODIUM_DASHBOARD_KEY``) and the browser asks for it once per tab.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from pathlib import Path

from podium.errors import BadRequestError, ConfigError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_REFRESH = 3600  # the config's bound (dashboard.refresh_seconds)


def is_dsn(ledger: str) -> bool:
    return ledger.startswith(("postgresql://", "postgres://")) or ("dbname=" in ledger and "=" in ledger.split()[0])


def _has_table(path: Path, table: str) -> bool:
    """Whether the SQLite file at ``path`` holds ``table``, read-only: False for an empty file or one
    that is not a database at all (opening it read-only creates and changes nothing)."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    except sqlite3.Error:  # "file is not a database", encrypted, unreadable
        return False
    finally:
        conn.close()
    return found is not None


def check_sqlite_ledger(path: Path) -> None:
    if not path.is_file():
        raise BadRequestError(f"no ledger at {path}")
    if not _has_table(path, "requests"):
        raise BadRequestError(f"{path} is not a Podium ledger (no 'requests' table in a SQLite database)")


def check_postgres_ledger(dsn: str) -> None:
    """Reach the server now, not on the first page load: an unreachable or wrong database is one line."""
    import psycopg

    from podium.ledger.postgres import connect_kwargs, unreachable, where

    try:
        with psycopg.connect(dsn, autocommit=True, **connect_kwargs(dsn)) as conn:
            found = conn.execute("SELECT to_regclass('requests')").fetchone()
    except psycopg.Error as exc:
        raise unreachable(dsn, "ledger", exc) from None
    if found is None or found[0] is None:
        raise BadRequestError(f"the PostgreSQL database at {where(dsn)} is not a Podium ledger (no 'requests' table)")


def check_keys_file(path: Path) -> None:
    if not path.is_file():
        raise BadRequestError(f"no keys file at {path}")
    if not _has_table(path, "virtual_keys"):
        raise BadRequestError(f"{path} is not a Podium keys file (no 'virtual_keys' table in a SQLite database)")


def check_refresh(refresh: int | None) -> None:
    if refresh is not None and not 0 <= refresh <= MAX_REFRESH:
        raise BadRequestError(f"--refresh must be 0 (off) or a number of seconds up to {MAX_REFRESH}, not {refresh}")


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts: a port in use is one line, exit 2 (not
    uvicorn's log and exit 3), and nothing can take the port between the check and the server."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise BadRequestError(f"cannot listen on {host}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise BadRequestError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def run_dashboard(*, ledger: str | None, host: str, port: int, key: str | None, keys_file: str | None,
                  config: str | None, refresh: int | None) -> None:
    import uvicorn

    from podium.cli.render import console
    from podium.config import load_settings
    from podium.dashboard.reader import open_reader
    from podium.dashboard.standalone import create_dashboard_app

    check_refresh(refresh)
    if not 1 <= port <= 65535:
        raise BadRequestError(f"--port must be from 1 to 65535, not {port}")
    settings = load_settings(config)
    key = key or os.environ.get("PODIUM_DASHBOARD_KEY") or None
    if host not in LOOPBACK and not key:
        raise BadRequestError(f"the dashboard would be open to anyone who can reach {host}: give it a key "
                              "(--key or $PODIUM_DASHBOARD_KEY), or listen on 127.0.0.1")
    dsn: str | None = None
    path: Path | None = None
    if ledger:
        if is_dsn(ledger):
            dsn = ledger
        else:
            path = Path(ledger).expanduser()
    else:
        dsn, path = settings.ledger_dsn, settings.ledger_path
        if dsn is None and path is None:
            raise ConfigError("the ledger is disabled (ledger.enabled: false): give one with --ledger FILE_OR_DSN")
    if path is not None:
        check_sqlite_ledger(path)
    elif dsn is not None:
        check_postgres_ledger(dsn)
    keys: Path | None = None
    if keys_file:
        keys = Path(keys_file).expanduser()
        check_keys_file(keys)
    elif path is not None and _has_table(path.parent / "keys.sqlite3", "virtual_keys"):
        keys = path.parent / "keys.sqlite3"  # a gateway's keys beside its ledger, when there are any
    sock = listen(host, port)
    reader = open_reader(path=path, dsn=dsn)
    app = create_dashboard_app(reader, settings.catalogue.find(settings.routing.baseline_model), key=key,
                               keys_file=keys, refresh_seconds=settings.dashboard.refresh_seconds
                               if refresh is None else refresh)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"Podium dashboard on http://{shown}:{port}/dashboard/ · ledger: {reader.describe()}"
                  + (" · key required" if key else " · no key (loopback)"), highlight=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
