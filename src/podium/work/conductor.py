"""The conductor: a strong model splits a work package into subtasks a person can review.

It is shown the package, its acceptance criteria and the repository's files (names, and the text of the
files the package mentions, bounded), and answers with JSON in the plan's shape. The answer is checked
like a plan file a person wrote (``plan.plan_from_data``: ids, paths inside the repository, dependencies
without cycles); one that does not pass is sent back once with the problems. If the second answer fails
too, the whole package becomes one subtask and the plan says so in its title, so a run never starts from
a plan nobody could read — and the person reviewing it sees what happened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium.errors import ConfigError
from podium.types import Message
from podium.work.contracts import ModelCalls
from podium.work.package import WorkPackage
from podium.work.plan import MAX_SUBTASKS, Subtask, WorkPlan, plan_from_data

MAX_LISTED_FILES = 400
MAX_FILE_TEXT = 40_000  # characters of mentioned files' text shown to the conductor, in all
_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)

SYSTEM = """You are the conductor of a team of coding workers. You split a work package into subtasks.
Each subtask is done by one worker in its own copy of the repository; subtasks without depends_on run in
parallel, so give two subtasks the same file only when one depends on the other. Prefer few subtasks.
Reply with one JSON object and nothing else."""

SHAPE = """{
  "title": "short title of the package",
  "subtasks": [
    {"id": "short-slug", "title": "what it does", "instructions": "precise instructions for the worker",
     "files": ["path/relative/to/repo.py"], "acceptance": ["a checkable criterion"],
     "tier": "fast|standard|advanced", "depends_on": []}
  ]
}"""


def _prompt(package: WorkPackage, files: Sequence[str], texts: dict[str, str], limit: int) -> str:
    listing = "\n".join(files[:MAX_LISTED_FILES])
    if len(files) > MAX_LISTED_FILES:
        listing += f"\n… and {len(files) - MAX_LISTED_FILES} more files"
    shown = "".join(f"\n--- {name} ---\n{text}\n" for name, text in texts.items())
    criteria = "\n".join(f"- {c}" for c in package.acceptance) or "(none given)"
    return (f"# Work package: {package.title}\n\n{package.text}\n\n# Acceptance criteria of the package\n{criteria}\n\n"
            f"# Files in the repository\n{listing or '(empty repository)'}\n"
            + (f"\n# Files the package mentions{shown}" if shown else "")
            + f"\n\nSplit the package into at most {limit} subtasks. Answer with JSON of this shape:\n{SHAPE}")


def mentioned_files(package: WorkPackage, files: Sequence[str]) -> list[str]:
    """The repository files the package names (by path, or a nested file by its name)."""
    return [name for name in files
            if name in package.text or ("/" in name and Path(name).name in package.text)]


def bounded_texts(texts: dict[str, str], limit: int = MAX_FILE_TEXT) -> dict[str, str]:
    """The texts in order, cut to ``limit`` characters in all (what was cut is marked)."""
    shown: dict[str, str] = {}
    left = limit
    for name, text in texts.items():
        if left <= 0:
            break
        shown[name] = text[:left] + ("\n… (cut)" if len(text) > left else "")
        left -= len(text)
    return shown


def first_json_object(text: str) -> Any:
    """The first JSON object in a model's answer (fenced or bare); ValueError saying why not."""
    fenced = _FENCE.search(text)
    candidates = [fenced.group(1)] if fenced else []
    start = text.find("{")
    if start >= 0:
        candidates.append(text[start:])
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            value, _ = decoder.raw_decode(candidate)
        except json.JSONDecodeError as exc:
            last = exc
            continue
        except RecursionError:  # a model can nest brackets deeper than the parser recurses
            raise ValueError("the JSON is nested too deeply") from None
        if isinstance(value, dict):
            return value
    if not candidates:
        raise ValueError("the answer holds no JSON object")
    raise ValueError(f"the JSON does not parse: {last.msg} at character {last.pos}")


def _as_plan(data: Any, package: WorkPackage, base: str | None) -> WorkPlan:
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    data = {**data, "version": 1, "package": package.path.name, "base": base}
    data.setdefault("title", package.title)
    if isinstance(data.get("subtasks"), list):  # models add fields; keep the plan's own
        known = set(Subtask.model_fields) - {"worker"}  # which worker runs a subtask is the user's call
        data["subtasks"] = [{k: v for k, v in s.items() if k in known} if isinstance(s, dict) else s
                            for s in data["subtasks"]]
    try:
        return plan_from_data(data, "the plan")
    except ConfigError as exc:
        raise ValueError(exc.message) from None


def fallback_plan(package: WorkPackage, base: str | None, why: str) -> WorkPlan:
    """The whole package as one subtask, when the conductor's plan could not be read."""
    return WorkPlan(package=package.path.name, base=base,
                    title=f"{package.title} (one subtask: the conductor's plan could not be read — {why[:200]})",
                    subtasks=[Subtask(id="package", title=package.title[:200], instructions=package.text[:20_000],
                                      acceptance=list(package.acceptance)[:30])])


async def make_plan(calls: ModelCalls, package: WorkPackage, files: Sequence[str], texts: dict[str, str], *,
                    base: str | None = None, limit: int = 6) -> WorkPlan:
    """``texts``: the committed text of the files the package mentions (``mentioned_files``; read from the
    base commit by the caller, never from the checkout, so neither uncommitted edits nor a symlink's target
    outside the repository reach the model)."""
    limit = max(1, min(limit, MAX_SUBTASKS))
    messages = [Message(role="system", content=SYSTEM),
                Message(role="user", content=_prompt(package, files, bounded_texts(texts), limit))]
    why = ""
    for attempt in range(2):
        response = await calls.ask("conductor", messages, temperature=0.3)
        try:
            plan = _as_plan(first_json_object(response.text), package, base)
            if len(plan.subtasks) > limit:
                raise ValueError(f"the plan has {len(plan.subtasks)} subtasks; at most {limit}")
            return plan
        except ValueError as exc:
            why = str(exc)
            if attempt == 0:
                messages += [Message(role="assistant", content=response.text[:20_000]),
                             Message(role="user", content=f"That plan cannot be used: {why}. Answer again with "
                                                          f"the corrected JSON object only.")]
    return fallback_plan(package, base, why)
