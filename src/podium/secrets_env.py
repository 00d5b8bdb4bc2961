"""Which environment variables hold credentials, so that what Podium starts (a package's check command,
a vendor's command-line tool) does not get the keys Podium itself calls models with.

The test is the variable's name: names ending in ``_API_KEY`` (or ``APIKEY``), ``_TOKEN``, ``_PASSWORD``,
``_PASSWD``, ``_ACCESS_KEY``, ``_PRIVATE_KEY``, ``_CREDENTIAL(S)``; any name containing ``SECRET``;
Podium's own ``PODIUM_*KEY`` (the admin key, the gateway's keys); and ``SSH_AUTH_SOCK`` (the user's SSH
agent: nothing Podium starts has any business signing in somewhere). A name is only a hint, so the values
of the keys this process was configured with (``remember``: every provider's key, whatever variable it came
from — ``api_key_env: MY_ACME_KEY`` names none of the above) are dropped under any name too; callers also
redact the dropped values from whatever comes back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Mapping

_SECRET_NAME = re.compile(
    r"(?:_|^)(?:API_?KEY|TOKEN|PASSWORD|PASSWD|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$"
    r"|SECRET"
    r"|^PODIUM_\w*KEY$"
    r"|^SSH_AUTH_SOCK$",
    re.IGNORECASE,
)


# The key values this process calls models with: process-wide on purpose, because every environment Podium
# hands to a child (a check, an agent, a vendor's tool, git) must lose them, wherever that child is started.
_KNOWN_VALUES: set[str] = set()


def remember(values: Iterable[str | None]) -> None:
    """Key values this process was configured with, dropped from every environment passed on (under any name).
    Values shorter than 8 characters are not keys worth matching (and would drop innocent variables)."""
    _KNOWN_VALUES.update(v for v in values if v and len(v) >= 8)


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
        if name not in keep and (is_secret_name(name) or value in _KNOWN_VALUES):
            dropped.append(value)
        else:
            kept[name] = value
    return kept, dropped
