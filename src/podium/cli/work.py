"""``podium work plan`` and ``podium work run``: the shell over ``podium.work`` (all logic lives there).

The shell checks what the user typed before anything costs money (the package, the repository, the plan,
the preset, the worker, where the plan or report goes), runs the work with a live view on stderr, prints
the report on stdout and turns the outcome into an exit code a script can act on.

``podium work run`` exits with

    0    every subtask merged into the integration branch and the package's check passed on it
    1    the run ended, but not all of it made it: a subtask failed, was rejected, conflicted or was
         blocked, the integration check failed, or the run stopped over budget or past its deadline
         (the report, printed and saved, says which and why)
    2    bad input, one line on stderr: the package, the plan, --repo, podium.yaml, an option; or the
         package is already being run in this repository (the line names the pid)
    130  Ctrl-C, 143 SIGTERM: stopped; the run's record is saved and its worktrees removed, so
         ``--resume latest`` goes on from there

``podium work plan`` exits 0 with the plan written, 2 on bad input, 1 when the conductor cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
from pathlib import Path

from podium.cli.stores import check_stores
from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError
from podium.safe_files import check_writable_target, safe_write
from podium.work.contracts import RunRecord
from podium.work.git import GitError, open_repo
from podium.work.package import load_package
from podium.work.plan import dump_plan, load_plan
from podium.work.runner import RunOptions, WorkRun
from podium.work.state import RunLockedError

EXIT_INCOMPLETE, EXIT_INPUT, EXIT_SIGINT, EXIT_SIGTERM = 1, 2, 130, 143


def _repo(repo: str) -> Path:
    """``--repo`` as a git work tree with a commit, or a one-line input error (exit 2) saying what to do."""
    path = Path(repo)
    if not path.is_dir():
        raise ConfigError(f"--repo {repo}: no such directory (the git repository to work in)")
    try:
        asyncio.run(open_repo(path))
    except GitError as exc:
        raise ConfigError(f"--repo {repo}: {exc.message}") from None
    return path


def _positive(option: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{option}: give a number greater than 0 (got {value})")


def not_dumpable() -> None:
    """Linux: mark this process not dumpable, so code a model wrote (run by the check command or an agent, as
    the same user) cannot read this process's memory or ``/proc/<pid>/environ`` — where the provider keys it
    was started with are. A root user can still read them: run untrusted packages in a container."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4, SUID_DUMP_DISABLE = 0


def outcome(record: RunRecord) -> int:
    """The exit code of a finished run: 0 only when everything merged and the integration check passed."""
    merged = bool(record.subtasks) and all(s.status == "merged" for s in record.subtasks.values())
    check_ok = record.integration_check is None or record.integration_check.passed
    return 0 if record.status == "done" and merged and check_ok else EXIT_INCOMPLETE


def _with_config(command: str, config: str | None) -> str:
    """A command to print for the user, with the ``-c`` config they gave (without it, another config)."""
    return f"{command} -c {config}" if config else command


def run_plan(package: str, *, repo: str, out: str | None, preset: str | None, max_subtasks: int, force: bool,
             config: str | None) -> None:
    pkg = load_package(package)
    settings = load_settings(config)
    check_stores(settings)
    target = check_writable_target(Path(out) if out else pkg.path.with_suffix(".plan.yaml"), "plan")
    if target.exists() and not force:
        raise ConfigError(f"{target} exists (an edited plan?); --force replaces it, --out writes elsewhere")
    root = _repo(repo)
    if not pkg.settings.check:
        sys.stderr.write("warning: the package has no check command (check: in its front matter): subtasks "
                         "will only be reviewed\n")

    async def go() -> tuple[str, str]:
        async with Podium(settings) as podium:
            def listen(_record: RunRecord, message: str) -> None:
                sys.stderr.write(message + "\n")

            plan = await WorkRun(podium, RunOptions(repo=root, package=pkg, preset=preset,
                                                    max_subtasks=max_subtasks), listen).plan()
            # unpinned: the run starts from HEAD as it is then (the plan is read against the files then)
            return dump_plan(plan.model_copy(update={"base": None})), plan.title

    text, title = asyncio.run(go())
    safe_write(target, text.encode(), "plan")
    if "the conductor's plan could not be read" in title:
        sys.stderr.write(f"warning: {title.split('(', 1)[1].rstrip(')')}; the plan is the whole package as one "
                         "subtask — edit it before running\n")
    run = _with_config(f"podium work run {package} --repo {repo} --plan {target}", config)
    sys.stdout.write(f"plan written to {target} — review and edit it, then: {run}\n")


def run_work(package: str, *, repo: str, plan: str | None, preset: str | None, worker: str | None,
             budget: float | None, deadline: float | None, parallel: int | None, check: str | None,
             resume: str | None, retry_failed: bool, report: str | None, config: str | None) -> None:
    from podium.work.progress import Progress
    from podium.work.report import render_report

    _positive("--budget", budget)
    _positive("--deadline", deadline)
    if retry_failed and not resume:
        raise ConfigError("--retry-failed goes with --resume (a run's id, or latest): it retries that run's "
                          "failed, rejected and conflicting subtasks")
    pkg = load_package(package)
    settings = load_settings(config)
    check_stores(settings)
    report_path = check_writable_target(Path(report), "report") if report else None
    if not (check or pkg.settings.check) and not resume:
        sys.stderr.write("warning: the package has no check command (check: in its front matter, or --check): "
                         "subtasks will only be reviewed\n")
    options = RunOptions(repo=_repo(repo), package=pkg, plan=load_plan(plan) if plan else None, preset=preset,
                         worker=worker, budget=budget, deadline=deadline, max_parallel=parallel, check=check,
                         resume=resume, retry_failed=retry_failed)
    seen: list[RunRecord] = []  # the run's record, as the progress view last saw it (for the stop message)
    stopped_by: list[int] = []

    async def go() -> tuple[RunRecord, str]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def terminate(_signum: int, _frame: object) -> None:
            # SIGTERM cancels the run once (the runner saves the record and removes its worktrees); a second
            # one must not cut that short, nor kill the process once the loop has closed (a plain handler,
            # unlike loop.add_signal_handler, is not reset to the default when asyncio.run ends)
            if not stopped_by:
                stopped_by.append(EXIT_SIGTERM)
                with contextlib.suppress(RuntimeError):  # the loop has closed: the run ended anyway
                    loop.call_soon_threadsafe(task.cancel)

        signal.signal(signal.SIGTERM, terminate)
        async with Podium(settings) as podium:
            with Progress() as progress:
                def listen(record: RunRecord, message: str) -> None:
                    seen[:] = [record]
                    progress(record, message)

                record = await WorkRun(podium, options, listen).run()
            text = render_report(record, load_plan(record.plan_file)) if record.plan_file else ""
            return record, text

    previous = signal.getsignal(signal.SIGTERM)
    not_dumpable()
    try:
        record, text = asyncio.run(go())
    except RunLockedError as exc:
        who = f"pid {exc.pid}" if exc.pid is not None else "another process"
        sys.stderr.write(f"error: package {pkg.slug} is already running ({who}) in this repository; wait for it "
                         "or stop it, then --resume latest\n")
        raise SystemExit(EXIT_INPUT) from None
    except (asyncio.CancelledError, KeyboardInterrupt):
        code = stopped_by[0] if stopped_by else EXIT_SIGINT
        run_id = seen[0].run_id if seen else "latest"
        again = _with_config(f"podium work run {package} --repo {repo} --resume {run_id}", config)
        sys.stderr.write(f"stopped ({'SIGTERM' if code == EXIT_SIGTERM else 'interrupted'}); the run's record is "
                         f"saved: {again}\n")
        raise SystemExit(code) from None
    finally:  # in-process callers get their handler back; a process that is stopping ignores more SIGTERMs
        # (the interpreter resets Python handlers to the default while it shuts down; SIG_IGN it keeps)
        signal.signal(signal.SIGTERM, signal.SIG_IGN if stopped_by else previous)
    if report_path is not None:
        safe_write(report_path, text.encode(), "report")
    sys.stdout.write(text + "\n")
    sys.stdout.write(f"\nintegration branch: {record.integration_branch} ({record.status})\n")
    code = outcome(record)
    if code:
        merged = sum(s.status == "merged" for s in record.subtasks.values())
        why = f"{merged} of {len(record.subtasks)} subtasks merged" if merged < len(record.subtasks) else \
            "every subtask merged, but the check failed on the integration branch"
        sys.stderr.write(f"{why} (run {record.status}): see the report"
                         + (f" ({report_path})" if report_path else "") + "\n")
        raise SystemExit(code)
