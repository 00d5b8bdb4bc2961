"""The git layer of a work run, on real repositories made here with ``git init``: worktrees, commits, diffs,
clean and conflicting merges, resumed branches, hostile names — and the user's checkout byte-identical after
all of it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from podium.errors import ConfigError
from podium.work.git import (
    GitError,
    MergeResult,
    Repo,
    RepositoryError,
    branch_name,
    integration_branch,
    open_repo,
    run_git,
)

ID = ["-c", "user.name=Test", "-c", "user.email=test@localhost"]


@pytest.fixture(autouse=True)
def _no_global_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ~/.gitconfig of whoever runs the tests (identity, hooks, signing) leaks into these repositories."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key, raising=False)


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    return subprocess.run(["git", "-C", str(cwd), *ID, *args], check=True, capture_output=True, text=True,
                          env=env, timeout=60).stdout


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, text in (files or {"a.txt": "one\ntwo\nthree\n", "src/b.py": "x = 1\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "start")
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the user's checkout (outside .git) by hash, plus the index, HEAD and the branch refs."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    for name in ("index", "HEAD"):
        out[f".git/{name}"] = hashlib.sha256((root / ".git" / name).read_bytes()).hexdigest()
    out["head"] = git(root, "rev-parse", "HEAD").strip()
    out["branch"] = git(root, "symbolic-ref", "HEAD").strip()
    out["main"] = git(root, "rev-parse", "refs/heads/main").strip()
    return out


async def test_open_repo_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="no directory at"):
        await open_repo(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepositoryError, match=r"not a git repository: .*git init"):
        await open_repo(plain)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(RepositoryError, match="has no commits yet"):
        await open_repo(empty)
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    with pytest.raises(RepositoryError, match=r"not a git (work tree|repository)"):
        await open_repo(bare)


async def test_open_repo_from_a_subdirectory(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root / "src")
    assert repo.root == root.resolve()
    assert repo.git_dir == (root / ".git").resolve()
    assert repo.identity  # no identity anywhere: commits get Podium's
    assert await repo.current_branch() == "main"
    assert await repo.head_commit() == git(root, "rev-parse", "HEAD").strip()
    assert not await repo.is_dirty()
    (root / "new.txt").write_text("x")
    assert await repo.is_dirty()
    git(root, "config", "user.name", "Someone")
    git(root, "config", "user.email", "someone@example.org")
    assert (await open_repo(root)).identity == ()


async def test_detached_head_has_no_branch(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    git(root, "checkout", "-q", "--detach")
    assert await (await open_repo(root)).current_branch() is None


async def test_worktree_add_commit_remove_and_the_user_sees_nothing(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    base = await repo.head_commit()
    branch = branch_name("pkg", "run1", "converter")
    assert branch == "podium/work/pkg/run1/converter"
    wt = await repo.add_worktree(repo.worktree_path("pkg", "run1", "converter"), branch, base)
    assert wt == (root / ".git" / "podium-work" / "pkg" / "run1" / "wt" / "converter").resolve()
    assert (wt / "a.txt").read_text() == "one\ntwo\nthree\n"
    assert git(wt, "symbolic-ref", "--short", "HEAD").strip() == branch

    assert await repo.commit_all(wt, "nothing") is None  # nothing changed: no commit
    assert git(wt, "rev-parse", "HEAD").strip() == base

    (wt / "a.txt").write_text("one\nTWO\nthree\n")
    (wt / "src" / "b.py").unlink()
    (wt / "new dir").mkdir()
    (wt / "new dir" / "ünï cödé.txt").write_text("hello\n")
    assert git(root, "status", "--porcelain") == ""  # the user's checkout does not see the worktree
    head = await repo.commit_all(wt, "converter: round 1\n\nthe body")
    assert head is not None and head != base
    assert git(root, "rev-parse", branch).strip() == head
    assert git(wt, "status", "--porcelain") == ""
    assert sorted(await repo.changed_files(base, head)) == ["a.txt", "new dir/ünï cödé.txt", "src/b.py"]
    patch = await repo.diff(base, head)
    assert "-two" in patch and "+TWO" in patch
    stat = await repo.diffstat(base, head)
    assert "3 files changed" in stat
    assert git(root, "log", "-1", "--format=%an <%ae>", head).strip() == "Podium <podium@localhost>"

    await repo.remove_worktree(wt)
    assert not wt.exists()
    assert "converter" not in git(root, "worktree", "list")
    assert git(root, "rev-parse", branch).strip() == head  # the branch stays
    await repo.remove_worktree(wt)  # twice: nothing to do
    assert git(root, "status", "--porcelain") == ""


async def _conflicting_run(repo: Repo) -> tuple[MergeResult, MergeResult, MergeResult, str, Path]:
    """Three subtasks from one base: 'left' and 'right' change the same line of a.txt, 'other' adds a file.
    Merged in order other, left, right: the last conflicts."""
    base = await repo.head_commit()
    heads: dict[str, str] = {}
    for sub, change in (("left", ("a.txt", "one\nLEFT\nthree\n")), ("right", ("a.txt", "one\nRIGHT\nthree\n")),
                        ("other", ("c.txt", "c\n"))):
        wt = await repo.add_worktree(repo.worktree_path("pkg", "r1", sub), branch_name("pkg", "r1", sub), base)
        (wt / change[0]).write_text(change[1])
        head = await repo.commit_all(wt, f"{sub}: change")
        assert head is not None
        heads[sub] = head
        await repo.remove_worktree(wt)
    integ = integration_branch("pkg", "r1")
    await repo.create_branch(integ, base)
    iwt = await repo.add_worktree(repo.integration_path("pkg", "r1"), integ, base)
    first = await repo.merge_into(iwt, branch_name("pkg", "r1", "other"))
    second = await repo.merge_into(iwt, branch_name("pkg", "r1", "left"), "merge left")
    third = await repo.merge_into(iwt, branch_name("pkg", "r1", "right"))
    return first, second, third, integ, iwt


async def test_clean_merges_then_a_conflict_is_reported_and_aborted(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    first, second, third, integ, iwt = await _conflicting_run(repo)
    assert first.ok and first.commit and not first.conflict_files
    assert second.ok and second.commit
    assert git(root, "log", "-1", "--format=%s", integ).strip() == "merge left"
    assert len(git(root, "rev-list", "--parents", "-1", integ).split()) == 3  # --no-ff: a merge commit
    assert third == MergeResult(False, None, ["a.txt"])
    # the integration branch and its worktree are exactly as after the second merge
    assert git(root, "rev-parse", integ).strip() == second.commit
    assert git(iwt, "status", "--porcelain") == ""
    assert (await run_git(iwt, "rev-parse", "-q", "--verify", "MERGE_HEAD", ok=(0, 1))).code == 1
    assert "<<<<<<<" not in (iwt / "a.txt").read_text()
    assert (iwt / "a.txt").read_text() == "one\nLEFT\nthree\n"
    # a branch merged already merges again as a no-op (a resumed run's 'approved' subtask)
    again = await repo.merge_into(iwt, branch_name("pkg", "r1", "left"))
    assert again == MergeResult(True, second.commit)


async def test_the_users_checkout_is_byte_identical_after_a_whole_run(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    (root / "a.txt").write_text("one\nuser's own edit\nthree\n")  # uncommitted
    (root / "src" / "b.py").write_text("x = 2\n")
    git(root, "add", "src/b.py")  # staged
    (root / "untracked.txt").write_text("mine\n")
    (root / ".git" / "hooks" / "post-checkout").write_text(f"#!/bin/sh\necho hook > {root}/HOOK-RAN\n")
    (root / ".git" / "hooks" / "pre-commit").write_text(f"#!/bin/sh\necho hook > {root}/HOOK-RAN\nexit 1\n")
    (root / ".git" / "hooks" / "post-checkout").chmod(0o755)
    (root / ".git" / "hooks" / "pre-commit").chmod(0o755)
    before = snapshot(root)
    repo = await open_repo(root)
    assert await repo.is_dirty()
    await _conflicting_run(repo)
    await repo.remove_worktree(repo.integration_path("pkg", "r1"))
    assert snapshot(root) == before
    assert not (root / "HOOK-RAN").exists()  # the user's hooks did not run
    assert git(root, "remote") == ""


async def test_inherited_git_variables_cannot_redirect_commands_to_the_users_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_repo(tmp_path / "r")
    (root / "a.txt").write_text("dirty\n")
    before = snapshot(root)
    monkeypatch.setenv("GIT_DIR", str(root / ".git"))  # as a hook would have them
    monkeypatch.setenv("GIT_INDEX_FILE", str(root / ".git" / "index"))
    monkeypatch.setenv("GIT_WORK_TREE", str(root))
    repo = await open_repo(root)
    wt = await repo.add_worktree(repo.worktree_path("p", "r", "s"), branch_name("p", "r", "s"), "HEAD")
    (wt / "z.txt").write_text("z\n")
    assert await repo.commit_all(wt, "z")
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_INDEX_FILE")
    monkeypatch.delenv("GIT_WORK_TREE")
    assert snapshot(root) == before


async def test_resume_checks_out_an_existing_branch_at_its_last_commit(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    base = await repo.head_commit()
    branch = branch_name("pkg", "r1", "s1")
    path = repo.worktree_path("pkg", "r1", "s1")
    wt = await repo.add_worktree(path, branch, base)
    (wt / "a.txt").write_text("committed\n")
    head = await repo.commit_all(wt, "round 1")
    (wt / "a.txt").write_text("half-done, never committed\n")  # then the run is killed: the worktree stays
    (wt / "stray.txt").write_text("stray\n")
    again = await repo.add_worktree(path, branch, "this start is not used for an existing branch")
    assert again == wt
    assert git(wt, "rev-parse", "HEAD").strip() == head
    assert (wt / "a.txt").read_text() == "committed\n"
    assert not (wt / "stray.txt").exists()
    # the worktree directory deleted by hand (git still lists it): added again all the same
    shutil.rmtree(wt)
    await repo.add_worktree(path, branch, base)
    assert (wt / "a.txt").read_text() == "committed\n"
    # reset_worktree drops a round's changes
    (wt / "a.txt").write_text("bad round\n")
    (wt / "junk.txt").write_text("junk\n")
    assert await repo.reset_worktree(wt) == head
    assert (wt / "a.txt").read_text() == "committed\n" and not (wt / "junk.txt").exists()


async def test_a_dependent_subtask_starts_from_the_integration_branch(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    base = await repo.head_commit()
    wt = await repo.add_worktree(repo.worktree_path("p", "r", "dep"), branch_name("p", "r", "dep"), base)
    (wt / "dep.txt").write_text("dep\n")
    await repo.commit_all(wt, "dep")
    integ = integration_branch("p", "r")
    assert await repo.create_branch(integ, base) == base
    assert await repo.create_branch(integ, "HEAD", exist_ok=True) == base
    with pytest.raises(GitError, match="exists already"):
        await repo.create_branch(integ, base)
    iwt = await repo.add_worktree(repo.integration_path("p", "r"), integ, base)
    merged = await repo.merge_into(iwt, branch_name("p", "r", "dep"))
    assert merged.ok
    nxt = await repo.add_worktree(repo.worktree_path("p", "r", "next"), branch_name("p", "r", "next"), integ)
    assert (nxt / "dep.txt").read_text() == "dep\n"


async def test_a_runs_worktrees_are_removed_together(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    for run, sub in (("r1", "a"), ("r1", "b"), ("r2", "a")):
        await repo.add_worktree(repo.worktree_path("p", run, sub), branch_name("p", run, sub), "HEAD")
    await repo.create_branch(integration_branch("p", "r1"), "HEAD")
    await repo.add_worktree(repo.integration_path("p", "r1"), integration_branch("p", "r1"), "HEAD")
    assert len(await repo.worktrees()) == 4  # the user's own checkout is not one of them
    assert await repo.remove_run_worktrees("p", "r1") == 3
    assert await repo.worktrees() == [repo.worktree_path("p", "r2", "a").resolve()]
    assert git(root, "rev-parse", "--verify", "-q", branch_name("p", "r1", "a")).strip()  # branches stay


async def test_the_runners_helpers(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    (root / "uncommitted.txt").write_text("not part of a run\n")
    repo = await open_repo(root)
    base = await repo.head_commit()
    assert await repo.files() == ["a.txt", "src/b.py"]
    assert Repo.branch_name("p", "r", "integration") == integration_branch("p", "r")
    assert repo.branch_name("p", "r", "s") == branch_name("p", "r", "s")
    wt_dir = repo.run_dir("p", "r") / "wt"
    iwt = await repo.integration_worktree(integration_branch("p", "r"), base, wt_dir / "integration")
    assert await repo.head_of(iwt) == base
    wt = await repo.add_worktree(wt_dir / "s", branch_name("p", "r", "s"), base)
    (wt / "s.txt").write_text("s\n")
    head = await repo.commit_all(wt, "s")
    assert head is not None
    assert (await repo.merge_into(iwt, branch_name("p", "r", "s"))).ok
    merged = await repo.head_of(iwt)
    assert await repo.merge_base(merged, branch_name("p", "r", "s")) == head
    # resumed: the integration branch is kept as it is, not moved back to the base
    await repo.remove_worktree(iwt)
    iwt = await repo.integration_worktree(integration_branch("p", "r"), base, wt_dir / "integration")
    assert await repo.head_of(iwt) == merged
    # a retried subtask can start again from the integration branch
    again = await repo.add_worktree(wt_dir / "s", branch_name("p", "r", "s"), merged, restart=True)
    assert await repo.head_of(again) == merged
    assert await repo.cleanup_worktrees(wt_dir) == 2
    assert await repo.worktrees() == []
    with pytest.raises(GitError, match="refusing"):
        await repo.cleanup_worktrees(root)
    with pytest.raises(GitError, match="refusing"):
        await repo.head_of(root)


async def test_parallel_worktrees_and_commits(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    base = await repo.head_commit()

    async def one(i: int) -> str | None:
        wt = await repo.add_worktree(repo.worktree_path("p", "r", f"s{i}"), branch_name("p", "r", f"s{i}"), base)
        (wt / f"f{i}.txt").write_text(f"{i}\n")
        head = await repo.commit_all(wt, f"s{i}")
        await repo.remove_worktree(wt)
        return head

    heads = await asyncio.gather(*(one(i) for i in range(6)))
    assert all(heads) and len(set(heads)) == 6
    assert git(root, "status", "--porcelain") == ""


@pytest.mark.parametrize("bad", ["../x", "a/b", "-x", "A", "x y", "", "a" * 41, "x.lock", "é", "a..b", ".x",
                                 "x\n", "x\0"])
def test_hostile_names_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        branch_name("pkg", "run", bad)
    with pytest.raises(ConfigError):
        branch_name(bad, "run", "s")
    with pytest.raises(ConfigError):
        integration_branch("pkg", bad)


def test_integration_is_not_a_subtask_id() -> None:
    with pytest.raises(ConfigError, match="integration"):
        branch_name("pkg", "run", "integration")


@pytest.mark.parametrize("bad", ["a..b", "x.lock", "-x", "x y", "x~1", "x^", "x:y", "x/", "/x", "x//y",
                                 "a@{b", "x\\y", ""])
async def test_check_branch_refuses_what_git_refuses(tmp_path: Path, bad: str) -> None:
    repo = await open_repo(make_repo(tmp_path / "r"))
    with pytest.raises(GitError, match="not a valid branch name"):
        await repo.check_branch(bad)
    with pytest.raises(GitError):
        await repo.create_branch(bad, "HEAD")
    if not bad.startswith("-"):  # podium/work/-x is a valid name
        with pytest.raises(GitError):
            await repo.create_branch(f"podium/work/{bad}", "HEAD")


@pytest.mark.parametrize("name", ["main", "@", "feature/x", "podium/workx", "podium/work/"])
async def test_only_a_runs_own_branches_are_created_or_checked_out(tmp_path: Path, name: str) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    with pytest.raises(GitError, match=r"not a work run's branch|not a valid branch name"):
        await repo.create_branch(name, "HEAD")
    with pytest.raises(GitError, match=r"not a work run's branch|not a valid branch name"):
        await repo.add_worktree(repo.worktree_path("p", "r", "s"), name, "HEAD")
    assert git(root, "branch", "--format=%(refname:short)").split() == ["main"]


async def test_writing_commands_refuse_paths_outside_the_work_dir(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    (root / "a.txt").write_text("dirty\n")
    before = snapshot(root)
    link = repo.work_root / "p" / "r" / "wt" / "link"
    link.parent.mkdir(parents=True)
    link.symlink_to(root)
    for path in (root, root / "src", tmp_path, repo.work_root, link, repo.work_root / ".." / ".." / "r"):
        with pytest.raises(GitError, match="refusing"):
            await repo.commit_all(path, "x")
        with pytest.raises(GitError, match="refusing"):
            await repo.reset_worktree(path)
        with pytest.raises(GitError, match="refusing"):
            await repo.merge_into(path, "main")
        with pytest.raises(GitError, match="refusing"):
            await repo.remove_worktree(path)
    assert snapshot(root) == before


async def test_rev_parse_refuses_options_and_unknown_refs(tmp_path: Path) -> None:
    repo = await open_repo(make_repo(tmp_path / "r"))
    for ref in ("--all", "-x", "", "nope", "HEAD~5"):
        with pytest.raises(GitError):
            await repo.rev_parse(ref)
    with pytest.raises(GitError, match="not a commit"):
        await repo.add_worktree(repo.worktree_path("p", "r", "s"), branch_name("p", "r", "s"), "nope")


async def test_a_merge_that_fails_without_conflict_is_an_error_and_leaves_the_branch(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    repo = await open_repo(root)
    integ = integration_branch("p", "r")
    await repo.create_branch(integ, "HEAD")
    iwt = await repo.add_worktree(repo.integration_path("p", "r"), integ, "HEAD")
    before = git(iwt, "rev-parse", "HEAD").strip()
    with pytest.raises(GitError, match="merge"):
        await repo.merge_into(iwt, "no-such-branch")
    # an unrelated history is refused by git, not forced
    git(root, "checkout", "-q", "--orphan", "lonely")
    git(root, "commit", "-q", "-m", "lonely")
    git(root, "checkout", "-q", "main")
    with pytest.raises(GitError, match="unrelated"):
        await repo.merge_into(iwt, "lonely")
    assert git(iwt, "rev-parse", "HEAD").strip() == before
    assert git(iwt, "status", "--porcelain") == ""


async def test_a_slow_git_is_stopped_with_what_it_started(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    started = time.monotonic()
    with pytest.raises(GitError, match="longer than"):
        await run_git(root, "-c", f"alias.slow=!echo $$ > {tmp_path}/pid; sleep 30", "slow", seconds=0.5)
    assert time.monotonic() - started < 5
    await _gone(int((tmp_path / "pid").read_text()))


async def test_a_cancelled_git_does_not_outlive_its_caller(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r")
    task = asyncio.create_task(run_git(root, "-c", f"alias.slow=!echo $$ > {tmp_path}/pid; sleep 30", "slow"))
    for _ in range(400):
        if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip():
            break
        await asyncio.sleep(0.05)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 10  # a grace of 5 s for git to finish, then stopped
    await _gone(int((tmp_path / "pid").read_text()))


async def _gone(pid: int) -> None:
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"pid {pid} still runs")
