"""The plan: the conductor's split of a package into subtasks, as a YAML file a person reviews and edits.

``podium work plan`` writes it; ``podium work run --plan`` runs it as written (edited or not). It is
checked strictly when read, with errors that name the subtask and field: ids are short slugs and
unique, ``depends_on`` names subtasks of this plan and has no cycle, ``files`` are paths inside the
repository (relative, no ``..``, never ``.git``), and ``tier`` is one of the catalogue's tiers.

    version: 1
    package: Arbeitspaket.md
    title: Add a temperature converter
    base: 3f2c…             # the commit every subtask starts from
    subtasks:
    - id: converter
      title: The conversion function
      instructions: |
        Add convert(value, from_unit, to_unit) to temperature.py ...
      files: [temperature.py]
      acceptance: ["convert(0, 'C', 'F') == 32"]
      tier: standard
      depends_on: []
    - id: tests
      ...
      depends_on: [converter]
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from podium.errors import ConfigError

MAX_SUBTASKS = 12
MAX_PLAN_BYTES = 256 * 1024
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
WorkTier = Literal["fast", "standard", "advanced"]


def check_repo_path(path: str) -> str:
    """A path inside the repository as the plan and the edit blocks may name it, normalised; ValueError if not."""
    text = path.strip().replace("\\", "/")
    if "\x00" in text:
        raise ValueError(f"{path!r} contains a NUL character, which no file name may hold")
    if not text:
        raise ValueError("a file path may not be empty")
    pure = PurePosixPath(text)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", text):
        raise ValueError(f"'{path}' is absolute; name files relative to the repository")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"'{path}' leaves the repository")
    if parts[0] == ".git" or ".git" in parts:
        raise ValueError(f"'{path}' is inside .git")
    return "/".join(parts)


class Subtask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="A short slug: a-z, 0-9, '-'; the branch is named after it")
    title: str = Field(min_length=1, max_length=200)
    instructions: str = Field(min_length=1, max_length=20_000)
    files: list[str] = Field(default_factory=list, max_length=50, description="Files it reads or changes")
    acceptance: list[str] = Field(default_factory=list, max_length=30)
    tier: WorkTier = "standard"
    depends_on: list[str] = Field(default_factory=list)
    worker: str | None = Field(default=None, description="editor, or an agent under work.agents; default: "
                               "the package's")

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if value == "integration":
            raise ValueError("'integration' is the name of the run's integration branch; choose another id")
        if not _ID.fullmatch(value):
            raise ValueError(f"'{value[:60]}' is not a short slug (a-z, 0-9 and '-', at most 40, "
                             "starting with a letter or digit)")
        return value

    @field_validator("files")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        return [check_repo_path(p) for p in value]


class WorkPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    package: str = Field(description="The package file the plan was made from")
    title: str = ""
    base: str | None = Field(default=None, description="The commit subtasks start from; default: HEAD at run")
    subtasks: list[Subtask] = Field(min_length=1, max_length=MAX_SUBTASKS)

    def subtask(self, subtask_id: str) -> Subtask:
        for s in self.subtasks:
            if s.id == subtask_id:
                return s
        raise KeyError(subtask_id)

    def layers(self) -> list[list[Subtask]]:
        """Subtasks in dependency order, grouped: each layer depends only on the layers before it."""
        done: set[str] = set()
        left = list(self.subtasks)
        layers: list[list[Subtask]] = []
        while left:
            ready = [s for s in left if set(s.depends_on) <= done]
            if not ready:  # checked in check_graph; kept so a bad plan cannot loop
                raise ConfigError("the plan's depends_on has a cycle")
            layers.append(ready)
            done |= {s.id for s in ready}
            left = [s for s in left if s.id not in done]
        return layers


def check_graph(plan: WorkPlan) -> None:
    """Unique ids, dependencies that exist, no cycle — each problem named."""
    seen: set[str] = set()
    for i, s in enumerate(plan.subtasks):
        if s.id in seen:
            raise ConfigError(f"subtasks[{i}].id: '{s.id}' is used twice; ids must be unique")
        seen.add(s.id)
    for i, s in enumerate(plan.subtasks):
        for dep in s.depends_on:
            if dep not in seen:
                raise ConfigError(f"subtasks[{i}].depends_on: '{dep[:60]}' is not a subtask of this plan "
                                  f"(subtasks: {', '.join(sorted(seen))})")
            if dep == s.id:
                raise ConfigError(f"subtasks[{i}].depends_on: '{s.id}' depends on itself")
    state: dict[str, int] = {}
    by_id = {s.id: s for s in plan.subtasks}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = [*path[path.index(node):], node]
            raise ConfigError(f"the plan's depends_on has a cycle: {' → '.join(cycle)}")
        state[node] = 1
        for dep in by_id[node].depends_on:
            visit(dep, [*path, node])
        state[node] = 2

    for s in plan.subtasks:
        visit(s.id, [])


def _problems(exc: ValidationError) -> str:
    """Each problem named by its place in the file (``subtasks[1].depends_on``), an unknown key with the
    closest known one."""
    lines = []
    for err in exc.errors():
        loc = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in err["loc"]).lstrip(".")
        if err["type"] == "extra_forbidden" and err["loc"]:
            known = Subtask.model_fields if "subtasks" in err["loc"][:1] and len(err["loc"]) > 2 \
                else WorkPlan.model_fields
            close = difflib.get_close_matches(str(err["loc"][-1]), list(known), n=1)
            hint = f" — did you mean {close[0]}?" if close else f" (known: {', '.join(known)})"
            lines.append(f"{loc}: unknown key{hint}")
            continue
        value = err.get("input")
        got = "" if isinstance(value, dict | list) or len(repr(value)) > 100 else f" (got {value!r})"
        lines.append(f"{loc or 'the plan'}: {err['msg'].removeprefix('Value error, ')}{got}")
    return "; ".join(lines)


def plan_from_data(data: Any, where: str = "the plan") -> WorkPlan:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with version, package and subtasks")
    try:
        plan = WorkPlan.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_problems(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{where}: it nests too deeply to read; a plan is a list of subtasks a few "
                          "levels deep") from None
    try:
        check_graph(plan)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    return plan


def load_plan(path: str | Path) -> WorkPlan:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no plan at {p} (write one with: podium work plan PACKAGE.md --repo DIR)")
    data = p.read_bytes()
    if len(data) > MAX_PLAN_BYTES:
        raise ConfigError(f"{p} is {len(data):,} bytes; a plan may have at most {MAX_PLAN_BYTES:,}")
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:  # PyYAML's parser recurses once per level of [ or {
        raise ConfigError(f"{p}: its YAML nests too deeply to read; a plan is a list of subtasks a few "
                          "levels deep") from None
    return plan_from_data(raw, str(p))


class _Literal(str):
    """A string YAML writes as a block (``|``), so multi-line instructions stay readable in the file."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    """Plain where that reads back exactly; double-quoted with escapes when the text holds characters YAML
    would read as line breaks or drop (NEL, LS, CR, controls) — PyYAML writes them raw otherwise."""
    style = '"' if any(not c.isprintable() for c in value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(_Literal, _literal)
_Dumper.add_representer(str, _text)

HEADER = """# Podium work plan. Review and edit it, then: podium work run {package} --repo DIR --plan THIS_FILE
# Each subtask runs in its own git worktree and branch; depends_on orders them, the rest run in parallel.
# tier: fast | standard | advanced. files: paths relative to the repository. worker: editor or an agent.
"""


def _block_safe(text: str) -> bool:
    """Whether ``text`` reads back exactly from a ``|`` block: several plain lines, no trailing blanks, no
    characters YAML treats as line breaks or escapes (else the dumper's quoted form is exact)."""
    lines = text.split("\n")
    return len(lines) > 1 and all(line.isprintable() and line == line.rstrip() for line in lines) \
        and text[:1] not in (" ", "\t") and text.strip("\n") != ""


def dump_plan(plan: WorkPlan) -> str:
    data = plan.model_dump(exclude_none=True)
    for s in data["subtasks"]:
        if _block_safe(s["instructions"]):
            s["instructions"] = _Literal(s["instructions"])
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    return HEADER.format(package=plan.package) + body
