"""The git layer of a work run: worktrees, branches, commits, diffs and merges, over the ``git`` command line.

Every call is ``git -C <dir> …`` as an asyncio subprocess (never a shell), with an environment that cannot
prompt, page, translate or be redirected: ``GIT_TERMINAL_PROMPT=0``, no pager, ``LC_ALL=C``,
``GIT_CONFIG_NOSYSTEM=1``, ``GIT_OPTIONAL_LOCKS=0`` (a ``git status`` of the user's checkout never rewrites
its index), and the caller's other ``GIT_*`` variables removed (``GIT_DIR`` or ``GIT_INDEX_FILE`` inherited
from a hook would point our commands at the user's own index).

What the user has is never touched. A run works only in linked worktrees under
``<git-common-dir>/podium-work/<package>/<run>/`` — inside git's own directory, so they never show in the
user's ``git status`` — on branches ``podium/work/<package>/<run>/<subtask>`` and ``…/integration``. The
user's checked-out branch, index and working tree are only read (``is_dirty``); every command that writes
checks first that its directory is one of those worktrees. Nothing is pushed and no remote is read.

The user's hooks do not run (``core.hooksPath=/dev/null``): they are written for the user's own checkout,
may block an unattended run or touch files outside the worktree, and the package's check command is the
gate. Commits are not signed (a signing agent would prompt) and ``rerere`` is off, so a conflict is
reported as a conflict and never resolved by a recorded resolution. A commit uses the repository's identity
when it has one, ``Podium <podium@localhost>`` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

from podium.errors import ConfigError, PodiumError
from podium.secrets_env import without_secrets

GIT_TIMEOUT = 600.0  # seconds one git command may take before it is stopped
MAX_STDERR = 600  # characters of git's stderr an error message keeps
WORK_DIR = "podium-work"  # under the git common dir: state, plans and worktrees of every run
BRANCH_PREFIX = "podium/work"
INTEGRATION = "integration"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_KEEP_ENV = frozenset({"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
                       "GIT_CONFIG_GLOBAL"})
_ALWAYS = ("-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
           "-c", "rerere.enabled=false", "-c", "core.fsmonitor=false", "-c", "color.ui=false",
           "-c", "core.quotepath=false")
_IDENTITY = ("-c", "user.name=Podium", "-c", "user.email=podium@localhost")


class GitError(PodiumError):
    """A git command failed, or the repository is not one a work run can use. The message names the
    command, the directory and git's own words (shortened)."""

    error_type = "work_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="git_error")


class RepositoryError(ConfigError):
    """The directory given as the repository cannot be worked in (not git, bare, no commits): the user's to fix."""


def git_env() -> dict[str, str]:
    """Git's environment: no prompts, pagers or translations, none of the caller's ``GIT_*`` redirections,
    and no credentials (``podium.secrets_env``): a filter or alias a check's code slipped into the shared
    config runs inside Podium's own git commands, and must find no key there."""
    base, _ = without_secrets()
    env = {k: v for k, v in base.items()
           if not k.startswith("GIT_") or k in _KEEP_ENV or k.startswith("GIT_LFS_")}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", PAGER="cat", LC_ALL="C", LANGUAGE="C",
               GIT_CONFIG_NOSYSTEM="1", GIT_OPTIONAL_LOCKS="0", GIT_ASKPASS="/bin/false", SSH_ASKPASS="/bin/false",
               GIT_EDITOR="true", GIT_MERGE_AUTOEDIT="no")
    return env


def _short(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("hint:")]
    out = "; ".join(lines[-6:])
    return out if len(out) <= MAX_STDERR else "…" + out[-MAX_STDERR:]


@dataclass(frozen=True)
class GitResult:
    code: int
    out: str
    err: str


async def run_git(cwd: Path, *args: str, ok: tuple[int, ...] = (0,), extra: tuple[str, ...] = (),
                  seconds: float = GIT_TIMEOUT) -> GitResult:
    """``git -C cwd <extra> args``; GitError unless the exit code is in ``ok``. If the caller is cancelled
    the command is given a moment to finish (a git killed half-way leaves lock files), then stopped."""
    argv = ["git", "-C", str(cwd), *_ALWAYS, *extra, *args]
    what = f"git {args[0]}" if args else "git"
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=git_env(),
                                                    start_new_session=True)  # its own group: stopped whole
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH); install it, e.g. apt-get install git") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds)
    except TimeoutError:
        await _stop(proc, grace=0)
        raise GitError(f"{what} in {cwd} took longer than {seconds:.0f} s and was stopped") from None
    except BaseException:
        await _stop(proc, grace=5.0)
        raise
    code = proc.returncode if proc.returncode is not None else -1
    result = GitResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    if code not in ok:
        raise GitError(f"{what} failed in {cwd} (exit {code}): {_short(result.err or result.out) or 'no message'}")
    return result


async def _stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    if proc.returncode is not None:
        return
    if grace > 0:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # git and whatever it started (an alias, a filter)
    with contextlib.suppress(Exception):
        await proc.wait()


# --- names ------------------------------------------------------------------------------------------------------

def check_name(kind: str, value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ConfigError(f"{kind} '{value[:60]}' cannot name a branch: use a short slug (a-z, 0-9 and '-', "
                          "at most 40, starting with a letter or digit)")
    return value


def branch_name(package: str, run_id: str, subtask_id: str) -> str:
    """``podium/work/<package>/<run>/<subtask>``. ``integration`` is refused as a subtask id: it is the name
    of the run's integration branch."""
    if subtask_id == INTEGRATION:
        raise ConfigError(f"a subtask may not be called '{INTEGRATION}' (the run's integration branch has that "
                          "name); rename it in the plan")
    return "/".join((BRANCH_PREFIX, check_name("package", package), check_name("run id", run_id),
                     check_name("subtask id", subtask_id)))


def integration_branch(package: str, run_id: str) -> str:
    return "/".join((BRANCH_PREFIX, check_name("package", package), check_name("run id", run_id), INTEGRATION))


@dataclass(frozen=True)
class MergeResult:
    ok: bool
    commit: str | None  # the integration branch's head after the merge (None: it did not merge)
    conflict_files: list[str] = field(default_factory=list)


# --- the repository ---------------------------------------------------------------------------------------------

class Repo:
    """The user's repository, as a work run uses it. Get one with ``open_repo``."""

    def __init__(self, root: Path, git_dir: Path, identity: tuple[str, ...]) -> None:
        self.root = root  # the top of the user's work tree
        self.git_dir = git_dir  # the common git dir (shared by every worktree): state lives under it
        self.identity = identity  # -c user.name/user.email when the repository has none
        self._admin = asyncio.Lock()  # worktree and branch changes, one at a time (they share git's admin files)

    def __repr__(self) -> str:
        return f"Repo({str(self.root)!r})"

    @property
    def work_root(self) -> Path:
        return self.git_dir / WORK_DIR

    def run_dir(self, package: str, run_id: str) -> Path:
        return self.work_root / check_name("package", package) / check_name("run id", run_id)

    def worktree_path(self, package: str, run_id: str, subtask_id: str) -> Path:
        branch_name(package, run_id, subtask_id)  # the same checks as its branch
        return self.run_dir(package, run_id) / "wt" / subtask_id

    def integration_path(self, package: str, run_id: str) -> Path:
        return self.run_dir(package, run_id) / INTEGRATION

    @staticmethod
    def branch_name(package: str, run_id: str, name: str) -> str:
        """A subtask's branch, or with ``name="integration"`` the run's integration branch."""
        return integration_branch(package, run_id) if name == INTEGRATION else branch_name(package, run_id, name)

    async def git(self, *args: str, ok: tuple[int, ...] = (0,)) -> GitResult:
        return await run_git(self.root, *args, ok=ok)

    # reading
    async def head_commit(self) -> str:
        return await self.rev_parse("HEAD")

    async def current_branch(self) -> str | None:
        """The user's checked-out branch; None when HEAD is detached."""
        res = await self.git("symbolic-ref", "--quiet", "--short", "HEAD", ok=(0, 1))
        return res.out.strip() or None if res.code == 0 else None

    async def rev_parse(self, ref: str) -> str:
        """The commit ``ref`` names. GitError if it names none."""
        if not ref or ref.startswith("-"):
            raise GitError(f"'{ref[:60]}' is not a commit or branch name")
        res = await self.git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                             ok=(0, 1, 128))
        if res.code != 0:
            raise GitError(f"'{ref[:60]}' is not a commit in {self.root}")
        return res.out.strip()

    async def head_of(self, worktree: Path) -> str:
        """The commit checked out in one of the run's worktrees (the integration branch's head, say)."""
        return (await run_git(self._ours(worktree), "rev-parse", "HEAD")).out.strip()

    async def merge_base(self, a: str, b: str) -> str:
        """The best common ancestor of two commits; GitError if they have none."""
        res = await self.git("merge-base", "--end-of-options", a, b, ok=(0, 1))
        if res.code != 0 or not res.out.strip():
            raise GitError(f"{a[:60]} and {b[:60]} have no common ancestor in {self.root}")
        return res.out.split()[0]

    async def files(self, ref: str = "HEAD") -> list[str]:
        """The files committed at ``ref`` (what a run starts from; not the user's uncommitted changes)."""
        commit = await self.rev_parse(ref)
        out = (await self.git("ls-tree", "-r", "--name-only", "-z", "--full-tree", commit)).out
        return [p for p in out.split("\0") if p]

    async def read_blob(self, ref: str, path: str, limit: int = 200_000) -> str | None:
        """The text of a regular file committed at ``ref`` — never a symlink's target, never the checkout's
        uncommitted state; None when it is not a regular UTF-8 file of at most ``limit`` bytes there."""
        commit = await self.rev_parse(ref)
        listed = (await self.git("ls-tree", "-z", "--full-tree", commit, "--", path)).out.split("\0")[0]
        meta, _, name = listed.partition("\t")
        parts = meta.split()
        if name != path or len(parts) != 3 or parts[0] not in ("100644", "100755") or parts[1] != "blob":
            return None
        size = (await self.git("cat-file", "-s", parts[2])).out.strip()
        if not size.isdigit() or int(size) > limit:
            return None
        text = (await self.git("cat-file", "blob", parts[2])).out
        return None if "\ufffd" in text or "\0" in text else text  # not UTF-8 text: not shown

    async def user_refs(self) -> dict[str, str]:
        """Every ref that is not a work run's own (the user's branches and tags, remotes' refs, stash), with
        the commit it points at; and the user's HEAD (what it names). Compared around a check: model-written
        code may ``git update-ref`` anything in the shared git directory."""
        out = (await self.git("for-each-ref", "--format=%(refname) %(objectname)")).out
        refs = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        refs = {name: sha for name, sha in refs.items() if not name.startswith(f"refs/heads/{BRANCH_PREFIX}/")}
        head = self.git_dir / "HEAD"
        with contextlib.suppress(OSError):
            refs["HEAD"] = head.read_text(encoding="utf-8", errors="replace").strip()
        return refs

    # --- the user's own repository data a check command could reach (the git dir is shared) --------------
    def _guarded(self) -> list[Path]:
        """What a check's model-written code could change in the shared git directory that would act later,
        outside the run: the repository's config (aliases, core.hooksPath, filters), its hooks, and info/
        (attributes that switch filters on, excludes)."""
        files = [self.git_dir / "config"]
        for folder in (self.git_dir / "hooks", self.git_dir / "info"):  # info/attributes names filters
            if folder.is_dir():
                files += sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())
        return files

    def snapshot_guarded(self) -> dict[Path, tuple[bytes, int] | None]:
        """The config and hooks as they are, to compare and put back after a check (``restore_guarded``)."""
        snap: dict[Path, tuple[bytes, int] | None] = {}
        for path in self._guarded():
            try:
                snap[path] = (path.read_bytes(), path.stat().st_mode) if not path.is_symlink() else None
            except OSError:
                snap[path] = None
        return snap

    def restore_guarded(self, snap: dict[Path, tuple[bytes, int] | None]) -> list[str]:
        """Put the config and hooks back as ``snap`` had them; returns what had changed (relative to the git
        dir). Hooks added since are removed: they would run on the user's next commit."""
        changed: list[str] = []
        for path in self._guarded():
            if path not in snap:
                changed.append(str(path.relative_to(self.git_dir)))
                path.unlink(missing_ok=True)
        for path, was in snap.items():
            try:
                now = (path.read_bytes(), path.stat().st_mode) if path.exists() and not path.is_symlink() else None
            except OSError:
                now = None
            if now == was:
                continue
            changed.append(str(path.relative_to(self.git_dir)))
            if was is None:
                path.unlink(missing_ok=True)
                continue
            if path.is_symlink():
                path.unlink()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".podium-restore")
            tmp.write_bytes(was[0])
            tmp.chmod(was[1] & 0o7777)
            tmp.replace(path)
        return sorted(set(changed))

    async def branch_exists(self, name: str) -> bool:
        res = await self.git("show-ref", "--verify", "--quiet", f"refs/heads/{name}", ok=(0, 1))
        return res.code == 0

    async def is_dirty(self) -> bool:
        """Whether the user's checkout has uncommitted changes or untracked files. Reported, never touched:
        a run starts from a commit, so such changes are simply not part of it."""
        res = await self.git("status", "--porcelain", "-z", "--untracked-files=normal")
        return bool(res.out.strip("\0"))

    async def check_branch(self, name: str) -> str:
        """``name`` if git accepts it as a branch name (``git check-ref-format --branch``); GitError if not."""
        if not name or name.startswith("-") or "\0" in name:
            raise GitError(f"'{name[:80]}' is not a valid branch name")
        res = await self.git("check-ref-format", "--branch", name, ok=(0, 1, 128))
        if res.code != 0 or res.out.strip() != name:
            raise GitError(f"'{name[:80]}' is not a valid branch name")
        return name

    async def _check_own_branch(self, name: str) -> None:
        """Branches a run creates or checks out are its own: under ``podium/work/`` and valid for git."""
        if not name.startswith(BRANCH_PREFIX + "/"):
            raise GitError(f"'{name[:80]}' is not a work run's branch (those are under {BRANCH_PREFIX}/); "
                           "refusing to create or check it out")
        await self.check_branch(name)

    async def diff(self, base: str, head: str) -> str:
        """The patch from ``base`` to ``head`` (commits; neither checkout is read)."""
        return (await self.git("diff", "--no-color", "--no-ext-diff", "--no-textconv", "--end-of-options",
                               base, head)).out

    async def diffstat(self, base: str, head: str) -> str:
        return (await self.git("diff", "--stat=100", "--no-color", "--end-of-options", base, head)).out.rstrip()

    async def changed_files(self, base: str, head: str) -> list[str]:
        out = (await self.git("diff", "--name-only", "-z", "--no-renames", "--end-of-options", base, head)).out
        return [p for p in out.split("\0") if p]

    # writing: branches and worktrees (never the user's checkout)
    def _ours(self, path: Path) -> Path:
        """``path`` resolved, if it is inside the work dir; GitError otherwise — the one guard that keeps every
        writing command away from the user's own checkout."""
        resolved = Path(path).resolve()
        base = self.work_root.resolve()
        if resolved == base or base not in resolved.parents:
            raise GitError(f"{path} is not a work run's worktree (those live under {base}); refusing to change it")
        return resolved

    async def create_branch(self, name: str, start: str, *, exist_ok: bool = False) -> str:
        """A new branch ``name`` at ``start`` (no checkout). Exists already: GitError, or nothing with
        ``exist_ok`` (a resumed run keeps its integration branch as it was). Returns the branch's head."""
        await self._check_own_branch(name)
        async with self._admin:
            if await self.branch_exists(name):
                if not exist_ok:
                    raise GitError(f"branch {name} exists already in {self.root}; start a new run, or delete it "
                                   f"with: git branch -D {name}")
            else:
                commit = await self.rev_parse(start)
                await self.git("branch", "--no-track", "--end-of-options", name, commit)
        return await self.rev_parse(f"refs/heads/{name}")

    async def add_worktree(self, path: Path, branch: str, start: str, *, restart: bool = False) -> Path:
        """A worktree at ``path`` (under the work dir) with ``branch`` checked out. A new branch starts at
        ``start`` (any commit-ish: the base, or the integration branch once a dependency merged); a branch that
        exists (a resumed run) is checked out at its last commit and ``start`` is not used — unless
        ``restart``, which moves the branch to ``start`` (a retried conflict starts again from the integration
        branch; the old commits stay in git's reflog). A worktree left at ``path`` by an interrupted run is
        removed first, with whatever was not committed in it."""
        target = self._ours(path)
        await self._check_own_branch(branch)
        if await self.branch_exists(branch) and not restart:
            args: tuple[str, ...] = ("worktree", "add", "--end-of-options", str(target), branch)
        else:
            commit = await self.rev_parse(start)
            args = ("worktree", "add", "--no-track", "-B", branch, "--end-of-options", str(target), commit)
        await self.remove_worktree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        async with self._admin:
            await self.git("worktree", "prune")
            await self.git(*args)
        return target

    async def remove_worktree(self, path: Path) -> None:
        """Remove the worktree at ``path`` (uncommitted changes in it are discarded) and git's record of it.
        Nothing there: nothing to do. Its branch stays."""
        target = self._ours(path)
        async with self._admin:
            if target.exists():
                await self.git("worktree", "remove", "--force", "--force", str(target), ok=(0, 128))
                if target.exists():  # not (or no longer) a registered worktree: a directory we made
                    shutil.rmtree(target, ignore_errors=True)
            await self.git("worktree", "prune")

    async def worktrees(self) -> list[Path]:
        """The worktrees git has registered under the work dir (every run's, every package's)."""
        out = (await self.git("worktree", "list", "--porcelain", "-z")).out
        return self._under(self.work_root, [e.removeprefix("worktree ") for e in out.split("\0")
                                            if e.startswith("worktree ")])

    @staticmethod
    def _under(base: Path, paths: list[str]) -> list[Path]:
        root = base.resolve()
        return [p for p in (Path(x).resolve() for x in paths) if root in p.parents]

    async def remove_run_worktrees(self, package: str, run_id: str) -> int:
        """Remove every worktree of one run (its branches stay: they hold the work). Returns how many."""
        return await self.cleanup_worktrees(self.run_dir(package, run_id))

    async def cleanup_worktrees(self, under: Path) -> int:
        """Remove every worktree under ``under`` (inside the work dir). Returns how many."""
        self._ours(under)
        gone = self._under(under, [str(p) for p in await self.worktrees()])
        for path in gone:
            await self.remove_worktree(path)
        return len(gone)

    async def integration_worktree(self, branch: str, start: str, path: Path) -> Path:
        """The run's integration branch (made at ``start`` if new; kept as it is on a resume) checked out at
        ``path``."""
        await self.create_branch(branch, start, exist_ok=True)
        return await self.add_worktree(path, branch, start)

    async def reset_worktree(self, path: Path, ref: str = "HEAD") -> str:
        """Put the worktree back to ``ref`` (its branch moves there too): changes and new files not ignored by
        .gitignore are dropped. Returns the head."""
        target = self._ours(path)
        if not ref or ref.startswith("-"):
            raise GitError(f"'{ref[:60]}' is not a commit or branch name")
        # resolved in the worktree: its HEAD is its branch, not the user's HEAD
        found = await run_git(target, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}",
                              ok=(0, 1, 128))
        if found.code != 0:
            raise GitError(f"'{ref[:60]}' is not a commit in {target}")
        commit = found.out.strip()
        await run_git(target, "reset", "--hard", "--quiet", commit)
        await run_git(target, "clean", "-ffdq")
        return commit

    async def commit_all(self, worktree: Path, message: str) -> str | None:
        """Commit everything changed in the worktree (new and deleted files too). Returns the new head, or None
        when nothing changed."""
        target = self._ours(worktree)
        await run_git(target, "add", "-A")
        staged = await run_git(target, "diff", "--cached", "--quiet", ok=(0, 1))
        if staged.code == 0:
            return None
        text = message.strip().replace("\0", "") or "podium work"
        await run_git(target, "commit", "--quiet", "--no-verify", "-m", text, extra=self.identity)
        return (await run_git(target, "rev-parse", "HEAD")).out.strip()

    async def merge_into(self, integration: Path, branch: str, message: str | None = None) -> MergeResult:
        """Merge ``branch`` into the branch checked out in the ``integration`` worktree (``--no-ff``). A
        conflict is reported with its files and the merge aborted, so the integration branch is as before;
        nothing is ever resolved by force. Merging a branch that is merged already is a no-op that succeeds
        (a resumed run merging an ``approved`` subtask twice)."""
        target = self._ours(integration)
        await self.check_branch(branch)
        before = (await run_git(target, "rev-parse", "HEAD")).out.strip()
        args = ["merge", "--no-ff", "--no-edit", "--no-verify", "--no-stat"]
        if message:
            args += ["-m", message.replace("\0", "")]
        res = await run_git(target, *args, "--end-of-options", branch, ok=tuple(range(256)),
                            extra=self.identity)
        if res.code == 0:
            return MergeResult(True, (await run_git(target, "rev-parse", "HEAD")).out.strip())
        unmerged = await run_git(target, "diff", "--name-only", "-z", "--diff-filter=U")
        files = sorted({p for p in unmerged.out.split("\0") if p})
        in_merge = await run_git(target, "rev-parse", "--verify", "--quiet", "MERGE_HEAD", ok=(0, 1))
        if in_merge.code == 0:
            await run_git(target, "merge", "--abort")
        after = (await run_git(target, "rev-parse", "HEAD")).out.strip()
        if after != before:  # cannot happen after an abort; never leave a half-merged branch unnoticed
            raise GitError(f"merging {branch} moved {target} from {before[:12]} to {after[:12]}")
        if files:
            return MergeResult(False, None, files)
        raise GitError(f"git merge of {branch} failed in {target} (exit {res.code}): "
                       f"{_short(res.err or res.out) or 'no message'}")


def _directory(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise RepositoryError(f"no directory at {p}; --repo names the git repository to work in")
    return p


async def open_repo(path: str | Path) -> Repo:
    """The git work tree at (or above) ``path``, with at least one commit; RepositoryError (a ConfigError:
    the user's to fix) naming the fix if not."""
    p = _directory(path)
    inside = await run_git(p, "rev-parse", "--is-inside-work-tree", ok=tuple(range(256)))
    if inside.code != 0:
        raise RepositoryError(f"not a git repository: {p}; run git init && git add -A && git commit -m start")
    if inside.out.strip() != "true":
        raise RepositoryError(f"{p} is not a git work tree (a bare repository, or inside .git); name the checkout")
    top = await run_git(p, "rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir")
    lines = top.out.splitlines()
    if len(lines) != 2:
        raise GitError(f"git rev-parse gave no work tree for {p}")
    root, git_dir = Path(lines[0]), Path(lines[1])
    head = await run_git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", ok=(0, 1, 128))
    if head.code != 0:
        raise RepositoryError(f"the git repository at {root} has no commits yet; commit something first "
                       "(git add -A && git commit -m start)")
    identity: tuple[str, ...] = ()
    for key in ("user.name", "user.email"):
        got = await run_git(root, "config", "--get", key, ok=(0, 1))
        if not got.out.strip():
            identity = _IDENTITY
    return Repo(root, git_dir, identity)
