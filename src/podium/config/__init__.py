"""podium.yaml: find it, validate it strictly, then resolve names (see ``loader`` and ``resolve``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from podium.config.loader import find_config_path, load_config, user_config_path
from podium.config.resolve import DEFAULT_MODEL, ProviderSpec, Settings, known_hosts, resolve
from podium.config.schema import PodiumConfig, ProviderConfig


def load_settings(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Find, read, validate and resolve the configuration in one call."""
    env = os.environ if env is None else env
    path = find_config_path(explicit, env)
    return resolve(load_config(path, env), path, env)


__all__ = [
    "DEFAULT_MODEL",
    "PodiumConfig",
    "ProviderConfig",
    "ProviderSpec",
    "Settings",
    "find_config_path",
    "known_hosts",
    "load_config",
    "load_settings",
    "resolve",
    "user_config_path",
]
