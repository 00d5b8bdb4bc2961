"""``podium dashboard``: the dashboard's pages over a ledger, without a gateway.

``--ledger`` takes a SQLite file or a PostgreSQL DSN (``postgresql://…`` or ``host=… dbname=…``);
without it, the ledger the config names. A SQLite file is brought to the current schema first (as
``podium report`` does; its indexes make the pages fast), unless it cannot be written, when it is
read as it is. On a loopback address the pages need no key; on any other a key is required
(``--key`` or ``$PODIUM_DASHBOARD_KEY``) and the browser asks for it once per tab.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from podium.errors import BadRequestError, ConfigError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def is_dsn(ledger: str) -> bool:
    return ledger.startswith(("postgresql://", "postgres://")) or ("dbname=" in ledger and "=" in ledger.split()[0])


def run_dashboard(*, ledger: str | None, host: str, port: int, key: str | None, keys_file: str | None,
                  config: str | None, refresh: int | None) -> None:
    import uvicorn

    from podium.cli.render import console
    from podium.config import load_settings
    from podium.dashboard.reader import open_reader
    from podium.dashboard.standalone import create_dashboard_app
    from podium.ledger.sqlite import connect

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
        if not path.is_file():
            raise BadRequestError(f"no ledger at {path}")
        try:
            connect(path).close()  # the current schema and its indexes (migrations are safe to run twice)
        except sqlite3.OperationalError as exc:
            console.print(f"[yellow]reading {path} as it is (it cannot be migrated: {exc})[/]", highlight=False)
    keys = Path(keys_file).expanduser() if keys_file else (path.parent / "keys.sqlite3" if path else None)
    reader = open_reader(path=path, dsn=dsn)
    app = create_dashboard_app(reader, settings.catalogue.find(settings.routing.baseline_model), key=key,
                               keys_file=keys, refresh_seconds=settings.dashboard.refresh_seconds
                               if refresh is None else refresh)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"Podium dashboard on http://{shown}:{port}/dashboard/ · ledger: {reader.describe()}"
                  + (" · key required" if key else " · no key (loopback)"), highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
