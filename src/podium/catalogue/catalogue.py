"""The catalogue: every model Podium knows, looked up by any name a client may send for it.

Rows come from the bundled ``data/models.toml`` and are then overridden or extended by the
user's config. A client written for one vendor sends that vendor's id (``claude-opus-4-5-20251101``),
a LiteLLM-style ``provider/model_id`` (``anthropic/claude-opus-4-5-20251101``) or Podium's own name
(``claude-opus-4-5``); all of them must reach the same row, and reach it before any key scope or region
is checked, so that spelling a model differently neither escapes a scope nor is wrongly refused by it.
A name resolves, first match wins:

1. a row's Podium ``name``;
2. one of a row's ``aliases``;
3. ``provider/rest`` where ``provider`` is a row's provider and ``rest`` is that row's name, alias or
   ``model_id``, looked up among that provider's rows only (``openai/gpt-4o-mini`` is OpenAI's row even
   though OpenRouter's row has the wire id ``openai/gpt-4o-mini``: write ``openrouter/openai/gpt-4o-mini``
   or ``openrouter/gpt-4o-mini`` for that one);
4. a row's vendor ``model_id`` (``claude-opus-4-5-20251101``, ``meta-llama/llama-3.3-70b-instruct``).

A spelling that several rows share at the step where it first matches (one ``model_id`` served by two
rows) is ambiguous: it resolves to nothing, and ``get`` refuses it with a 400 naming the candidates,
each in a spelling that is unique. Lookups that miss name the closest real names, because a typo in a
model name is the most common mistake a user makes.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any, NoReturn

from pydantic import ValidationError

from podium.catalogue.model_info import PRICE_FIELDS, ModelInfo
from podium.errors import BadRequestError, ConfigError, NotFoundError


class Catalogue:
    def __init__(self, rows: Iterable[ModelInfo]) -> None:
        self._rows: dict[str, ModelInfo] = {}
        self._aliases: dict[str, str] = {}
        self._ids: dict[str, list[str]] = {}  # vendor model_id → the names of the rows that send it
        self._providers: set[str] = set()
        for row in rows:
            self._rows[row.name] = row
        for row in self._rows.values():
            self._providers.add(row.provider)
            self._ids.setdefault(row.model_id, []).append(row.name)
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
        """The row ``name`` means in any accepted spelling (see the module docstring); None when it means
        no row, or more than one."""
        row = self._rows.get(name)
        if row is not None:
            return row
        alias = self._aliases.get(name)
        if alias is not None:
            return self._rows[alias]
        found = self._candidates(name)
        return found[0] if len(found) == 1 else None

    def candidates(self, name: str) -> list[ModelInfo]:
        """Every row ``name`` could mean: one for a name that resolves, several for an ambiguous one."""
        row = self.find(name)
        return [row] if row is not None else self._candidates(name)

    def _candidates(self, name: str) -> list[ModelInfo]:
        """Steps 3 and 4 of the resolution order: ``provider/rest``, then a bare vendor ``model_id``."""
        provider, slash, rest = name.partition("/")
        if slash and provider in self._providers:
            row = self._rows.get(rest) or (self._rows[self._aliases[rest]] if rest in self._aliases else None)
            if row is not None and row.provider == provider:
                return [row]
            scoped = [self._rows[n] for n in self._ids.get(rest, ()) if self._rows[n].provider == provider]
            if scoped:
                return scoped
        return [self._rows[n] for n in self._ids.get(name, ())]

    def get(self, name: str) -> ModelInfo:
        row = self.find(name)
        if row is None:
            self.refuse(name)
        return row

    def refuse(self, name: str) -> NoReturn:
        """Raise the error for a name that resolves to no single row: 400 naming the candidates when it is
        ambiguous, 404 with the closest names when it is unknown."""
        ambiguous = self.ambiguity(name)
        if ambiguous is not None:
            raise BadRequestError(ambiguous, model=name[:200], code="model_ambiguous")
        raise NotFoundError(self.missing(name), model=name[:200], code="model_not_found")

    def ambiguity(self, name: str) -> str | None:
        """Why ``name`` names no single row when several rows answer to it, naming each one unambiguously;
        None when it is not ambiguous."""
        found = self._candidates(name) if self.find(name) is None else []
        if len(found) < 2:
            return None
        spelled = ", ".join(f"'{row.name}' ({row.provider})" for row in found[:8])
        return (f"Model '{name[:100]}' is ambiguous: it is the model id of {len(found)} catalogue rows: {spelled}. "
                "Name one of them.")

    def spellings(self) -> list[str]:
        """Every accepted spelling: names, aliases, vendor ids and ``provider/model_id`` (for suggestions)."""
        ids = [row.model_id for row in self._rows.values()]
        return [*self._rows, *self._aliases, *ids, *(f"{row.provider}/{row.model_id}" for row in self._rows.values())]

    def missing(self, name: str, also: Iterable[str] = ()) -> str:
        """The message for a name that resolves to no single row (ambiguous or unknown); ``also`` adds
        other names a user could have meant (strategies)."""
        return self.ambiguity(name) or unknown_model_message(name, [*dict.fromkeys(self.spellings()), *also])

    def merged(self, overrides: Mapping[str, Mapping[str, Any]], *, source: str = "models") -> Catalogue:
        """A new catalogue with ``overrides`` applied: fields of existing rows replaced, new rows added.

        A new row must be complete; a partial row for an existing name changes only what it names. Keys
        are Podium names (a vendor id there makes a new row, it does not edit the row that sends it). A
        row whose prices are overridden without a ``price_source`` no longer claims the bundled source.
        """
        rows = dict(self._rows)
        for name, fields in overrides.items():
            base = rows.get(name)
            data: dict[str, Any] = base.model_dump() if base is not None else {"name": name}
            if base is not None and "price_source" not in fields and any(f in fields for f in PRICE_FIELDS):
                data.update(price_source=f"config ({source}.{name})", price_checked=None)
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
