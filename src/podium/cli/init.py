"""``podium init``: write the commented default config, never over an existing file by accident."""

from __future__ import annotations

import os
from pathlib import Path

from podium.cli.render import console
from podium.config.template import TEMPLATE
from podium.errors import ConfigError


def run_init(path: str, *, force: bool) -> None:
    target = Path(path).expanduser()
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(TEMPLATE, encoding="utf-8")
    os.replace(tmp, target)
    console.print(f"wrote {target}")
