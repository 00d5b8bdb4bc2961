"""The catalogue: every model Podium knows, looked up by name or alias.

Rows come from the bundled ``data/models.toml`` and are then overridden or extended by the
user's config. Lookups that miss name the closest real names, because a typo in a model name is
the most common mistake a user makes.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import ValidationError

from podium.catalogue.model_info import ModelInfo
from podium.errors import ConfigError, NotFoundError


class Catalogue:
    def __init__(self, rows: Iterable[ModelInfo]) -> None:
        self._rows: dict[str, ModelInfo] = {}
        self._aliases: dict[str, str] = {}
        for row in rows:
            self._rows[row.name] = row
        for row in self._rows.values():
            for alias in row.aliases:
                if alias not in self._rows:
                    self._aliases[alias] = row.name

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def names(self) -> list[str]:
        return list(self._rows)

    def find(self, name: str) -> ModelInfo | None:
        row = self._rows.get(name)
        if row is None and name in self._aliases:
            row = self._rows[self._aliases[name]]
        return row

    def get(self, name: str) -> ModelInfo:
        row = self.find(name)
        if row is None:
            raise NotFoundError(unknown_model_message(name, [*self._rows, *self._aliases]), model=name,
                                code="model_not_found")
        return row

    def merged(self, overrides: Mapping[str, Mapping[str, Any]], *, source: str = "models") -> Catalogue:
        """A new catalogue with ``overrides`` applied: fields of existing rows replaced, new rows added.

        A new row must be complete; a partial row for an existing name changes only what it names.
        """
        rows = dict(self._rows)
        for name, fields in overrides.items():
            base = rows.get(name)
            data: dict[str, Any] = base.model_dump() if base is not None else {"name": name}
            data.update(fields)
            data.setdefault("model_id", name)
            data.setdefault("display_name", name)
            rows[name] = _validated(data, f"{source}.{name}")
        return Catalogue(rows.values())


def unknown_model_message(name: str, candidates: Iterable[str]) -> str:
    shown = name if len(name) <= 100 else name[:100] + "…"  # a client's 50 KB "name" is not echoed whole
    close = difflib.get_close_matches(name[:200], list(candidates), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else " Run `podium models` to list them."
    return f"Unknown model '{shown}'.{hint}"


def _validated(data: Mapping[str, Any], where: str) -> ModelInfo:
    try:
        return ModelInfo.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(first["msg"], key_path=f"{where}.{field}" if field else where) from None


def parse_rows(raw_rows: Iterable[Mapping[str, Any]], source: str) -> list[ModelInfo]:
    rows = []
    for index, raw in enumerate(raw_rows):
        data = dict(raw)
        name = data.get("name")
        if not isinstance(name, str):
            raise ConfigError("every model row needs a string 'name'", key_path=f"{source}[{index}]")
        data.setdefault("model_id", name)
        rows.append(_validated(data, f"{source}[{index}]"))
    return rows


@lru_cache(maxsize=1)
def bundled_catalogue() -> Catalogue:
    text = resources.files("podium.catalogue").joinpath("data/models.toml").read_text(encoding="utf-8")
    return Catalogue(parse_rows(tomllib.loads(text)["model"], "models.toml model"))
