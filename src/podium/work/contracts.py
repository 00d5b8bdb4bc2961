"""What the parts of a work run promise each other: the roles, how a role calls a model, what a worker is
given and gives back, and what the quality gate finds. Pure data and protocols; no I/O here.

    runner ──ask(role, …)──▶ ModelCalls (calls.WorkCalls: one budget, one deadline, one preset, the ledger)
       │
       ├──work(Assignment)──▶ Worker (workers.editor: search/replace blocks · workers.agent: Aider & co.)
       │                         └─▶ WorkerResult
       ├──run_check(…)──────▶ CheckResult      (gate.checks)
       └──review(…)─────────▶ Verdict          (gate.review)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from podium.types import ChatResponse, Message
from podium.work.package import WorkPackage
from podium.work.plan import Subtask

Role = Literal["conductor", "worker", "reviewer"]
ROLES: tuple[Role, ...] = ("conductor", "worker", "reviewer")


class ModelCalls(Protocol):
    """How a work run's own code calls a model in a role. Every call is held to the run's budget, deadline
    and preset at Podium's choke point (the invoker), is tagged ``work:<run>``, ``role:<role>`` and
    ``subtask:<id>`` in the ledger, and is counted in the run's cost per role.

    ``models`` overrides the role's list (in order: the first preferred, the rest fallbacks);
    ``avoid_provider`` puts models of other providers first (the reviewer of a worker's diff)."""

    async def ask(self, role: Role, messages: list[Message], *, subtask: str | None = None,
                  avoid_provider: str | None = None, max_tokens: int | None = None,
                  temperature: float | None = None) -> ChatResponse: ...


@dataclass(frozen=True)
class Assignment:
    """One round of one subtask for a worker. The worker edits files under ``worktree`` and nothing else;
    the runner commits what it changed (a worker never commits, pushes or switches branches)."""

    package: WorkPackage
    subtask: Subtask
    worktree: Path
    round: int = 1  # 1 first; +1 each time a failed check or a review sends it back
    feedback: str = ""  # why it was sent back: the check's output, the reviewer's changes
    deadline: float | None = None  # time.monotonic() by which the worker must have stopped


@dataclass(frozen=True)
class WorkerResult:
    changed: bool  # whether it changed any file
    summary: str  # a short account for the report (what it did, or why it could not)
    model: str | None = None  # the model that did the work (its provider is kept away from the review)
    provider: str | None = None
    cost: float = 0.0  # USD this round cost, where the worker knows (agents: from the ledger)
    error: str | None = None  # set when the worker could not finish the round


class Worker(Protocol):
    name: str

    async def work(self, assignment: Assignment) -> WorkerResult: ...


@dataclass(frozen=True)
class CheckResult:
    command: str
    passed: bool
    exit_code: int | None  # None: it did not finish (timed out, could not start)
    seconds: float
    output: str  # the last part of stdout+stderr (bounded), for the report and the worker's next round
    timed_out: bool = False

    @property
    def outcome(self) -> str:
        """How it ended, in words: passed, did not finish in time, could not run, failed (exit N)."""
        if self.passed:
            return "passed"
        if self.timed_out:
            return "did not finish in time"
        if self.exit_code is None:
            return "could not run"
        return f"failed (exit {self.exit_code})"


@dataclass(frozen=True)
class Verdict:
    approved: bool
    reasons: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()  # what the reviewer asks the worker to change (empty when approved)
    model: str | None = None
    provider: str | None = None
    cost: float = 0.0


@dataclass
class RoleCosts:
    """What each role's calls cost and took (seconds of wall time in calls), summed over the run."""

    cost: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)

    def add(self, role: str, cost: float, seconds: float, tokens: int, calls: int = 1) -> None:
        self.cost[role] = self.cost.get(role, 0.0) + cost
        self.calls[role] = self.calls.get(role, 0) + calls
        self.seconds[role] = self.seconds.get(role, 0.0) + seconds
        self.tokens[role] = self.tokens.get(role, 0) + tokens

    @property
    def total(self) -> float:
        return sum(self.cost.values())


# --- what a run remembers (``state`` keeps it as JSON beside the repository's git data; ``report`` reads it) --
SubtaskStatus = Literal[
    "pending",      # not started (or waiting for the subtasks it depends on)
    "working",      # a worker round is running (after an interruption: resumed from its branch)
    "checking",     # the check command is running
    "reviewing",    # the reviewer is reading the diff
    "approved",     # passed checks and review; waiting to merge (in dependency order)
    "merged",       # merged into the integration branch
    "failed",       # checks still failed after the last revision, or the worker could not work
    "rejected",     # the reviewer still asked for changes after the last revision
    "conflict",     # approved, but its branch does not merge cleanly: reported, never force-resolved
    "blocked",      # a subtask it depends on did not merge
]
DONE: frozenset[str] = frozenset({"merged", "failed", "rejected", "conflict", "blocked"})


def run_team(run_id: str) -> str:
    """The team every call of a run is counted under: its one budget, and its spend in the ledger."""
    return f"work-{run_id}"


@dataclass
class SubtaskRecord:
    id: str
    status: SubtaskStatus = "pending"
    branch: str = ""  # podium/work/<package>/<run>/<subtask>
    worktree: str = ""  # where it was worked on (removed when the run ends)
    commit: str | None = None  # the branch's head once the worker's changes are committed
    rounds: int = 0
    checks: list[CheckResult] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    worker_notes: list[str] = field(default_factory=list)  # WorkerResult.summary per round
    worker_model: str | None = None
    diffstat: str = ""  # git diff --stat of the branch against its start
    conflict_files: list[str] = field(default_factory=list)
    error: str | None = None
    cost: dict[str, float] = field(default_factory=dict)  # per role
    seconds: float = 0.0  # wall time from its first worker round to its verdict


@dataclass
class RunRecord:
    run_id: str
    package: str  # the package file
    repo: str
    base: str  # the commit every subtask started from
    integration_branch: str  # podium/work/<package>/<run>/integration
    preset: str
    worker: str
    max_parallel: int
    started_at: float  # epoch seconds
    plan_file: str = ""  # the plan the run follows (written beside the state)
    finished_at: float | None = None
    status: Literal["running", "done", "failed", "interrupted", "over_budget", "past_deadline"] = "running"
    subtasks: dict[str, SubtaskRecord] = field(default_factory=dict)
    costs: RoleCosts = field(default_factory=RoleCosts)
    baseline_cost: float | None = None  # the same tokens priced at the conductor's model
    integration_check: CheckResult | None = None  # the check on the integration branch at the end
    budget: float | None = None
    notes: list[str] = field(default_factory=list)  # what the report should say (fallbacks used, interruptions)
    baseline_model: str | None = None  # the conductor's model, whose prices baseline_cost uses
    package_sha: str = ""  # SHA-256 of the package file when the run started (a resume says when it changed)
