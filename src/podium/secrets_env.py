"""Which environment variables hold credentials, so that what Podium starts (a package's check command,
a vendor's command-line tool) does not get the keys Podium itself calls models with.

The test is the variable's name: names ending in ``_API_KEY`` (or ``APIKEY``), ``_TOKEN``, ``_PASSWORD``,
``_PASSWD``, ``_ACCESS_KEY``, ``_PRIVATE_KEY``, ``_CREDENTIAL(S)``; any name containing ``SECRET``;
Podium's own ``PODIUM_*KEY`` (the admin key, the gateway's keys); and ``SSH_AUTH_SOCK`` (the user's SSH
agent: nothing Podium starts has any business signing in somewhere). A name is only a hint — a value
under an innocent name passes — so callers also redact the dropped values from whatever comes back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping

_SECRET_NAME = re.compile(
    r"(?:_|^)(?:API_?KEY|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$"
    r"|SECRET"
    r"|^PODIUM_\w*KEY$"
    r"|^SSH_AUTH_SOCK$",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential (see the module's docstring)."""
    return _SECRET_NAME.search(name) is not None


def without_secrets(base: Mapping[str, str] | None = None, *,
                    keep: Collection[str] = ()) -> tuple[dict[str, str], list[str]]:
    """``base`` (default: this process's environment) without credential-like variables, except the names
    in ``keep``; and the values dropped (to redact them should they come back anyway)."""
    source = os.environ if base is None else base
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in source.items():
        if name not in keep and is_secret_name(name):
            dropped.append(value)
        else:
            kept[name] = value
    return kept, dropped
