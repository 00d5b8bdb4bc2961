"""The run: a plan's subtasks through workers, the quality gate and the merge, under one budget and deadline.

    plan ─▶ for each subtask, when the subtasks it depends on have merged (at most max_parallel at once):
              worktree + branch (from the base commit, or from the integration branch after its inputs)
              round 1..1+max_revisions:  worker ─▶ commit ─▶ check command ─▶ reviewer (another provider)
                                          └── a failed check or requested changes go back to the worker
              approved ─▶ merged into the integration branch (one merge at a time; a conflict is reported
                          and the merge aborted, never resolved by force)
         ─▶ the check on the integration branch ─▶ the report

Everything the run does is in its own worktrees and branches (``podium/work/<package>/<run>/…``) under
the repository's git directory: the checked-out branch, its index and working tree are never touched,
nothing is pushed. The run's record is saved after every step, so an interrupted run (Ctrl-C, SIGTERM,
SIGKILL, a crash) resumes from it: merged subtasks are kept, approved ones merged, interrupted ones
restarted from their branch. Over budget or past the deadline, no new call starts; what was approved is
still merged and reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from podium.client import Podium
from podium.errors import BudgetExceededError, ConfigError, PodiumError
from podium.ledger.rows import KeyUsage
from podium.policy import BudgetSlot, Counters
from podium.server.state import MemoryState
from podium.work.calls import DeadlineReached, WorkCalls, run_budget_slot, seed_run_budget
from podium.work.conductor import make_plan, mentioned_files
from podium.work.contracts import (
    DONE,
    Assignment,
    CheckResult,
    RunRecord,
    SubtaskRecord,
    Worker,
    WorkerResult,
)
from podium.work.gate import review, run_check
from podium.work.git import GitError, Repo, open_repo
from podium.work.package import WorkPackage
from podium.work.plan import Subtask, WorkPlan
from podium.work.report import render_report
from podium.work.roles import RoleModels, resolve_roles
from podium.work.state import RunLock, StateStore, new_run_id

if TYPE_CHECKING:
    from podium.work.run_gateway import RunGateway

Listener = Callable[[RunRecord, str], None]
log = logging.getLogger("podium.work")


@dataclass(frozen=True)
class RunOptions:
    repo: Path
    package: WorkPackage
    plan: WorkPlan | None = None  # None: the conductor plans (or the resumed run's plan)
    preset: str | None = None
    worker: str | None = None
    budget: float | None = None
    deadline: float | None = None  # seconds for the whole run
    max_parallel: int | None = None
    check: str | None = None
    check_timeout: float | None = None
    resume: str | None = None  # a run id, or "latest"
    retry_failed: bool = False  # on resume: also give failed/rejected/conflicting subtasks another go
    max_subtasks: int = 6


class WorkRun:
    def __init__(self, podium: Podium, options: RunOptions, listener: Listener | None = None) -> None:
        self.podium, self.options = podium, options
        self.listener = listener or (lambda _record, _message: None)
        work = podium.settings.work
        settings = options.package.settings
        self.max_revisions = work.max_revisions
        self.max_parallel = options.max_parallel or settings.max_parallel or work.max_parallel
        self.check_command = options.check or settings.check
        self.check_timeout = options.check_timeout or settings.check_timeout or work.check_timeout
        self.budget = options.budget or settings.budget or work.budget
        self.deadline_seconds = options.deadline or settings.deadline or work.deadline
        self.preset = options.preset or settings.preset or work.preset
        self.worker_name = options.worker or settings.worker or work.worker
        self._merge_lock = asyncio.Lock()
        self._merged: dict[str, asyncio.Event] = {}
        self._stop: str | None = None  # why no new work starts: over_budget, past_deadline
        self._restart: set[str] = set()  # subtasks started over from the integration branch (a retried conflict)
        self._integration_head = ""  # the integration branch's head as the run left it
        self._agent_seen: dict[str, KeyUsage] = {}  # each agent key's usage already counted

    # --- the whole run ------------------------------------------------------------------------------
    async def plan(self) -> WorkPlan:
        """The conductor's plan for the package (``podium work plan``), nothing run."""
        repo = await open_repo(self.options.repo)
        roles = resolve_roles(self.podium.settings, self.podium.registry, self.preset)
        record = RunRecord(run_id="plan", package=str(self.options.package.path), repo=str(repo.root), base="",
                           integration_branch="", preset=roles.preset, worker=self.worker_name,
                           max_parallel=self.max_parallel, started_at=time.time())
        calls = self._calls(roles, "plan-" + new_run_id(), record, None, None)
        base = await repo.head_commit()
        self._emit(record, f"conductor: planning on {roles.for_role('conductor')[0]}"
                   + (" (a local model: this can take minutes)" if self._is_local(roles.for_role("conductor")[0])
                      else ""))
        return await self._conduct(calls, repo, base)

    def _is_local(self, name: str) -> bool:
        model = self.podium.settings.catalogue.find(name)
        return model is not None and model.local

    async def _conduct(self, calls: WorkCalls, repo: Repo, base: str) -> WorkPlan:
        """The conductor's plan, shown the files committed at ``base`` and the text of those the package names."""
        files = await repo.files(base)
        texts = {name: text for name in mentioned_files(self.options.package, files)
                 if (text := await repo.read_blob(base, name)) is not None}
        return await make_plan(calls, self.options.package, files, texts, base=base, limit=self.options.max_subtasks)

    async def run(self) -> RunRecord:
        repo = await open_repo(self.options.repo)
        store = StateStore.for_package(repo, self.options.package.slug)
        with RunLock(store):
            # worktrees only outlive a run that was killed; its branches and record stay for --resume
            await repo.cleanup_worktrees(store.root)
            return await self._run(repo, store)

    async def _run(self, repo: Repo, store: StateStore) -> RunRecord:
        roles = resolve_roles(self.podium.settings, self.podium.registry, self.preset)
        self._check_worker(self.worker_name)
        if self.options.plan is not None:  # a subtask's unknown worker is bad input, not a failed subtask later
            for s in self.options.plan.subtasks:
                self._check_worker(s.worker or self.worker_name, f"subtask '{s.id}': ")
        plan: WorkPlan | None
        package = self.options.package
        sha = hashlib.sha256(package.path.read_bytes()).hexdigest()
        if self.options.resume:
            record = store.load(store.latest() if self.options.resume == "latest" else self.options.resume)
            self._check_resume(record, roles)
            plan = store.load_plan(record.run_id)
            record.status, record.finished_at = "running", None
            record.notes.append(f"resumed at {time.strftime('%Y-%m-%d %H:%M:%S')}")
            if record.package_sha and record.package_sha != sha:
                record.notes.append("the package file changed since the run started; its settings (check, "
                                    "budget, deadline) are the new ones")
            record.package_sha = sha
        else:
            if self.options.plan is not None and self.options.plan.package != package.path.name:
                raise ConfigError(f"the plan was made for {self.options.plan.package}, not {package.path.name}; "
                                  "plan this package with podium work plan, or fix the plan's package:")
            run_id = new_run_id()
            base = await repo.head_commit()
            if self.options.plan is not None and self.options.plan.base:
                try:
                    base = await repo.rev_parse(self.options.plan.base)
                except GitError:
                    raise ConfigError(f"the plan's base '{self.options.plan.base[:60]}' is not a commit in "
                                      f"{repo.root}; fix it, or remove it to start from HEAD") from None
            record = RunRecord(run_id=run_id, package=str(package.path.resolve()), repo=str(repo.root),
                               base=base, integration_branch=repo.branch_name(self.options.package.slug, run_id,
                                                                              "integration"),
                               preset=roles.preset, worker=self.worker_name, max_parallel=self.max_parallel,
                               started_at=time.time(), budget=self.budget, package_sha=sha)
            plan = self.options.plan
            store.save(record)
        started = time.monotonic()
        deadline = started + self.deadline_seconds if self.deadline_seconds else None
        gateway = None
        state: Counters = MemoryState()
        slots: tuple[BudgetSlot, ...] = ()
        try:
            if self._needs_agent(plan):
                from podium.work.run_gateway import RunGateway

                gateway = RunGateway(self.podium, record.run_id, budget=self.budget)
                await gateway.start()
                state, slots = gateway.state, tuple(gateway.budget_slots())
            elif self.budget is not None:
                slots = (run_budget_slot(record.run_id, self.budget),)
                await seed_run_budget(self.podium, state, slots[0])
            calls = self._calls(roles, record.run_id, record, state, slots, deadline)
            self._emit(record, f"roles ({roles.preset}): {roles.describe()}")
            if not self.check_command:
                record.notes.append("the package has no check command: subtasks were only reviewed")
            if plan is None:
                self._emit(record, "conductor: planning")
                plan = await self._conduct(calls, repo, record.base)
            store.save_plan(record.run_id, plan)
            record.plan_file = str(store.plan_path(record.run_id))
            for s in plan.subtasks:
                record.subtasks.setdefault(s.id, SubtaskRecord(
                    id=s.id, branch=repo.branch_name(self.options.package.slug, record.run_id, s.id)))
            store.save(record)
            await self._run_plan(repo, store, plan, record, roles, calls, gateway, deadline)
        except asyncio.CancelledError:
            record.status = "interrupted"
            record.notes.append("interrupted; resume with: podium work run … --resume " + record.run_id)
            raise
        except BaseException as exc:
            record.status = "failed"
            why = exc.message if isinstance(exc, PodiumError) else f"{type(exc).__name__}: {str(exc)[:200]}"
            record.notes.append(f"the run stopped: {why}")
            raise
        finally:
            record.finished_at = time.time()
            if record.status == "running":  # it ran to its end (what merged and what did not: per subtask)
                record.status = "done"
            with contextlib.suppress(Exception):
                store.save(record)
            if plan is not None:
                with contextlib.suppress(Exception):
                    store.write_report(record.run_id, render_report(record, plan))
            if gateway is not None:
                with contextlib.suppress(Exception):
                    await self._account_agents(gateway, record)
                await gateway.stop()
            await repo.cleanup_worktrees(store.worktrees_dir(record.run_id))
        return record

    async def _account_agents(self, gateway: RunGateway, record: RunRecord) -> None:
        """The calls external agents made through the run's gateway, from the ledger, counted for the worker
        role (and priced at the conductor's model for the baseline)."""
        ledger = self.podium.ledger
        if ledger is None:
            record.notes.append("agents' calls are not in the cost per role: the ledger is off")
            return
        calls = self._work_calls
        for key_id in gateway.issued():
            usage = await ledger.usage_since(0.0, key_id=key_id)
            seen = self._agent_seen.get(key_id, KeyUsage())
            self._agent_seen[key_id] = usage
            if usage.calls > seen.calls:  # only what is new since the last look
                inputs, outputs = usage.input_tokens - seen.input_tokens, usage.output_tokens - seen.output_tokens
                calls.account_agent(usage.cost - seen.cost, usage.seconds - seen.seconds, inputs + outputs,
                                    usage.calls - seen.calls, inputs, outputs)
        record.baseline_cost = calls.baseline if calls.baseline_model else None

    def _calls(self, roles: RoleModels, run_id: str, record: RunRecord, state: Counters | None,
               slots: tuple[BudgetSlot, ...] | None, deadline: float | None = None) -> WorkCalls:
        def notice(message: str) -> None:
            self._emit(record, message)

        calls = WorkCalls(self.podium, roles, run_id=run_id, costs=record.costs, budget_slots=slots or (),
                          counters=state, deadline=deadline, notice=notice)
        self._work_calls = calls
        return calls

    def _needs_agent(self, plan: WorkPlan | None) -> bool:
        names = {self.worker_name} | ({s.worker for s in plan.subtasks if s.worker} if plan else set())
        return any(name != "editor" for name in names)

    def _emit(self, record: RunRecord, message: str) -> None:
        try:
            self.listener(record, message)
        except Exception:  # a view that fails must not stop the work it shows
            log.exception("work run %s: the progress listener failed", record.run_id)

    # --- scheduling ---------------------------------------------------------------------------------
    async def _run_plan(self, repo: Repo, store: StateStore, plan: WorkPlan, record: RunRecord, roles: RoleModels,
                        calls: WorkCalls, gateway: RunGateway | None, deadline: float | None) -> None:
        integration = await repo.integration_worktree(record.integration_branch, record.base,
                                                      store.worktrees_dir(record.run_id) / "integration")
        self._integration_head = await repo.head_of(integration)
        self._merged = {s.id: asyncio.Event() for s in plan.subtasks}
        self._finished = {s.id: asyncio.Event() for s in plan.subtasks}
        for s in plan.subtasks:
            sub = record.subtasks[s.id]
            if sub.status == "merged":
                self._merged[s.id].set()
                self._finished[s.id].set()
            elif sub.status in DONE and not self.options.retry_failed:
                self._finished[s.id].set()
            elif sub.status in DONE or sub.status != "approved":
                if sub.status in DONE:  # tried again (--retry-failed): the report shows the new attempt
                    record.notes.append(f"{s.id}: tried again after it {sub.status}"
                                        + (f" ({sub.error})" if sub.error else ""))
                    if sub.status == "conflict":  # its old branch would conflict again: start it over on top
                        self._restart.add(s.id)
                        if sub.commit:  # kept, so a person can still resolve it by hand
                            kept = f"{sub.branch}-conflicted"
                            await repo.create_branch(kept, sub.commit, exist_ok=True)
                            record.notes.append(f"{s.id}: its conflicting commit is kept on {kept}")
                    sub.checks, sub.verdicts, sub.worker_notes, sub.conflict_files = [], [], [], []
                    sub.diffstat = ""
                sub.status, sub.error = "pending", None
        gate = asyncio.Semaphore(self.max_parallel)
        tasks = [asyncio.create_task(self._subtask(repo, store, plan, s, record, calls, gateway, integration, gate,
                                                   deadline), name=f"work:{s.id}")
                 for s in plan.subtasks if not self._finished[s.id].is_set()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sub in record.subtasks.values():
                if sub.status in ("working", "checking", "reviewing"):
                    sub.error = "interrupted"
            raise
        if self._stop is None and deadline is not None and time.monotonic() >= deadline \
                and any(sub.status != "merged" for sub in record.subtasks.values()):
            self._stop = "past_deadline"
        if self._stop is not None:
            record.status = self._stop  # type: ignore[assignment]
        record.baseline_cost = calls.baseline if calls.baseline_model else None
        record.baseline_model = calls.baseline_model
        record.notes.extend(calls.notes)
        if self.check_command and any(s.status == "merged" for s in record.subtasks.values()):
            self._emit(record, "checking the integration branch")
            check, trouble = await self._guarded_check(repo, integration, self._integration_head, deadline)
            if trouble:
                record.notes.append(f"the integration check {trouble}")
                check = replace(check, passed=False, output=f"{check.output}\n[podium] the check {trouble}")
            record.integration_check = check
        store.save(record)

    def _check_seconds(self, deadline: float | None) -> float:
        return self.check_timeout if deadline is None else min(self.check_timeout, deadline - time.monotonic())

    async def _guarded_check(self, repo: Repo, worktree: Path, head: str,
                             deadline: float | None) -> tuple[CheckResult, str]:
        """The check command in ``worktree`` (at commit ``head``), bounded by the run's deadline. It runs code a
        model wrote, with the user's permissions, in a git directory the user's checkout shares: what it
        changed there that would act later (the repository's config, its hooks) is put back, commits it
        made are dropped (the branch goes back to ``head``), and so are files it left in the worktree.
        Returns the result and, when it tampered, what it did (else "")."""
        guarded = repo.snapshot_guarded()
        refs = await repo.user_refs()
        check = await run_check(self.check_command or "", worktree, self._check_seconds(deadline))
        trouble = []
        changed = repo.restore_guarded(guarded)
        if changed:
            trouble.append(f"changed {', '.join(changed)} in the repository's git directory (put back)")
        moved = self._moved_refs(refs, await repo.user_refs())
        if moved:  # never moved back by Podium: it may be the user's own commit meanwhile
            trouble.append(f"changed the repository's own refs — {moved}; if that was not you, put them back "
                           "(git update-ref REF OLD, or git update-ref -d REF for a new one)")
        if await repo.head_of(worktree) != head:
            trouble.append("made commits of its own (dropped)")
        await repo.reset_worktree(worktree, head)
        return check, "; ".join(trouble)

    async def _subtask(self, repo: Repo, store: StateStore, plan: WorkPlan, subtask: Subtask, record: RunRecord,
                       calls: WorkCalls, gateway: RunGateway | None, integration: Path, gate: asyncio.Semaphore,
                       deadline: float | None) -> None:
        sub = record.subtasks[subtask.id]
        try:
            for dep in subtask.depends_on:
                await self._finished[dep].wait()
                if not self._merged[dep].is_set():
                    sub.status, sub.error = "blocked", f"'{dep}' did not merge"
                    return
            if sub.status != "approved":
                async with gate:
                    if self._stop is not None:  # checked once it is this subtask's turn
                        sub.error = f"not started: the run stopped ({self._stop.replace('_', ' ')})"
                        return
                    await self._work_on(repo, store, plan, subtask, sub, record, calls, gateway, integration,
                                        deadline)
            if sub.status == "approved":
                async with self._merge_lock:
                    if await repo.head_of(integration) != self._integration_head:  # moved by someone's check
                        record.notes.append("the integration branch was moved outside the run; put back")
                    await repo.reset_worktree(integration, self._integration_head)
                    # the reviewed commit, not the branch: a branch name can be moved after its review
                    result = await repo.merge_into(integration, sub.commit or sub.branch,
                                                   f"Merge {sub.branch} ({(sub.commit or '')[:12]})")
                    if result.ok:
                        sub.status = "merged"
                        self._integration_head = result.commit or await repo.head_of(integration)
                        self._merged[subtask.id].set()
                    else:
                        sub.status, sub.conflict_files = "conflict", list(result.conflict_files)
                        sub.error = "its branch does not merge cleanly into the integration branch"
                    store.save(record)
                    self._emit(record, f"{subtask.id}: {sub.status}")
        finally:
            self._finished[subtask.id].set()
            with contextlib.suppress(Exception):
                store.save(record)

    async def _work_on(self, repo: Repo, store: StateStore, plan: WorkPlan, subtask: Subtask, sub: SubtaskRecord,
                       record: RunRecord, calls: WorkCalls, gateway: RunGateway | None, integration: Path,
                       deadline: float | None) -> None:
        started = time.monotonic()
        restart = subtask.id in self._restart
        start = await repo.head_of(integration) if subtask.depends_on or restart else record.base
        worktree = await repo.add_worktree(store.worktrees_dir(record.run_id) / subtask.id, sub.branch, start,
                                           restart=restart)
        if restart:
            sub.commit = None
            record.notes.append(f"{subtask.id}: started over from the integration branch after its conflict")
        base_of_branch = await repo.merge_base(start, sub.branch) if sub.commit else start
        worker = self._worker(subtask, calls, gateway)
        feedback = self._last_feedback(sub)  # a resumed subtask goes on from what its last round was told
        try:
            for _round in range(1, self.max_revisions + 2):
                if deadline is not None and time.monotonic() >= deadline:
                    raise DeadlineReached("the run's deadline passed before this subtask's next round")
                sub.rounds += 1
                sub.status = "working"
                self._emit(record, f"{subtask.id}: worker round {sub.rounds}")
                store.save(record)
                result: WorkerResult = await worker.work(Assignment(
                    package=self.options.package, subtask=subtask, worktree=worktree, round=sub.rounds,
                    feedback=feedback, deadline=deadline))
                sub.worker_notes.append(result.summary)
                if gateway is not None:  # what an agent spent through the gateway, in the live cost too
                    await self._account_agents(gateway, record)
                sub.worker_model = result.model or sub.worker_model
                sub.cost["worker"] = sub.cost.get("worker", 0.0) + result.cost
                await repo.commit_all(worktree, f"{subtask.id}: {subtask.title} (round {sub.rounds})")
                head = await repo.head_of(worktree)
                sub.commit = head if head != base_of_branch else sub.commit
                diff = await repo.diff(base_of_branch, head)
                if result.error and not diff.strip():
                    sub.status, sub.error = "failed", result.error
                    return
                check: CheckResult | None = None
                if self.check_command:
                    sub.status = "checking"
                    self._emit(record, f"{subtask.id}: checking")
                    check, trouble = await self._guarded_check(repo, worktree, head, deadline)
                    if trouble:  # model-written code reached outside its worktree: no more rounds for it
                        sub.checks.append(replace(check, passed=False))
                        sub.status, sub.error = "failed", f"the check command {trouble}"
                        record.notes.append(f"{subtask.id}: the check command {trouble}")
                        return
                    sub.checks.append(check)
                    if not check.passed:
                        feedback = f"The check command `{check.command}` failed:\n{check.output}"
                        sub.status, sub.error = "failed", "the check command failed"
                        continue
                sub.status = "reviewing"
                self._emit(record, f"{subtask.id}: review")
                verdict = await review(calls, subtask, self.options.package, diff, worker_provider=result.provider,
                                       check=check)
                sub.verdicts.append(verdict)
                if verdict.provider is not None and verdict.provider == result.provider \
                        and f"{subtask.id}: reviewed by" not in " ".join(record.notes):
                    record.notes.append(f"{subtask.id}: reviewed by the worker's own provider ({verdict.provider}):"
                                        " the reviewer role has no model of another provider that could answer")
                sub.cost["reviewer"] = sub.cost.get("reviewer", 0.0) + verdict.cost
                if verdict.approved:  # sub.commit is the reviewed commit: what merges
                    sub.status, sub.error, sub.commit = "approved", None, head
                    sub.diffstat = await repo.diffstat(base_of_branch, head)
                    store.save(record)  # a kill before the merge resumes at the merge, not at a new round
                    self._emit(record, f"{subtask.id}: approved")
                    return
                feedback = "The reviewer asked for changes:\n" + "\n".join(f"- {c}" for c in
                                                                          (verdict.changes or verdict.reasons))
                sub.status, sub.error = "rejected", "the reviewer still asked for changes"
            sub.diffstat = await repo.diffstat(base_of_branch, sub.branch)
        except BudgetExceededError as exc:
            self._stop = "over_budget"
            sub.status, sub.error = "failed", f"over budget: {exc.message}"
        except DeadlineReached as exc:
            self._stop = "past_deadline"
            sub.status, sub.error = "failed", exc.message
        except PodiumError as exc:
            sub.status, sub.error = "failed", exc.message
            if deadline is not None and time.monotonic() >= deadline:
                self._stop = "past_deadline"
        except Exception as exc:  # a bug of ours or a tool's fails this subtask, not the whole run
            log.exception("work run %s: subtask %s failed unexpectedly", record.run_id, subtask.id)
            sub.status, sub.error = "failed", f"internal error: {type(exc).__name__}: {str(exc)[:300]}"
        finally:
            sub.seconds += time.monotonic() - started
            await repo.remove_worktree(worktree)
            if sub.status in ("failed", "rejected"):
                self._emit(record, f"{subtask.id}: {sub.status}")

    @staticmethod
    def _moved_refs(before: dict[str, str], after: dict[str, str]) -> str:
        """The user's refs a check moved, made or deleted, as one line (empty when none)."""
        parts = [f"{name} {before.get(name, 'new')[:12]} → {after.get(name, 'deleted')[:12]}"
                 for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
        return "; ".join(parts[:10]) + (f"; and {len(parts) - 10} more" if len(parts) > 10 else "")

    @staticmethod
    def _last_feedback(sub: SubtaskRecord) -> str:
        """What the worker was last sent back with (a failed check's output, a review's changes): a resumed
        subtask's first round gets it again."""
        if sub.verdicts and not sub.verdicts[-1].approved and (not sub.checks or sub.checks[-1].passed):
            verdict = sub.verdicts[-1]
            return "The reviewer asked for changes:\n" + "\n".join(f"- {c}" for c in (verdict.changes or
                                                                                         verdict.reasons))
        if sub.checks and not sub.checks[-1].passed:
            return f"The check command `{sub.checks[-1].command}` failed:\n{sub.checks[-1].output}"
        return ""

    def _check_resume(self, record: RunRecord, roles: RoleModels) -> None:
        """A resume goes on with the run's own package and cast, or says why not (a package of the same name
        elsewhere shares the run's directory; a resume without the run's -c config would change the models)."""
        if Path(record.package).resolve() != self.options.package.path.resolve():
            raise ConfigError(f"run {record.run_id} is of {record.package}, not {self.options.package.path}; "
                              "resume it with that package file")
        if record.preset != roles.preset:
            raise ConfigError(f"run {record.run_id} ran with preset '{record.preset}', and this configuration "
                              f"gives '{roles.preset}'; resume with the run's config (-c) or --preset "
                              f"{record.preset}")

    def _check_worker(self, name: str, where: str = "") -> None:
        from podium.work.agent import agent_config

        if name == "editor":
            return
        config = agent_config(self.podium.settings.work, name)
        if config is None:
            known = ", ".join(["editor", *sorted({"aider", *self.podium.settings.work.agents})])
            raise ConfigError(f"{where}unknown worker '{name}' (one of: {known}; add agents under work.agents)")
        program = config.command[0]
        if "{" not in program and shutil.which(program) is None:
            how = " (bash scripts/aider-venv installs it; put its bin on PATH or give the full path in " \
                  "work.agents.aider.command)" if name == "aider" else ""
            raise ConfigError(f"{where}worker '{name}': its command '{program}' is not installed or not on "
                              f"PATH{how}")

    def _worker(self, subtask: Subtask, calls: WorkCalls, gateway: RunGateway | None) -> Worker:
        name = subtask.worker or self.worker_name
        if name == "editor":
            from podium.work.editor import EditorWorker

            return EditorWorker(calls, max_attempts=self.podium.settings.work.max_edit_attempts)
        from podium.work.agent import AgentWorker, agent_config

        config = agent_config(self.podium.settings.work, name)
        if config is None:
            known = ", ".join(["editor", *sorted({"aider", *self.podium.settings.work.agents})])
            raise ConfigError(f"unknown worker '{name}' (one of: {known}; add agents under work.agents)")
        return AgentWorker(name, config, gateway, list(calls.roles.for_role("worker")))  # type: ignore[arg-type]


__all__ = ["RunOptions", "WorkRun"]
