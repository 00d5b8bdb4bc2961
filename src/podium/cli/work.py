"""``podium work plan`` and ``podium work run``: the shell over ``podium.work`` (all logic lives there)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from podium.cli.stores import check_stores
from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError
from podium.safe_files import safe_write
from podium.work.package import load_package
from podium.work.plan import dump_plan, load_plan
from podium.work.runner import RunOptions, WorkRun


def _repo(repo: str) -> Path:
    path = Path(repo)
    if not path.is_dir():
        raise ConfigError(f"--repo {repo}: no such directory (the git repository to work in)")
    return path


def run_plan(package: str, *, repo: str, out: str | None, preset: str | None, max_subtasks: int,
             config: str | None) -> None:
    pkg = load_package(package)
    settings = load_settings(config)
    check_stores(settings)
    target = Path(out) if out else pkg.path.with_suffix(".plan.yaml")

    async def go() -> str:
        async with Podium(settings) as podium:
            plan = await WorkRun(podium, RunOptions(repo=_repo(repo), package=pkg, preset=preset,
                                                    max_subtasks=max_subtasks)).plan()
            return dump_plan(plan)

    text = asyncio.run(go())
    safe_write(target, text.encode())
    sys.stdout.write(f"plan written to {target} — review and edit it, then: "
                     f"podium work run {package} --repo {repo} --plan {target}\n")


def run_work(package: str, *, repo: str, plan: str | None, preset: str | None, worker: str | None,
             budget: float | None, deadline: float | None, parallel: int | None, check: str | None,
             resume: str | None, retry_failed: bool, report: str | None, config: str | None) -> None:
    from podium.work.progress import Progress

    pkg = load_package(package)
    settings = load_settings(config)
    check_stores(settings)
    options = RunOptions(repo=_repo(repo), package=pkg, plan=load_plan(plan) if plan else None, preset=preset,
                         worker=worker, budget=budget, deadline=deadline, max_parallel=parallel, check=check,
                         resume=resume, retry_failed=retry_failed)

    async def go() -> tuple[str, str, str]:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)  # SIGTERM: save the record, clean up, exit
        async with Podium(settings) as podium:
            with Progress() as progress:
                runner = WorkRun(podium, options, progress)
                record = await runner.run()
            from podium.work.report import render_report

            report_text = render_report(record, load_plan(record.plan_file)) if record.plan_file else ""
            return record.status, report_text, record.integration_branch

    try:
        status, text, branch = asyncio.run(go())
    except asyncio.CancelledError:
        sys.stderr.write("stopped; the run's record is saved: resume with --resume latest\n")
        raise SystemExit(130) from None
    if report:
        safe_write(Path(report), text.encode())
    sys.stdout.write(text + "\n")
    sys.stdout.write(f"\nintegration branch: {branch} ({status})\n")
    if status != "done":
        raise SystemExit(1)
