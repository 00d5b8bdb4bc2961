"""Search/replace edit blocks: parsing what models write, applying it exactly or with Aider's whitespace
fallbacks, refusing what is ambiguous, and never touching anything outside the worktree."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from podium.work import edits
from podium.work.edits import EditBlock, EditError, apply_edits, parse_edits, read_text


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def run(root: Path, answer: str) -> edits.ApplyReport:
    return apply_edits(root, parse_edits(answer))


# --- parsing ------------------------------------------------------------------------------------------------
def test_parse_the_shapes_models_write():
    answer = """I'll change two files.

src/a.py
```python
<<<<<<< SEARCH
x = 1
=======
x = 2
>>>>>>> REPLACE
```

**src/b.py**:
```
<<<<<<< SEARCH
=======
new
>>>>>>> REPLACE
```

```
`src/c.py`
<<<<<<< SEARCH
c
=======
d
>>>>>>> REPLACE
```

# docs/x.md
<<<<<<<  SEARCH
old
=======
>>>>>>> REPLACE

```src/d.py
<<<<<<< SEARCH
=======
>>>>>>> REPLACE
```
"""
    blocks = parse_edits(answer)
    assert [(b.index, b.path, b.search, b.replace, b.error) for b in blocks] == [
        (1, "src/a.py", "x = 1\n", "x = 2\n", None),
        (2, "src/b.py", "", "new\n", None),
        (3, "src/c.py", "c\n", "d\n", None),
        (4, "docs/x.md", "old\n", "", None),
        (5, "src/d.py", "", "", None),
    ]


def test_parse_keeps_the_path_for_following_blocks_and_reads_crlf():
    answer = ("a.py\r\n<<<<<<< SEARCH\r\n  one  \r\n=======\r\ntwo\r\n>>>>>>> REPLACE\r\n"
              "\r\n<<<<<<< SEARCH\r\nthree\r\n=======\r\nfour\r\n>>>>>>> REPLACE\r\n")
    blocks = parse_edits(answer)
    assert [(b.path, b.search, b.replace) for b in blocks] == [("a.py", "  one  \n", "two\n"),
                                                                ("a.py", "three\n", "four\n")]


def test_parse_reports_malformed_blocks_instead_of_raising():
    blocks = parse_edits("<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n"
                         "a.py\n<<<<<<< SEARCH\nx\n>>>>>>> REPLACE\n"
                         "b.py\n<<<<<<< SEARCH\nx\n=======\ny\n")
    assert [b.index for b in blocks] == [1, 2, 3]
    assert "no file path" in (blocks[0].error or "")
    assert "=======" in (blocks[1].error or "")
    assert "REPLACE" in (blocks[2].error or "")


def test_parse_paths_with_spaces_only_when_known():
    answer = block("My Notes.md", "", "hi\n")
    assert "no file path" in (parse_edits(answer)[0].error or "")
    assert parse_edits(answer, known=["My Notes.md"])[0].path == "My Notes.md"


def test_parse_limits():
    many = "".join(block(f"f{i}.txt", "", "x\n") for i in range(edits.MAX_BLOCKS + 5))
    blocks = parse_edits(many)
    assert len(blocks) == edits.MAX_BLOCKS + 1
    assert "more than" in (blocks[-1].error or "")
    huge = parse_edits("x" * (edits.MAX_ANSWER_CHARS + 1))
    assert len(huge) == 1 and "characters" in (huge[0].error or "")
    assert parse_edits("no blocks here") == []


# --- applying -----------------------------------------------------------------------------------------------
SOURCE = """import math


def area(r):
    return math.pi * r * r


class Shape:
    def area(self):
        return 0
"""


def test_exact_match_and_creation(tmp_path: Path):
    (tmp_path / "geo.py").write_text(SOURCE)
    report = run(tmp_path, block("geo.py", "def area(r):\n    return math.pi * r * r\n",
                                 "def area(r: float) -> float:\n    return math.pi * r**2\n")
                 + block("pkg/sub/new.py", "", "VALUE = 1\n"))
    assert not report.failed and report.files_changed == ("geo.py", "pkg/sub/new.py")
    assert [o.match for o in report.applied] == ["exact", "created"]
    assert "def area(r: float) -> float:\n    return math.pi * r**2\n\n\nclass" in (tmp_path / "geo.py").read_text()
    assert (tmp_path / "pkg/sub/new.py").read_text() == "VALUE = 1\n"


def test_trailing_whitespace_and_indentation_fallbacks(tmp_path: Path):
    (tmp_path / "geo.py").write_text(SOURCE.replace("return math.pi * r * r", "return math.pi * r * r   "))
    report = run(tmp_path, block("geo.py", "def area(r):\n    return math.pi * r * r\n",
                                 "def area(r):\n    return 3.14 * r * r\n"))
    assert [o.match for o in report.applied] == ["trailing whitespace"]
    # the method, written by the model without the class's indentation: re-indented on the way in
    report = run(tmp_path, block("geo.py", "def area(self):\n    return 0\n",
                                 "def area(self):\n    # none\n        # deeper\n    return 1\n"))
    assert [o.match for o in report.applied] == ["indentation"]
    assert (tmp_path / "geo.py").read_text().endswith(
        "class Shape:\n    def area(self):\n        # none\n            # deeper\n        return 1\n")


def test_indentation_fallback_when_the_model_indents_too_much(tmp_path: Path):
    (tmp_path / "m.py").write_text("if x:\n    y = 1\n    z = 2\n")
    report = run(tmp_path, block("m.py", "        y = 1\n        z = 2\n", "        y = 3\n"))
    assert [o.match for o in report.applied] == ["indentation"]
    assert (tmp_path / "m.py").read_text() == "if x:\n    y = 3\n"


def test_ambiguous_search_is_refused_unless_exact_unique(tmp_path: Path):
    (tmp_path / "d.txt").write_text("a\nb\na\nb\n")
    report = run(tmp_path, block("d.txt", "a\nb\n", "c\n"))
    assert report.failed and "matches 2 places" in report.failed[0].message and "lines 1, 3" in report.failed[0].message
    assert (tmp_path / "d.txt").read_text() == "a\nb\na\nb\n" and report.files_changed == ()
    # one exact match wins over a whitespace-insensitive second one
    (tmp_path / "e.txt").write_text("a\nb\n    a\n    b\n")
    report = run(tmp_path, block("e.txt", "a\nb\n", "c\n"))
    assert [o.match for o in report.applied] == ["exact"]
    assert (tmp_path / "e.txt").read_text() == "c\n    a\n    b\n"
    # two matches at the indentation level: refused
    (tmp_path / "f.txt").write_text("  a\n  b\n    a\n    b\n")
    assert "matches 2 places" in run(tmp_path, block("f.txt", "a\nb\n", "c\n")).failed[0].message


def test_a_miss_shows_the_closest_lines(tmp_path: Path):
    (tmp_path / "geo.py").write_text(SOURCE)
    report = run(tmp_path, block("geo.py", "def area(radius):\n    return math.pi * radius * r\n", "x\n"))
    message = report.failed[0].message
    assert message.startswith("the SEARCH section did not match any lines in geo.py")
    assert "closest lines (lines 4 to 5)" in message and "def area(r):\n    return math.pi * r * r\n" in message
    report = run(tmp_path, block("geo.py", "zzzz qqqq\n", "x\n"))
    assert "No similar lines" in report.failed[0].message


def test_a_block_already_applied_is_said_so(tmp_path: Path):
    (tmp_path / "a.txt").write_text("one\nTWO\nthree\n")
    report = run(tmp_path, block("a.txt", "two\n", "TWO\n"))
    assert "already in a.txt" in report.failed[0].message


def test_blocks_apply_in_order_and_a_failure_does_not_stop_the_rest(tmp_path: Path):
    (tmp_path / "a.txt").write_text("one\ntwo\nthree\n")
    report = run(tmp_path, block("a.txt", "one\n", "ONE\n") + block("a.txt", "nope\n", "x\n")
                 + block("a.txt", "ONE\ntwo\n", "1\n2\n") + block("../evil", "", "x\n"))
    assert [o.index for o in report.applied] == [1, 3] and [o.index for o in report.failed] == [2, 4]
    assert (tmp_path / "a.txt").read_text() == "1\n2\nthree\n"
    feedback = report.feedback()
    assert "block 2 (a.txt)" in feedback and "block 4 (../evil)" in feedback and "leaves the repository" in feedback


def test_empty_search_creates_or_fills_only(tmp_path: Path):
    (tmp_path / "full.txt").write_text("content\n")
    (tmp_path / "empty.txt").write_text("")
    report = run(tmp_path, block("full.txt", "", "x\n") + block("empty.txt", "", "filled\n")
                 + block("missing.txt", "something\n", "x\n") + block("new.txt", "", "a\n")
                 + block("new.txt", "", "again\n") + block("new.txt", "a\n", "b\n"))
    assert [o.index for o in report.applied] == [2, 4, 6]
    messages = {o.index: o.message for o in report.failed}
    assert "already has content" in messages[1] and "does not exist" in messages[3]
    assert "already has content" in messages[5]
    assert (tmp_path / "full.txt").read_text() == "content\n"
    assert (tmp_path / "empty.txt").read_text() == "filled\n" and (tmp_path / "new.txt").read_text() == "b\n"


def test_newlines_bom_and_mode_are_kept(tmp_path: Path):
    (tmp_path / "crlf.txt").write_bytes(b"a\r\nb\r\nc\r\n")
    (tmp_path / "tail.txt").write_bytes(b"a\nb")
    (tmp_path / "bom.txt").write_bytes("\ufeffhead\nbody\n".encode())
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    report = run(tmp_path, block("crlf.txt", "b\n", "B\nB2\n") + block("tail.txt", "b\n", "B\n")
                 + block("bom.txt", "head\n", "HEAD\n") + block("run.sh", "echo hi\n", "echo bye\n"))
    assert not report.failed
    assert (tmp_path / "crlf.txt").read_bytes() == b"a\r\nB\r\nB2\r\nc\r\n"
    assert (tmp_path / "tail.txt").read_bytes() == b"a\nB"
    assert (tmp_path / "bom.txt").read_bytes() == "\ufeffHEAD\nbody\n".encode()
    assert stat.S_IMODE(script.stat().st_mode) == 0o755 and script.read_text() == "#!/bin/sh\necho bye\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".podium-edit")]


def test_form_feeds_and_unicode_line_separators_stay_inside_lines(tmp_path: Path):
    (tmp_path / "ff.py").write_text("a = 1\n\x0c\nb = 2\u2028c\n")
    report = run(tmp_path, block("ff.py", "b = 2\u2028c\n", "b = 3\n"))
    assert not report.failed and (tmp_path / "ff.py").read_text() == "a = 1\n\x0c\nb = 3\n"


def test_refuses_binary_big_special_and_directory_files(tmp_path: Path):
    (tmp_path / "bin.dat").write_bytes(b"abc\x00def\n")
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (tmp_path / "big.txt").write_text("x\n" * (edits.MAX_FILE_BYTES // 2 + 1))
    (tmp_path / "near.txt").write_text("start\n" + "y\n" * (edits.MAX_FILE_BYTES // 2 - 10))
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    blocks = parse_edits(block("bin.dat", "abc\n", "x\n") + block("latin.txt", "x\n", "y\n")
                         + block("big.txt", "x\n", "y\n") + block("near.txt", "start\n", "z" * 100 + "\n")
                         + block("dir", "", "x\n") + block("fifo", "", "x\n"))
    report = apply_edits(tmp_path, [*blocks, EditBlock(7, "huge.txt", "", "h" * edits.MAX_FILE_BYTES + "\n")])
    messages = [o.message for o in report.failed]
    assert len(messages) == 7 and not report.applied
    for expected, message in zip(["binary", "not UTF-8", "bytes", "grow past", "directory", "not a regular file",
                                  "grow past"], messages, strict=True):
        assert expected in message
    assert (tmp_path / "bin.dat").read_bytes() == b"abc\x00def\n" and not (tmp_path / "huge.txt").exists()


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A worktree beside an outside directory, with links out of it, into .git and inside it."""
    root = tmp_path / "work"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / "src").mkdir()
    (root / "src" / "real.py").write_text("x = 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / "out").symlink_to(outside)
    (root / "out_file").symlink_to(outside / "secret.txt")
    (root / "gitlink").symlink_to(root / ".git")
    (root / "alias.py").symlink_to(root / "src" / "real.py")
    (root / "self").symlink_to(root)
    return root


@pytest.mark.parametrize(("path", "reason"), [
    ("../outside/secret.txt", "leaves the repository"), ("/etc/passwd", "absolute"), ("C:/x.txt", "absolute"),
    (".git/config", "inside .git"), ("src/../../outside/x", "leaves the repository"), ("out/secret.txt", "outside"),
    ("out_file", "outside"), ("out/new.txt", "outside"), ("gitlink/config", ".git"), (".GIT/config", ".git"),
    ("self", "root"), ("src/.git/hooks/pre-commit", "inside .git"), ("..\\outside\\x", "leaves the repository"),
])
def test_hostile_paths_are_refused(hostile: Path, path: str, reason: str):
    report = run(hostile, block(path, "", "pwned\n"))
    assert not report.applied and reason in report.failed[0].message
    assert (hostile.parent / "outside" / "secret.txt").read_text() == "secret\n"
    assert sorted(p.name for p in (hostile.parent / "outside").iterdir()) == ["secret.txt"]
    assert (hostile / ".git" / "config").read_text() == "[core]\n"


def test_nul_and_lone_surrogates_are_refused(hostile: Path):
    report = apply_edits(hostile, [EditBlock(1, "src/a\x00.py", "", "x\n"), EditBlock(2, "src/\ud800.py", "", "x\n"),
                                   EditBlock(3, "src/b.py", "", "\ud800\n"), EditBlock(4, "src/c.py", "", "\x00\n"),
                                   EditBlock(5, "src/real.py", "\ud800\n", "x\n")])
    assert not report.applied and report.files_changed == ()
    reasons = ("which no file name may hold", "not a valid file name", "not valid Unicode", "NUL", "did not match")
    assert [next(w for w in reasons if w in o.message) for o in report.failed] == list(reasons)
    assert sorted(p.name for p in (hostile / "src").iterdir()) == ["real.py"]


def test_a_link_inside_the_worktree_edits_its_target(hostile: Path):
    report = run(hostile, block("alias.py", "x = 1\n", "x = 2\n"))
    assert report.files_changed == ("src/real.py",) and (hostile / "alias.py").is_symlink()
    report = run(hostile, block("docs/ünïcode ✓.md", "", "hi\n"))
    assert "no file path" in report.failed[0].message  # a path with spaces the caller did not name
    report = apply_edits(hostile, parse_edits(block("docs/ünïcode ✓.md", "", "hi\n"), known=["docs/ünïcode ✓.md"]))
    assert report.files_changed == ("docs/ünïcode ✓.md",)
    assert (hostile / "src" / "real.py").read_text() == "x = 2\n"


def test_read_text_and_a_missing_worktree(hostile: Path):
    assert read_text(hostile, "./src//real.py") == ("src/real.py", "x = 1\n")
    assert read_text(hostile, "src/none.py") == ("src/none.py", None)
    with pytest.raises(ValueError, match="outside"):
        read_text(hostile, "out_file")
    with pytest.raises(EditError, match="does not exist"):
        apply_edits(hostile / "nope", [])


# --- properties ---------------------------------------------------------------------------------------------
def _plain(line: str) -> bool:
    return not any(p.match(line) for p in (edits._HEAD, edits._DIVIDER, edits._TAIL))


LINE = st.text(st.characters(exclude_characters="\n\r\x00", exclude_categories=["Cs"]), max_size=12).filter(_plain)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINE, min_size=1, max_size=12), trailing=st.booleans(), data=st.data(),
       replacement=st.lists(LINE, max_size=6))
def test_round_trip_applies_exactly_the_replacement(lines: list[str], trailing: bool, data: st.DataObject,
                                                    replacement: list[str]):
    assume(trailing or lines[-1])  # "a\n" is one line, not "a" and an empty one
    i = data.draw(st.integers(0, len(lines) - 1))
    j = data.draw(st.integers(i + 1, len(lines)))
    search = lines[i:j]
    assume("".join(search).strip())
    original = "\n".join(lines) + ("\n" if trailing else "")
    answer = block("f.txt", "".join(s + "\n" for s in search), "".join(r + "\n" for r in replacement))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "f.txt").write_bytes(original.encode())
        report = run(root, answer)
        occurrences = sum(lines[k:k + len(search)] == search for k in range(len(lines) - len(search) + 1))
        if occurrences > 1:
            assert report.failed and "matches" in report.failed[0].message
            assert (root / "f.txt").read_bytes() == original.encode()
            return
        assert [o.match for o in report.applied] == ["exact"], report.feedback()
        prefix = "".join(s + "\n" for s in lines[:i])
        middle = "".join(r + "\n" for r in replacement)
        suffix = "".join(s + "\n" for s in lines[j:])
        if not trailing:
            if j < len(lines):
                suffix = suffix[:-1]
            elif replacement:
                middle = middle[:-1]
        assert (root / "f.txt").read_bytes().decode() == prefix + middle + suffix


MARKERS = st.sampled_from(["<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE", "```", "```python", "a.py", "**b.py**:",
                           "", "x", "../c", "<<<<<<<<< SEARCH>", "  ====== ", "\r"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=400), st.lists(st.one_of(MARKERS, st.text(max_size=8)), max_size=40)
                 .map("\n".join)))
def test_the_parser_never_crashes(text: str):
    blocks = parse_edits(text)
    assert [b.index for b in blocks] == list(range(1, len(blocks) + 1))
    for b in blocks:
        assert b.error is not None or b.path


COMPONENT = st.sampled_from(["..", ".", ".git", ".GIT", "a", "ü", "", "out", "out_file", "gitlink", "self", "alias.py",
                             "C:", "\\..", "\x00", "\ud800", "\udcff", " ", "~", "src", "real.py", "%2e%2e", "…"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(COMPONENT, min_size=1, max_size=5), absolute=st.booleans(),
       search=st.sampled_from(["", "x = 1\n"]))
def test_paths_never_escape_the_root(parts: list[str], absolute: bool, search: str):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = base / "work"
        (root / ".git").mkdir(parents=True)
        (root / ".git" / "config").write_text("[core]\n")
        (root / "src").mkdir()
        (root / "src" / "real.py").write_text("x = 1\n")
        (base / "outside").mkdir()
        (base / "outside" / "real.py").write_text("x = 1\n")
        (root / "out").symlink_to(base / "outside")
        (root / "out_file").symlink_to(base / "outside" / "real.py")
        (root / "gitlink").symlink_to(root / ".git")
        (root / "self").symlink_to(root)
        path = ("/" if absolute else "") + "/".join(parts)
        report = apply_edits(root, [EditBlock(1, path, search, "pwned\n")])
        assert sorted(p.name for p in (base / "outside").iterdir()) == ["real.py"]
        assert (base / "outside" / "real.py").read_text() == "x = 1\n"
        assert sorted(p.name for p in base.iterdir()) == ["outside", "work"]
        assert sorted(p.name for p in (root / ".git").iterdir()) == ["config"]
        assert (root / ".git" / "config").read_text() == "[core]\n"
        for changed in report.files_changed:
            real = Path(os.path.realpath(root / changed))
            assert real.is_relative_to(Path(os.path.realpath(root))) and ".git" not in real.parts


CODE_LINE = st.tuples(st.integers(0, 3), st.text("abxy=()", min_size=1, max_size=6)).map(
    lambda t: "    " * t[0] + t[1])


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(CODE_LINE, min_size=1, max_size=10), data=st.data(), shift=st.integers(-2, 2),
       added=st.lists(st.tuples(st.integers(0, 2), st.text("cz", min_size=1, max_size=4)), max_size=3))
def test_a_search_indented_differently_is_reindented(lines: list[str], data: st.DataObject, shift: int,
                                                      added: list[tuple[int, str]]):
    """The model's SEARCH and REPLACE shifted by the same indentation: the replacement lands at the file's."""
    i = data.draw(st.integers(0, len(lines) - 1))
    j = data.draw(st.integers(i + 1, len(lines)))
    search = lines[i:j]
    common = min(len(s) - len(s.lstrip()) for s in search)
    assume(shift >= 0 or common >= -4 * shift)
    replacement = [*search, *("    " * depth + text for depth, text in added)]
    replacement = [r for r in replacement if len(r) - len(r.lstrip()) >= common]  # nothing left of the search's
    assume(replacement)

    def move(line: str) -> str:
        return " " * (4 * shift) + line if shift >= 0 else line[-4 * shift:]

    answer = block("m.py", "".join(move(s) + "\n" for s in search), "".join(move(r) + "\n" for r in replacement))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "m.py").write_text("".join(s + "\n" for s in lines))
        report = run(root, answer)
        if not report.applied or report.applied[0].match != ("exact" if shift == 0 else "indentation"):
            # the moved text also matches somewhere else (or twice): then it must have been refused or
            # matched there honestly — never applied at a place that does not match at that level
            assume(False)
        expected = lines[:i] + replacement + lines[j:]
        assert (root / "m.py").read_text() == "".join(s + "\n" for s in expected)
