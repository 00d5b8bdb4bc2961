"""Finding, reading and validating podium.yaml.

Search order: the ``--config`` flag, ``$PODIUM_CONFIG``, ``./podium.yaml``, then the user config
directory (``~/.config/podium/podium.yaml`` on Linux). No file at all is fine: the defaults run
the embedded local models.

``${VAR}`` and ``${VAR:-default}`` are expanded in every string value. A ``${VAR}`` that is unset
and has no default is an error naming the key path, because a silently empty base URL or key is
worse than a clear stop.

The file is read with YAML 1.2's booleans: only ``true`` and ``false`` are booleans, so a key
written ``on:`` (``resilience.fallbacks[].on``) stays the string "on" instead of YAML 1.1's ``True``
(``yes``/``no``/``on``/``off`` remain valid values for a boolean setting: the schema reads them).
A boolean key in data validated from elsewhere (a dict from ``yaml.safe_load``) is explained.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from podium.config.schema import PodiumConfig
from podium.errors import ConfigError

CONFIG_ENV = "PODIUM_CONFIG"
CONFIG_FILENAME = "podium.yaml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_BOOL_TAG = "tag:yaml.org,2002:bool"


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans (true/false only; on/off/yes/no are strings)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))


def parse_yaml(text: str) -> Any:
    """The data in a podium.yaml text (YAML 1.2 booleans, see the module docstring)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader: no arbitrary objects


def user_config_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("podium")) / CONFIG_FILENAME


def find_config_path(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (given by --config)")
        return path
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (given by ${CONFIG_ENV})")
        return path
    for candidate in (Path.cwd() / CONFIG_FILENAME, user_config_path()):
        if candidate.is_file():
            return candidate
    return None


def expand_env(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Expand ``${VAR}`` / ``${VAR:-default}`` recursively; errors carry the key path."""
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set (write ${{{name}:-}} to allow empty)",
                              key_path=path or "<root>")
        return _VAR.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _boolean_key(value: Any, path: str = "") -> str | None:
    """The key path of the first key that is a boolean (YAML 1.1 read an unquoted ``on:`` as True)."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, bool):
                return where
            found = _boolean_key(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _boolean_key(item, f"{path}[{i}]")
            if found:
                return found
    return None


def validate(data: Any, source: str = "config") -> PodiumConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping of settings at the top level, not {type(data).__name__}")
    boolean = _boolean_key(data)
    if boolean is not None:
        raise ConfigError("this key is the boolean true/false, not a name: YAML 1.1 loaders (yaml.safe_load) read "
                          "an unquoted on, off, yes or no as a boolean. If you meant the key 'on' (fallbacks' "
                          "error kinds), quote it (\"on\": [...]) or load the file with podium.config.load_config",
                          key_path=boolean)
    try:
        return PodiumConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        if err["type"] == "extra_forbidden":
            parent = PodiumConfig.model_json_schema()
            allowed = _allowed_keys(parent, loc[:-1])
            hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
            message = f"unknown key{hint}"
        else:
            message = f"{err['msg']} (got {err.get('input')!r})"
        raise ConfigError(message, key_path=_key_path(loc)) from None


def _allowed_keys(schema: dict[str, Any], loc: tuple[int | str, ...]) -> list[str]:
    """Walk the JSON schema along ``loc`` to list the keys allowed at that level."""
    defs = schema.get("$defs", {})
    node: dict[str, Any] = schema
    for part in loc:
        node = _deref(node, defs)
        if isinstance(part, int):
            node = node.get("items", {})
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        elif "additionalProperties" in node:
            node = node["additionalProperties"]
        else:
            return []
    node = _deref(node, defs)
    return sorted(node.get("properties", {}))


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while True:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        elif "anyOf" in node:
            node = next((n for n in node["anyOf"] if n.get("type") != "null"), node["anyOf"][0])
        else:
            return node


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> PodiumConfig:
    env = os.environ if env is None else env
    if path is None:
        return PodiumConfig()
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start} "
                          "cannot be decoded): save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return validate(expand_env(raw, env), str(path))
