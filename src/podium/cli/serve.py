"""``podium serve`` and ``podium keys``."""

from __future__ import annotations

import json

from podium.config import load_settings
from podium.errors import BadRequestError
from podium.server.keys import KeyStore, check_team


def run_serve(*, host: str | None, port: int | None, no_auth: bool, config: str | None) -> None:
    import uvicorn

    from podium.server.app import create_app

    settings = load_settings(config)
    if no_auth:
        settings.gateway.auth = "optional"
    app = create_app(settings)
    g = settings.gateway
    uvicorn.run(app, host=host or g.host, port=port or g.port, loop="uvloop", http="httptools",
                log_level="warning", access_log=False)


def _store(config: str | None) -> KeyStore:
    from podium.server.app import keys_path

    return KeyStore(keys_path(load_settings(config)))


def run_keys_create(name: str, *, models: str | None, budget: float | None, period: str, rpm: int | None,
                    tpm: int | None, team: str | None, config: str | None) -> None:
    if period not in {"total", "day", "month"}:
        raise BadRequestError(f"--period must be total, day or month, not '{period}'")
    settings = load_settings(config)
    check_team(team, settings.gateway.teams)
    allowed = [m.strip() for m in models.split(",") if m.strip()] if models else None
    secret, key = _store(config).create(name, models=allowed, budget=budget, budget_period=period, rpm=rpm, tpm=tpm,
                                        team=team)
    from podium.cli.render import console


    console.print(f"created {key.id} ({name}). The key, shown only now:")
    print(secret)


def run_keys_list(*, json_output: bool, config: str | None) -> None:
    keys = _store(config).list()
    if json_output:
        print(json.dumps([k.public() for k in keys], indent=2))
        return
    from rich.table import Table

    from podium.cli.render import console

    table = Table(title="virtual keys")
    for column in ("id", "name", "team", "prefix", "models", "budget", "rpm", "tpm", "state"):
        table.add_column(column)
    for k in keys:
        table.add_row(k.id, k.name, k.team or "-", k.prefix + "…", ", ".join(k.models) if k.models else "any",
                      f"${k.budget:g}/{k.budget_period}" if k.budget else "-", str(k.rpm or "-"), str(k.tpm or "-"),
                      "revoked" if k.revoked_at else "active")
    console.print(table)


def run_keys_revoke(key_id: str, *, config: str | None) -> None:
    key = _store(config).revoke(key_id)
    from podium.cli.render import console

    console.print(f"revoked {key.id} ({key.name})")
