"""The work package: a Markdown file a person writes (the seed's ``Arbeitspaket.md``).

    ---
    check: python -m pytest -q        # run in each worktree; exit 0 passes
    check_timeout: 300                # seconds
    budget: 2.50                      # USD for every call of the whole package
    deadline: 1800                    # seconds for the whole run
    preset: production                # production, budget or privacy-first (or one under work.presets)
    worker: editor                    # editor, or an agent under work.agents (aider)
    ---
    # Add a temperature converter

    What to build, in prose ...

    ## Acceptance
    - `convert(0, "C", "F")` returns 32
    - the tests pass

Everything in the front matter is optional (the command line and ``work:`` in podium.yaml give the
defaults). The title is the first ``#`` heading; acceptance criteria are the list items under a heading
named Acceptance (or Acceptance criteria, Done when, Definition of done; the seed's German
Akzeptanzkriterien, Abnahmekriterien, Fertig wenn). Unknown front-matter keys are errors, as in
podium.yaml: a typo must not silently drop the budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.errors import ConfigError
from podium.types import describe_validation_error

MAX_PACKAGE_BYTES = 256 * 1024
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*\S)\s*$")
_ACCEPTANCE = re.compile(r"^(acceptance( criteria)?|done when|definition of done|akzeptanzkriterien|"
                         r"abnahmekriterien|fertig wenn)\s*:?$", re.I)


class PackageSettings(BaseModel):
    """The front matter. None: not set here (the command line or podium.yaml decides)."""

    model_config = ConfigDict(extra="forbid")

    check: str | None = Field(default=None, min_length=1, description="Shell command run in each worktree")
    check_timeout: float | None = Field(default=None, gt=0, le=86_400)
    budget: float | None = Field(default=None, gt=0)
    deadline: float | None = Field(default=None, gt=0, le=7 * 86_400, description="Seconds for the whole run")
    preset: str | None = None
    worker: str | None = None
    max_parallel: int | None = Field(default=None, ge=1, le=16)


@dataclass(frozen=True)
class WorkPackage:
    path: Path
    title: str
    text: str  # the body, without the front matter
    acceptance: tuple[str, ...] = ()
    settings: PackageSettings = field(default_factory=PackageSettings)

    @property
    def slug(self) -> str:
        """A name for branches and state: from the file name (``Arbeitspaket.md`` → ``arbeitspaket``)."""
        return slugify(self.path.stem) or "package"


def slugify(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")


def parse_package(text: str, path: Path) -> WorkPackage:
    settings = PackageSettings()
    body = text
    match = _FRONT.match(text)
    if match is None and re.match(r"\A---[ \t]*\r?\n", text):
        raise ConfigError(f"{path}: the front matter opened with --- is never closed; end it with a line of "
                          "--- (else its settings, the check among them, would be read as prose)")
    if match is not None:
        body = text[match.end():]
        try:
            raw: Any = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: the front matter is not valid YAML ({str(exc).splitlines()[0]})") from None
        except RecursionError:  # PyYAML's parser recurses once per level of [ or {
            raise ConfigError(f"{path}: the front matter nests too deeply to read; it is a flat mapping of "
                              "settings (check, budget, …)") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the front matter must be a mapping of settings (check, budget, …)")
        try:
            settings = PackageSettings.model_validate(raw)
        except ValidationError as exc:
            problems = describe_validation_error(exc).removeprefix("invalid request: ")
            raise ConfigError(f"{path}: front matter: {problems}") from None
        except RecursionError:
            raise ConfigError(f"{path}: the front matter nests too deeply to read; it is a flat mapping of "
                              "settings (check, budget, …)") from None
    title, acceptance, in_acceptance = "", [], False
    for line in body.splitlines():
        heading = _HEADING.match(line)
        if heading is not None:
            name = heading.group(2).strip()
            if not title and len(heading.group(1)) == 1:
                title = name
            in_acceptance = bool(_ACCEPTANCE.match(name))
            continue
        item = _ITEM.match(line) if in_acceptance else None
        if item is not None:
            acceptance.append(item.group(1))
    if not body.strip():
        raise ConfigError(f"{path}: the work package is empty; describe the work in Markdown")
    return WorkPackage(path=path, title=title or path.stem, text=body.strip(), acceptance=tuple(acceptance),
                       settings=settings)


def load_package(path: str | Path) -> WorkPackage:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no work package at {p} (a Markdown file describing the work)")
    data = p.read_bytes()
    if len(data) > MAX_PACKAGE_BYTES:
        raise ConfigError(f"{p} is {len(data):,} bytes; a work package may have at most {MAX_PACKAGE_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p} is not UTF-8 text") from None
    return parse_package(text, p)
