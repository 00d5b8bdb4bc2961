"""Podium's own worker: a model answers with search/replace edit blocks, Podium applies and checks them.

One round of a subtask is a short conversation in the ``worker`` role:

    prompt (package, subtask, acceptance, feedback of the last round, the files' content, the format)
      → answer → parse_edits → apply_edits ─ all applied ──▶ WorkerResult
                                    └─ some failed, or no block at all: the failures and the files' new
                                       content go back in the same conversation; at most ``max_attempts``
                                       answers in all

Blocks that applied stay applied (``edits`` explains why); the model is asked to resend only what failed.
The editor never runs git and never writes outside ``assignment.worktree`` (every path is checked by
``edits``). It stops before ``assignment.deadline``. The run's own stops — over budget, past the run's
deadline — propagate to the runner unchanged (``BudgetExceededError``, ``DeadlineReached``); any other
failure of a model call ends the round with ``WorkerResult.error`` set, keeping what was applied.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from podium.errors import BudgetExceededError, PodiumError
from podium.types import ChatResponse, Message
from podium.work.calls import DeadlineReached
from podium.work.contracts import Assignment, ModelCalls, WorkerResult
from podium.work.edits import EditBlock, apply_edits, parse_edits, read_text

MAX_CONTEXT_CHARS = 100_000  # file content in one prompt
MAX_PACKAGE_CHARS = 20_000  # the package's own text in the prompt
MAX_FEEDBACK_CHARS = 20_000  # the last round's feedback (the end of it: a check's output ends with the verdict)
MAX_MENTIONED_FILES = 20
MAX_LISTED_FILES = 300  # the repository's file list in the prompt
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv", "env", "build", "dist", "target", "site-packages"})
_MENTION = re.compile(r"(?<![\w.-])/?(?:[\w.-]+/)*[\w-][\w.-]*\.[A-Za-z0-9_]{1,10}(?![\w/-])")

SYSTEM = """You are a careful software engineer working in a git repository. You change files only by \
answering with SEARCH/REPLACE edit blocks, which are applied to the repository for you.

Rules for every edit block:
1. The file's full path, relative to the repository root, alone on a line; then the block:
<<<<<<< SEARCH
the exact existing lines to change
=======
the new lines
>>>>>>> REPLACE
2. The SEARCH section must match existing lines of the file exactly, character for character, including \
whitespace, indentation, comments and docstrings. Copy them from the file content you are shown.
3. Keep blocks small: the lines to change plus a few lines around them, enough for the SEARCH to match \
exactly one place. Use several blocks for several places; they are applied in order, each to the result \
of the ones before.
4. To create a file, leave the SEARCH section empty and put the whole new file in REPLACE.
5. To delete lines, leave the REPLACE section empty. To move code, delete it with one block and insert it \
with another.
6. Edit only files inside the repository, never anything under .git. You cannot run commands.
7. Answer with edit blocks; at most a sentence of explanation before them.

Example — change a function and add a test file:

src/greeting.py
<<<<<<< SEARCH
def greet(name):
    print("Hello", name)
=======
def greet(name, punctuation="!"):
    print(f"Hello, {name}{punctuation}")
>>>>>>> REPLACE

tests/test_greeting.py
<<<<<<< SEARCH
=======
from src.greeting import greet


def test_greet(capsys):
    greet("Ada")
    assert capsys.readouterr().out == "Hello, Ada!\\n"
>>>>>>> REPLACE
"""

NO_BLOCKS = ("Your answer had no SEARCH/REPLACE edit blocks, so nothing was changed. Answer with edit blocks: "
             "the file's path alone on a line, then <<<<<<< SEARCH, the exact existing lines, =======, the new "
             "lines, >>>>>>> REPLACE (an empty SEARCH creates a file).")


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * max(3, longest + 1)


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"[… the first {len(text) - limit:,} characters are not shown]\n" + text[-limit:]


def _head(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {len(text) - limit:,} more characters are not shown]"


@dataclass
class _Files:
    """File contents for a prompt under one character budget; what did not fit is named, never silent."""

    root: Path
    budget: int
    parts: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)

    def add(self, rel: str, text: str | None, note: str = "") -> None:
        if text is None:
            self.parts.append(f"### {rel}\n(does not exist yet: create it with an empty SEARCH section){note}\n")
            return
        if self.budget <= 0:
            self.omitted.append(rel)
            return
        lines = text.splitlines(keepends=True)
        shown, size = [], 0
        for line in lines:
            if size + len(line) > self.budget:
                break
            shown.append(line)
            size += len(line)
        self.budget -= size
        body = "".join(shown)
        cut = ""
        if len(shown) < len(lines):
            cut = (f"\n[cut: lines {len(shown) + 1} to {len(lines)} of {rel} are not shown; the prompt holds "
                   f"at most {MAX_CONTEXT_CHARS:,} characters of files. Edit only the lines shown.]")
        fence = _fence(body)
        newline = "" if not body or body.endswith("\n") else "\n"
        self.parts.append(f"### {rel}{note}\n{fence}\n{body}{newline}{fence}{cut}\n")

    def render(self) -> str:
        text = "\n".join(self.parts)
        if self.omitted:
            text += (f"\nNot shown (over the {MAX_CONTEXT_CHARS:,}-character budget for files): "
                     f"{', '.join(self.omitted)}\n")
        return text


def mentioned_paths(root: Path, texts: Iterable[str]) -> list[str]:
    """Paths of existing files the texts name (``src/x.py``, or an absolute path inside ``root`` as a
    traceback writes it), in order of first mention; at most ``MAX_MENTIONED_FILES``."""
    found: list[str] = []
    real_root = root.resolve()
    for text in texts:
        for token in _MENTION.findall(text):
            token = token.rstrip(".")
            if token.startswith("/"):
                for base in (root, real_root):
                    try:
                        token = Path(token).relative_to(base).as_posix()
                        break
                    except ValueError:
                        continue
                else:
                    continue
            try:
                rel, content = read_text(root, token)
            except ValueError:
                continue
            if content is not None and rel not in found:
                found.append(rel)
            if len(found) >= MAX_MENTIONED_FILES:
                return found
    return found


def _files_section(root: Path, listed: Sequence[str], mentioned: Sequence[str], budget: int) -> str:
    files = _Files(root, budget)
    for path in dict.fromkeys([*listed, *mentioned]):
        note = "" if path in listed else " (mentioned in the task)"
        try:
            rel, text = read_text(root, path)
        except ValueError as exc:
            files.parts.append(f"### {path}\n(not shown: {exc})\n")
            continue
        if text is None and path not in listed:
            continue
        files.add(rel, text, note)
    return files.render()


def first_prompt(assignment: Assignment, *, budget: int = MAX_CONTEXT_CHARS) -> list[Message]:
    """The opening conversation of a round: the rules (system) and the task with the files (user)."""
    package, subtask, root = assignment.package, assignment.subtask, assignment.worktree
    parts = [f"# Work package: {package.title}\n\n{_head(package.text, MAX_PACKAGE_CHARS)}",
             f"# Your subtask: {subtask.title} ({subtask.id})\n\n{subtask.instructions.strip()}"]
    if subtask.acceptance:
        parts.append("## Acceptance criteria\n" + "\n".join(f"- {a}" for a in subtask.acceptance))
    if assignment.feedback.strip():
        parts.append(f"## Your previous round was sent back (this is round {assignment.round})\n"
                     "Your changes so far are in the files below. Fix what this says:\n\n"
                     + _tail(assignment.feedback.strip(), MAX_FEEDBACK_CHARS))
    feedback = _tail(assignment.feedback, MAX_FEEDBACK_CHARS)
    mentioned = mentioned_paths(root, [subtask.instructions, *subtask.acceptance, feedback])
    mentioned = [m for m in mentioned if m not in subtask.files]
    files = _files_section(root, subtask.files, mentioned, budget)
    listing = repository_files(root)
    if listing:
        parts.append("## The repository's files\n" + "\n".join(listing))
    parts.append("## Files\n" + (files if files.strip() else "(no files were named for this subtask)\n"))
    parts.append("Make the change now. Answer with SEARCH/REPLACE edit blocks only.")
    return [Message.system(SYSTEM), Message.user("\n\n".join(parts))]


def _readable(root: Path, path: str) -> bool:
    try:
        return bool(path) and read_text(root, path)[1] is not None
    except ValueError:
        return False


def repository_files(root: Path, limit: int = MAX_LISTED_FILES) -> list[str]:
    """The worktree's files (hidden directories, caches and dependencies left out), sorted; at most ``limit``
    (one more entry, "…", says there are more). The model sees where things are without a file's content."""
    found: list[str] = []
    for top, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
        rel_top = Path(top).relative_to(root)
        for name in sorted(names):
            found.append((rel_top / name).as_posix())
            if len(found) > limit:
                return [*found[:limit], "…"]
    return found


def _retry_prompt(root: Path, failed_paths: Sequence[str], feedback: str, applied: Sequence[int],
                  truncated: bool, budget: int) -> str:
    text = "Some of your edit blocks did not apply:\n" + feedback
    if applied:
        text += (f"\n\nThe other blocks ({', '.join(str(i) for i in applied)}) were applied; do not send them "
                 "again.")
    if truncated:
        text += "\n\nYour answer was cut off at the length limit: send fewer or smaller blocks."
    files = _files_section(root, [p for p in dict.fromkeys(failed_paths) if _readable(root, p)], [], budget)
    if files.strip():
        text += "\n\nThe current content of the files:\n\n" + files
    return text + ("\nSend new blocks only for the changes still missing, with SEARCH sections copied exactly "
                   "from the current content.")


class EditorWorker:
    """The ``editor`` worker (see the module docstring). ``max_attempts``: model answers per round."""

    name = "editor"

    def __init__(self, calls: ModelCalls, *, max_attempts: int = 3, context_chars: int = MAX_CONTEXT_CHARS,
                 max_tokens: int | None = None, temperature: float | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.calls, self.max_attempts, self.context_chars = calls, max_attempts, context_chars
        self.max_tokens, self.temperature = max_tokens, temperature

    async def _ask(self, assignment: Assignment, messages: list[Message]) -> ChatResponse:
        call = self.calls.ask("worker", messages, subtask=assignment.subtask.id, max_tokens=self.max_tokens,
                              temperature=self.temperature)
        if assignment.deadline is None:
            return await call
        async with asyncio.timeout(max(0.0, assignment.deadline - time.monotonic())):
            return await call

    async def work(self, assignment: Assignment) -> WorkerResult:
        root = assignment.worktree
        messages = first_prompt(assignment, budget=self.context_chars)
        known = list(assignment.subtask.files)
        changed: list[str] = []
        applied = failed = calls = 0
        cost = 0.0
        model: str | None = None
        provider: str | None = None
        problems = ""
        stopped: str | None = None
        for _attempt in range(self.max_attempts):
            if assignment.deadline is not None and time.monotonic() >= assignment.deadline:
                stopped = "the deadline was reached before the next model call"
                break
            try:
                response = await self._ask(assignment, messages)
            except (BudgetExceededError, DeadlineReached):
                raise  # the run's own stops: the runner records them
            except TimeoutError:  # the builtin one: asyncio.timeout at the assignment's deadline
                stopped = "the deadline was reached during a model call"
                break
            except PodiumError as exc:
                stopped = f"the model call failed: {exc.message}"
                break
            calls += 1
            cost += response.cost
            model, provider = response.served_by, response.provider
            blocks: list[EditBlock] = parse_edits(response.text, known=known)
            messages.append(Message(role="assistant", content=response.text))
            if not blocks:
                problems = NO_BLOCKS
                messages.append(Message.user(NO_BLOCKS))
                continue
            report = await asyncio.to_thread(apply_edits, root, blocks)
            applied += len(report.applied)
            failed_now = report.failed
            failed += len(failed_now)
            changed.extend(p for p in report.files_changed if p not in changed)
            problems = report.feedback()
            if not problems:
                break
            retry = _retry_prompt(root, [o.path for o in failed_now], problems, [o.index for o in report.applied],
                                  response.finish_reason == "length", self.context_chars)
            messages.append(Message.user(retry))
        summary = _summary(changed, applied, failed, calls, problems, stopped)
        error = _error(changed, applied, calls, problems, stopped)
        return WorkerResult(changed=bool(changed), summary=summary, model=model, provider=provider, cost=cost,
                            error=error)


def _error(changed: Sequence[str], applied: int, calls: int, problems: str, stopped: str | None) -> str | None:
    """Set when the round could not finish: nothing changed, or it was cut short (deadline, failed call).
    Blocks still failing beside changes that did apply are no error: the check and the review judge those."""
    last = f"\nThe last problems:\n{problems}" if problems else ""
    if stopped is not None:
        return f"{stopped}; " + ("nothing was changed" if not changed else f"changed {', '.join(changed)}") + last
    if changed:
        return None
    if applied:
        return "the edit blocks applied but left every file as it was"
    return f"no edit block could be applied in {calls} answer{'s' * (calls != 1)}" + last


def _summary(changed: Sequence[str], applied: int, failed: int, calls: int, problems: str,
             stopped: str | None) -> str:
    files = ", ".join(changed) if changed else "no file"
    text = (f"editor: changed {files}; {applied} block{'s' * (applied != 1)} applied, {failed} failed, in "
            f"{calls} answer{'s' * (calls != 1)}")
    if stopped:
        text += f"; stopped: {stopped}"
    if problems:
        first = problems.splitlines()[0]
        text += f"; still failing: {first[:300]}"
    return text
