"""``podium keys create``'s options, held to the admin API's rules (``server.admin.NewKey``).

A key the API would refuse is refused here too, in one line naming the option: an empty
``--models`` (it would be a key that may use any model), a negative budget, an RPM or TPM of 0 or
less. Each name in ``--models`` must be one a request could use: a catalogue model in any spelling
(name, alias, vendor id, ``provider/model_id``), a strategy named in the config, ``auto`` (routed), or
a strategy kind (``consensus``, or ``consensus:a`` written without commas); an unknown name comes with
the closest known ones, an ambiguous one with the rows it could mean.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from podium.config import Settings
from podium.errors import BadRequestError
from podium.strategies.names import KINDS

if TYPE_CHECKING:
    from podium.server.admin import NewKey

ROUTED = "auto"
DASHBOARD = "dashboard"  # not a model: the key may read the dashboard (podium.dashboard.gateway)
_OPTIONS = {"name": "the name", "models": "--models", "budget": "--budget", "budget_period": "--period", "rpm": "--rpm",
            "tpm": "--tpm", "team": "--team"}


def model_names(models: str | None) -> list[str] | None:
    """``--models a, b`` → ``["a", "b"]``; None when the option is not given. Given but empty is refused."""
    if models is None:
        return None
    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise BadRequestError("--models: give at least one model or strategy name, comma-separated "
                              "(leave --models out for a key that may use any model)")
    return names


def check_names(names: list[str], settings: Settings) -> None:
    """Every name is one a request could use (see the module's docstring)."""
    catalogue, named = settings.catalogue, settings.strategies
    for name in names:
        if name in (ROUTED, DASHBOARD) or name in catalogue or name in named:
            continue
        kind, colon, _ = name.partition(":")
        if kind in KINDS:
            continue
        if colon:
            close = difflib.get_close_matches(kind, sorted(KINDS), n=1, cutoff=0.5)
            hint = f" Did you mean: {close[0]}?" if close else ""
            raise BadRequestError(f"--models: unknown strategy kind '{kind}' in '{name}' (kinds: "
                                  f"{', '.join(sorted(KINDS))}).{hint}")
        raise BadRequestError(f"--models: {catalogue.missing(name, [*named, ROUTED, *sorted(KINDS)])}")


def new_key(name: str, *, models: str | None, budget: float | None, period: str, rpm: int | None,
            tpm: int | None, team: str | None, settings: Settings) -> NewKey:
    """The key's fields as the admin API would take them (``NewKey``), or BadRequestError naming the option."""
    from pydantic import ValidationError

    from podium.server.admin import NewKey

    if period not in {"total", "day", "month"}:
        raise BadRequestError(f"--period must be total, day or month, not '{period}'")
    names = model_names(models)
    fields: dict[str, Any] = {"name": name, "models": names, "budget": budget, "budget_period": period,
                              "rpm": rpm, "tpm": tpm, "team": team}
    try:
        body = NewKey.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "name"
        message = first["msg"].removeprefix("Value error, ")
        raise BadRequestError(f"{_OPTIONS.get(field, field)}: {message[:1].lower()}{message[1:]} "
                              f"(got {first['input']!r})") from None
    if body.models is not None:
        check_names(body.models, settings)
    return body
