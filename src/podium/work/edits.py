"""Search/replace edit blocks: how Podium's own editor worker changes files.

Models already know this format (Aider's "diff" edit format): the file's path on its own line, then a block
written like a git merge conflict. A block whose SEARCH is empty creates the file (or fills an empty one)::

    src/temperature.py
    ```python
    <<<<<<< SEARCH
    def convert(value):
        return value
    =======
    def convert(value, scale=1.8):
        return value * scale
    >>>>>>> REPLACE
    ```

``parse_edits`` reads every block of an answer (fenced or not; the path may be wrapped in backticks or
asterisks, or carry a trailing colon) and never raises: a block it cannot read comes back with ``error`` set,
so the model is told what was wrong with it. ``apply_edits`` applies the blocks in order, each on its own:

- a SEARCH must match whole lines: exactly first; then ignoring trailing whitespace; then ignoring a
  uniform difference of leading indentation (the replacement is re-indented by the same amount). A SEARCH
  that matches more than one place at the first level that matches at all is refused as ambiguous;
- a block that does not apply is reported with a message addressed to the model (for a SEARCH that matches
  nothing: the closest lines of the file, found with difflib), and the blocks after it still apply. A
  partial apply plus precise feedback is how the editor's retry loop converges (Aider does the same); the
  editor sends the file's new content with the failures, so the model only resends what failed;
- files are written once each, at the end, through a temporary file and ``os.replace``: a file is never
  left half-written, whatever happens in between.

Safety: every path goes through ``check_repo_path`` (relative, no ``..``, never ``.git``) and must still be
inside the root after symlinks are resolved (a link to ``/etc`` or to ``.git`` is refused; a link to a file
inside the root edits that file). Only regular UTF-8 text files up to ``MAX_FILE_BYTES`` are read or
written (no binary files, FIFOs or devices). An answer may hold at most ``MAX_BLOCKS`` blocks and
``MAX_ANSWER_CHARS`` characters.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tempfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from podium.errors import PodiumError
from podium.work.plan import check_repo_path

MAX_BLOCKS = 100
MAX_ANSWER_CHARS = 1_000_000
MAX_FILE_BYTES = 1_000_000  # a file larger than this is neither edited nor created
MAX_PATH_CHARS = 1_000

_HEAD = re.compile(r"^\s*<{5,9}\s*SEARCH\s*>?\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_TAIL = re.compile(r"^\s*>{5,9}\s*REPLACE\s*<?\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_LABEL = re.compile(r"^(?:file(?:name|path)?|path)\s*:\s*", re.I)

Match = Literal["created", "exact", "trailing whitespace", "indentation"]


@dataclass(frozen=True)
class EditBlock:
    """One block of an answer. ``index`` counts from 1 in the order the model wrote them; ``path`` is the
    path as written (stripped of decoration), checked only when the block is applied."""

    index: int
    path: str
    search: str
    replace: str
    error: str | None = None  # the block could not be read; said to the model


@dataclass(frozen=True)
class BlockOutcome:
    index: int
    path: str
    applied: bool
    message: str  # how it matched, or why it did not apply (addressed to the model)
    match: Match | None = None


@dataclass(frozen=True)
class ApplyReport:
    outcomes: tuple[BlockOutcome, ...] = ()
    files_changed: tuple[str, ...] = ()  # repo-relative, in the order first changed
    write_errors: tuple[str, ...] = field(default=())

    @property
    def applied(self) -> tuple[BlockOutcome, ...]:
        return tuple(o for o in self.outcomes if o.applied)

    @property
    def failed(self) -> tuple[BlockOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.applied)

    def feedback(self) -> str:
        """The failures, as the model should read them ("" when every block applied)."""
        lines = [f"- block {o.index} ({o.path or 'no path'}): {o.message}" for o in self.failed]
        lines += [f"- {e}" for e in self.write_errors]
        return "\n".join(lines)


class EditError(PodiumError):
    """The edit could not be attempted at all (the worktree is missing): a fault of the caller, not the model."""


# --- parsing ------------------------------------------------------------------------------------------------
def _path_candidate(line: str, known: Collection[str]) -> str | None:
    """The path a line names, if it looks like one: ``src/x.py``, ```` ```src/x.py ````, ``**x.py**:``…"""
    text = line.strip()
    fence = _FENCE.match(text)
    if fence is not None:
        text = text[fence.end():].strip()  # ```python → "python" (no path); ```src/x.py → src/x.py
        if not text or ("." not in text and "/" not in text):
            return None
    text = _LABEL.sub("", text.lstrip("#").strip())
    text = text.strip().rstrip(":").strip().strip("`*'\"").strip()
    if not text or text == "..." or len(text) > MAX_PATH_CHARS or _HEAD.match(text) or _DIVIDER.match(text):
        return None
    if any(c.isspace() for c in text) and text not in known:
        return None  # prose ("Here is the change:"); a path with spaces must be one the caller knows
    return text


def _find_path(before: Sequence[str], known: Collection[str]) -> str | None:
    """The path on the nearest non-blank line before a SEARCH marker, skipping one opening fence."""
    seen_fence = False
    for line in reversed(before[-4:]):
        if not line.strip():
            continue
        if _FENCE.match(line) and not seen_fence:
            candidate = _path_candidate(line, known)
            if candidate is not None:
                return candidate
            seen_fence = True
            continue
        return _path_candidate(line, known)
    return None


def parse_edits(text: str, known: Collection[str] = ()) -> list[EditBlock]:
    """Every edit block in a model's answer, in order. Never raises: blocks that cannot be read (no path,
    no ``=======``, no ``>>>>>>> REPLACE``, over the limits) carry ``error``. ``known`` are paths the caller
    expects (they may contain spaces, which prose lines otherwise do)."""
    if len(text) > MAX_ANSWER_CHARS:
        return [EditBlock(1, "", "", "", error=f"the answer has {len(text):,} characters; send at most "
                                                f"{MAX_ANSWER_CHARS:,} (fewer, smaller blocks)")]
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    blocks: list[EditBlock] = []
    last_path: str | None = None
    i = 0
    start = 0  # where the text before the next block starts (the path is looked for there)
    while i < len(lines):
        if not _HEAD.match(lines[i]):
            i += 1
            continue
        index = len(blocks) + 1
        if index > MAX_BLOCKS:
            blocks.append(EditBlock(index, "", "", "", error=f"more than {MAX_BLOCKS} blocks in one answer; "
                                                             "the rest were not read. Send fewer blocks"))
            break
        found = _find_path(lines[start:i], known)
        path = found if found is not None else last_path
        i += 1
        search_start = i
        while i < len(lines) and not (_DIVIDER.match(lines[i]) or _HEAD.match(lines[i]) or _TAIL.match(lines[i])):
            i += 1
        if i >= len(lines) or not _DIVIDER.match(lines[i]):
            blocks.append(EditBlock(index, path or "", "", "", error="this block has no ======= line after "
                                    "its SEARCH section; write <<<<<<< SEARCH, the lines, =======, the new "
                                    "lines, >>>>>>> REPLACE"))
            start = i
            continue
        search = lines[search_start:i]
        i += 1
        replace_start = i
        while i < len(lines) and not (_TAIL.match(lines[i]) or _HEAD.match(lines[i]) or _DIVIDER.match(lines[i])):
            i += 1
        if i >= len(lines) or not _TAIL.match(lines[i]):
            blocks.append(EditBlock(index, path or "", "", "", error="this block does not end with a "
                                    ">>>>>>> REPLACE line"))
            start = i
            continue
        replace = lines[replace_start:i]
        i += 1
        start = i
        if path is None:
            blocks.append(EditBlock(index, "", "", "", error="no file path before <<<<<<< SEARCH; put the "
                                    "file's full path, relative to the repository, alone on the line before"))
            continue
        last_path = path
        blocks.append(EditBlock(index, path, _join(search), _join(replace)))
    return blocks


def _join(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


# --- matching -----------------------------------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    """Lines with their ends kept, split at ``\\n`` only (a form feed or U+2028 inside a line stays there)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _bare(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _find_exact(file: Sequence[str], search: Sequence[str]) -> list[int]:
    n = len(search)
    return [i for i in range(len(file) - n + 1) if file[i] == search[0] and list(file[i:i + n]) == list(search)]


def _find_rstrip(file: Sequence[str], search: Sequence[str]) -> list[int]:
    keys = [line.rstrip() for line in file]
    return _find_exact(keys, [line.rstrip() for line in search])


def _find_indented(file: Sequence[str], search: Sequence[str],
                   replace: Sequence[str]) -> list[tuple[int, str, int]]:
    """Places where ``search`` matches once a uniform indentation is put in front of each non-blank line,
    after removing the indentation the search and the replacement share (as Aider does, so the
    replacement keeps its indentation relative to the search): (start, the file's prefix, removed width)."""
    body = [line.rstrip() for line in search]
    width = min((_indent(line) for line in [*body, *replace] if line.strip()), default=0)
    body = [line[width:] for line in body]
    if not any(body):
        return []
    n = len(body)
    found: list[tuple[int, str, int]] = []
    for i in range(len(file) - n + 1):
        prefix: str | None = None
        for want, have in zip(body, file[i:i + n], strict=True):
            have = have.rstrip()
            if not want:
                if have:
                    break
                continue
            if not have.endswith(want):
                break
            lead = have[:len(have) - len(want)]
            if lead.strip() or (prefix is not None and lead != prefix):
                break
            prefix = lead
        else:
            found.append((i, prefix or "", width))
    return found


def _reindent(replace: Sequence[str], prefix: str, width: int) -> list[str]:
    out = []
    for line in replace:
        if not line.strip():
            out.append(line)
            continue
        # take away what the search had in common (at most the line's own indentation), then add the file's
        cut = min(width, _indent(line))
        out.append(prefix + line[cut:])
    return out


def _closest(file: Sequence[str], search: Sequence[str]) -> tuple[int, int, float] | None:
    """The window of the file most like ``search`` (start, end, ratio), with bounded work: only the windows
    sharing the most lines with the search, and those starting at a line close to one of its first lines,
    are compared with difflib (a 1 MB file must not cost a SequenceMatcher per line)."""
    n = max(1, len(search))
    keys = [line.strip() for line in file]
    wanted = [line.strip() for line in search if line.strip()]
    if not keys or not wanted:
        return None
    wanted_set = set(wanted)
    hits = [0]
    for key in keys:
        hits.append(hits[-1] + (key in wanted_set))
    last = max(0, len(keys) - n)
    scored = sorted(range(last + 1), key=lambda s: hits[min(len(keys), s + n)] - hits[s], reverse=True)
    starts = {s for s in scored[:50] if hits[min(len(keys), s + n)] - hits[s] > 0}
    pool = list(dict.fromkeys(k for k in keys if k))
    for j, first in enumerate(wanted[:3]):
        for close in difflib.get_close_matches(first, pool, n=3, cutoff=0.6):
            starts.update(min(last, max(0, i - j)) for i, key in enumerate(keys) if key == close)
    target = "\n".join(line.strip() for line in search)
    best: tuple[int, int, float] | None = None
    for s in sorted(starts)[:500]:
        window = "\n".join(keys[s:s + n])
        ratio = difflib.SequenceMatcher(None, target, window, autojunk=False).ratio()
        if best is None or ratio > best[2]:
            best = (s, min(len(file), s + n), ratio)
    return best if best is not None and best[2] >= 0.5 else None


# --- applying -----------------------------------------------------------------------------------------------
class _Refused(Exception):
    pass


@dataclass
class _File:
    rel: str
    real: Path
    original: str | None  # None: the file does not exist yet
    text: str
    newline: str = "\n"
    bom: bool = False
    touched: bool = False  # a block applied to it


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _resolve(root: Path, path: str) -> tuple[str, Path]:
    """The checked relative path and the real file it names, inside ``root`` (already real)."""
    try:
        rel = check_repo_path(path)
    except ValueError as exc:
        raise _Refused(f"{exc}. Use a path relative to the repository root") from None
    if not _encodable(rel):
        raise _Refused(f"'{rel.encode('utf-8', 'replace').decode()}' is not a valid file name (a lone surrogate)")
    if any(part.lower() == ".git" for part in rel.split("/")):  # .GIT on a case-insensitive file system
        raise _Refused(f"'{rel}' is inside .git; edit working files only")
    real = Path(os.path.realpath(root / rel))
    try:
        inside = real.relative_to(root)
    except ValueError:
        raise _Refused(f"'{rel}' resolves outside the repository (through a symbolic link); edit files "
                       "inside it only") from None
    try:
        check_repo_path(inside.as_posix())
    except ValueError:
        raise _Refused(f"'{rel}' resolves into .git or the repository root itself; edit working files only"
                       ) from None
    return rel, real


def _load(rel: str, real: Path) -> _File:
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return _File(rel, real, None, "")
    except OSError as exc:
        raise _Refused(f"'{rel}' cannot be read ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise _Refused(f"'{rel}' is a directory; name a file")
    if not stat.S_ISREG(info.st_mode):
        raise _Refused(f"'{rel}' is not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise _Refused(f"'{rel}' is {info.st_size:,} bytes; files over {MAX_FILE_BYTES:,} bytes are not edited")
    data = real.read_bytes()
    if b"\x00" in data:
        raise _Refused(f"'{rel}' is a binary file; only text files are edited")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(f"'{rel}' is not UTF-8 text; only UTF-8 text files are edited") from None
    bom = text.startswith("\ufeff")
    text = text.removeprefix("\ufeff")
    newline = "\r\n" if "\r\n" in text else "\n"
    return _File(rel, real, text, text, newline, bom)


def _apply_one(file: _File, block: EditBlock) -> Match:
    if "\x00" in block.replace:
        raise _Refused("the REPLACE section contains a NUL character; only text is written")
    if not _encodable(block.replace):
        raise _Refused("the REPLACE section is not valid Unicode text (it has a lone surrogate); write plain text")
    search, replace = _lines(block.search), _lines(block.replace)
    if file.newline != "\n":
        replace = [line.removesuffix("\n") + file.newline if line.endswith("\n") else line for line in replace]
    if not block.search.strip():
        if file.text.strip():
            raise _Refused(f"the SEARCH section is empty, but {file.rel} already has content; an empty SEARCH "
                           "only creates a file. To change it, SEARCH for the exact lines to replace")
        file.text = "".join(replace)
        return "created"
    if file.original is None and not file.touched:
        raise _Refused(f"{file.rel} does not exist; to create it, leave the SEARCH section empty")
    lines = _lines(file.text)
    bare = [_bare(line) for line in lines]
    want = [_bare(line) for line in search]
    span: tuple[int, int] | None = None
    how: Match = "exact"
    new: list[str] = replace
    for how_now, find in (("exact", _find_exact), ("trailing whitespace", _find_rstrip)):
        starts = find(bare, want)
        if len(starts) > 1:
            raise _Refused(_ambiguous(file.rel, starts, how_now == "exact"))
        if starts:
            span, how = (starts[0], starts[0] + len(want)), how_now  # type: ignore[assignment]
            break
    if span is None:
        places = _find_indented(bare, want, [_bare(line) for line in replace])
        if len(places) > 1:
            raise _Refused(_ambiguous(file.rel, [p[0] for p in places], False))
        if places:
            start, prefix, width = places[0]
            span, how, new = (start, start + len(want)), "indentation", _reindent(replace, prefix, width)
    if span is None:
        raise _Refused(_no_match(file.rel, lines, search, block.replace))
    a, b = span
    if b == len(lines) and new and not lines[-1].endswith("\n"):
        new = [*new[:-1], new[-1].removesuffix(file.newline).removesuffix("\n")]  # keep "no newline at end"
    elif new and not new[-1].endswith("\n") and b < len(lines):
        new = [*new[:-1], new[-1] + file.newline]
    file.text = "".join([*lines[:a], *new, *lines[b:]])
    return how


def read_text(root: Path, path: str) -> tuple[str, str | None]:
    """A file as the editor may show it: (its checked relative path, its text, or None when it does not
    exist yet). ValueError, with the reason, for a file it may not read: outside the root, into .git, not
    a regular file, binary, not UTF-8, over ``MAX_FILE_BYTES``."""
    try:
        rel, real = _resolve(Path(os.path.realpath(root)), path)
        file = _load(rel, real)
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except OSError as exc:
        raise ValueError(f"'{path}' cannot be read ({exc.strerror or exc})") from None
    return rel, file.original


def _ambiguous(rel: str, starts: Sequence[int], exact: bool) -> str:
    where = ", ".join(str(s + 1) for s in starts[:8]) + (" …" if len(starts) > 8 else "")
    kind = "exactly" if exact else "(ignoring whitespace)"
    return (f"the SEARCH section matches {len(starts)} places in {rel} {kind} (starting at lines {where}); "
            "include more of the surrounding lines so it matches exactly one place")


def _no_match(rel: str, lines: Sequence[str], search: Sequence[str], replace: str) -> str:
    text = (f"the SEARCH section did not match any lines in {rel}. It must match existing lines exactly, "
            "including whitespace, comments and indentation.")
    near = _closest(lines, search)
    if near is not None:
        a, b, _ = near
        shown = "".join(_bare(line) + "\n" for line in lines[a:b])
        text += f" The closest lines (lines {a + 1} to {b}) are:\n```\n{shown}```"
    else:
        text += " No similar lines were found; check the file's current content."
    if replace.strip() and replace.strip() in "".join(lines):
        text += f"\nThe REPLACE lines are already in {rel}: was this block applied already? Then drop it."
    return text


def _write(file: _File) -> None:
    data = (("\ufeff" if file.bom else "") + file.text).encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise _Refused(f"{file.rel} would be {len(data):,} bytes; files over {MAX_FILE_BYTES:,} bytes are not "
                       "written")
    file.real.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(os.stat(file.real).st_mode) if file.original is not None else 0o644
    fd, tmp = tempfile.mkstemp(dir=file.real.parent, prefix=f".{file.real.name}.", suffix=".podium-edit")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, file.real)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def apply_edits(root: Path, blocks: Iterable[EditBlock]) -> ApplyReport:
    """Apply ``blocks`` in order under ``root``, each on its own; write each changed file once, whole."""
    if not root.is_dir():
        raise EditError(f"the worktree {root} does not exist or is not a directory")
    real_root = Path(os.path.realpath(root))
    files: dict[Path, _File] = {}
    outcomes: list[BlockOutcome] = []
    for block in blocks:
        if block.error is not None:
            outcomes.append(BlockOutcome(block.index, block.path, False, block.error))
            continue
        try:
            rel, real = _resolve(real_root, block.path)
            file = files.get(real)
            if file is None:  # named by where it really is (a link inside the worktree edits its target)
                file = files[real] = _load(real.relative_to(real_root).as_posix(), real)
            before = file.text
            how = _apply_one(file, block)
            if len(file.text.encode("utf-8")) > MAX_FILE_BYTES:
                file.text = before
                raise _Refused(f"{rel} would grow past {MAX_FILE_BYTES:,} bytes; files over that are not written")
            file.touched = True
        except _Refused as exc:
            outcomes.append(BlockOutcome(block.index, block.path, False, str(exc)))
            continue
        except OSError as exc:
            outcomes.append(BlockOutcome(block.index, block.path, False, f"'{block.path}' cannot be read "
                                                                         f"({exc.strerror or exc})"))
            continue
        said = f"applied ({how} match)" if how != "created" else "created" if file.original is None else "filled"
        outcomes.append(BlockOutcome(block.index, rel, True, said, how))
    changed: list[str] = []
    errors: list[str] = []
    for file in files.values():
        if not file.touched or file.text == file.original:
            continue
        try:
            _write(file)
        except _Refused as exc:
            errors.append(str(exc))
            continue
        except OSError as exc:
            errors.append(f"{file.rel} could not be written ({exc.strerror or exc})")
            continue
        changed.append(file.rel)
    return ApplyReport(tuple(outcomes), tuple(changed), tuple(errors))
