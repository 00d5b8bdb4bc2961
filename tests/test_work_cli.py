"""``podium work plan`` and ``podium work run`` as a user meets them: real subprocesses, real git, real HTTP.

The models are an OpenAI-wire server on loopback that answers as the example's scripted team
(examples/work-package/scripted_team.py); podium.yaml names it twice, as a US and an EU provider, so the
reviewer comes from another provider than the worker. What is checked is what a user sees: the exit
code, one line on stderr for bad input, the report, the integration branch (checked out apart from the
user's checkout, whose bytes are compared afterwards), the progress lines, and how a run stops (SIGTERM,
SIGKILL, budget) and resumes. The wire server counts every request per role and per subtask marker, so
"not redone" and "no call after the refusal" are counted, not assumed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from podium.work.contracts import RunRecord
from podium.work.plan import load_plan
from podium.work.state import StateStore
from servers.http_server import Reply, Request, WireServer
from servers.wires import OpenAIWire, Scenario
from work_sample import git, make_repo, row, team

MARKERS = ("TASK-TITLE-A", "TASK-TITLE-B", "TASK-CONVERT", "TASK-KELVIN", "TASK-USAGE")
SUBTASKS = {"convert", "kelvin", "usage", "title-a", "title-b"}
RUN_TIMEOUT = 120  # seconds a whole `podium work run` on the sample may take on a loaded 2-core machine


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


class Team:
    """The scripted team behind an OpenAI-wire server: each answer ``latency`` seconds after its request."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.answers = team()
        self.wire = OpenAIWire()
        self.calls: list[tuple[str, str, frozenset[str]]] = []  # (role, provider key, subtask markers)
        self._lock = threading.Lock()
        self.server = WireServer(self.handle)

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":
            return self.wire.handle(request, Scenario())
        messages = request.json["messages"]
        system = "".join(_text(m["content"]) for m in messages if m["role"] == "system")
        prompt = "\n".join(_text(m["content"]) for m in messages if m["role"] != "system")
        role = ("conductor" if "You are the conductor" in system else
                "reviewer" if "You are the reviewer" in system else "worker")
        with self._lock:
            self.calls.append((role, request.headers.get("authorization", ""),
                               frozenset(m for m in MARKERS if m in prompt)))
        text = self.answers.answer(system, prompt)
        reply = self.wire.handle(request, Scenario(text=text, input_tokens=max(1, len((system + prompt).split())),
                                                   output_tokens=max(1, len(text.split()))))
        if self.latency:  # waited on the server's loop, without blocking other requests
            reply.chunks, reply.chunk_delay = [reply.body], self.latency
        return reply

    def count(self, role: str, marker: str | None = None) -> int:
        with self._lock:
            return sum(1 for r, _, markers in self.calls if r == role and (marker is None or marker in markers))


@dataclass
class Sample:
    tmp: Path
    repo: Path
    package: Path
    plan: Path
    config: Path
    team: Team
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def args(self, command: str, *extra: str, package: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "podium.cli", "work", command, str(package or self.package),
                "--repo", str(self.repo), "--config", str(self.config), *extra]

    def run(self, command: str, *extra: str, package: Path | None = None,
            timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.args(command, *extra, package=package), cwd=self.tmp, env=ENV,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, command: str, *extra: str) -> Live:
        process = subprocess.Popen(self.args(command, *extra), cwd=self.tmp, env=ENV, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.processes.append(process)
        return Live(process)

    def store(self) -> StateStore:
        return StateStore(self.repo / ".git" / "podium-work" / "arbeitspaket")

    def latest(self) -> RunRecord:
        record = self.store().latest_record()
        assert record is not None
        return record


class Live:
    """A running ``podium work run``: its stderr lines as they come (a reader thread), its stdout at the end."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.stdout = ""
        threading.Thread(target=self._read_err, daemon=True).start()
        threading.Thread(target=self._read_out, daemon=True).start()

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def _read_out(self) -> None:
        assert self.process.stdout is not None
        self.stdout = self.process.stdout.read()

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """The first stderr line matching ``pattern`` (fails if the process ends or ``timeout`` passes first)."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"the run ended before a line matched {pattern!r}: {''.join(self.seen)[-3000:]}")
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        pytest.fail(f"no line matched {pattern!r} within {timeout} s: {''.join(self.seen)[-3000:]}")

    def finish(self, timeout: float = 30) -> tuple[int, str]:
        """The exit code (within ``timeout``) and everything it wrote on stderr."""
        code = self.process.wait(timeout)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return code, "".join(self.seen)


ENV = {k: v for k, v in os.environ.items()
       if not k.endswith(("_API_KEY", "_AUTH_TOKEN", "_BASE_URL")) and not k.startswith("PODIUM_")}
ENV["NO_COLOR"] = "1"


def write_config(tmp: Path, url: str, **work: Any) -> Path:
    """Two OpenAI-wire providers on one server (US for conductor and worker, EU for the reviewer)."""
    data = {
        "providers": {"acme": {"kind": "openai", "base_url": f"{url}/v1", "api_key": "sk-acme-0123", "region": "us"},
                      "euro": {"kind": "openai", "base_url": f"{url}/v1", "api_key": "sk-euro-0123", "region": "eu"},
                      "local": {"enabled": False}},
        "models": {"conductor-m": row("acme", "conductor-m", 3.0, 15.0, "advanced", "us"),
                   "worker-m": row("acme", "worker-m", 0.3, 1.2, "standard", "us"),
                   "reviewer-m": row("euro", "reviewer-m", 0.2, 0.6, "standard", "eu")},
        "resilience": {"retries": {"max_attempts": 1, "base_delay": 0.0}},
        "ledger": {"path": str(tmp / "ledger.sqlite3")},
        "work": {"presets": {"sample": {"conductor": ["conductor-m"], "worker": ["worker-m"],
                                        "reviewer": ["reviewer-m"]}},
                 "preset": "sample", **work},
    }
    path = tmp / "podium.yaml"
    path.write_text(json.dumps(data))
    return path


def sample(tmp_path: Path, latency: float = 0.0) -> Any:
    """A context: the sample repo, package, plan and a config pointing at a running scripted team."""
    class _Ctx:
        def __enter__(self) -> Sample:
            self.team = Team(latency)
            self.team.server.start()
            repo, package, plan = make_repo(tmp_path)
            self.sample = Sample(tmp_path, repo, package, plan, write_config(tmp_path, self.team.server.url),
                                 self.team)
            return self.sample

        def __exit__(self, *exc: object) -> None:
            for process in self.sample.processes:  # a failed test leaves no podium running
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
            self.team.server.stop()

    return _Ctx()


def snapshot(repo: Path) -> tuple[str, str, str, dict[str, bytes]]:
    files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*")
             if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return git(repo, "rev-parse", "HEAD"), git(repo, "symbolic-ref", "HEAD"), git(repo, "status", "--porcelain"), files


def worktrees(repo: Path) -> int:
    return git(repo, "worktree", "list", "--porcelain").count("worktree ")


def check_branch(repo: Path, branch: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """The sample's check run on ``branch``'s tree, unpacked apart from the repository (no worktree in it)."""
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", branch], check=True,
                             capture_output=True, timeout=30).stdout
    target = tmp / f"checked-{branch.replace('/', '_')}"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return subprocess.run([sys.executable, "check.py"], cwd=target, capture_output=True, text=True, timeout=60)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def statuses(record: RunRecord) -> dict[str, str]:
    return {s.id: s.status for s in record.subtasks.values()}


def outcome_of(record: RunRecord) -> dict[str, str]:
    """The statuses, with the two README subtasks as a pair (which of them merges first depends on timing)."""
    found = statuses(record)
    pair = sorted([found.pop("title-a"), found.pop("title-b")])
    return {**found, "title-a/b": "+".join(pair)}


SAMPLE_OUTCOME = {"convert": "merged", "kelvin": "merged", "usage": "rejected", "title-a/b": "conflict+merged"}


# --- podium work plan --------------------------------------------------------------------------------------------

def test_plan_writes_a_plan_that_run_accepts(tmp_path: Path) -> None:
    with sample(tmp_path) as s:
        result = s.run("plan")
        assert result.returncode == 0, result.stderr
        written = s.package.with_suffix(".plan.yaml")
        assert written.name == "Arbeitspaket.plan.yaml" and str(written) in result.stdout
        plan = load_plan(written)
        assert {t.id for t in plan.subtasks} == SUBTASKS
        assert s.team.count("conductor") == 1 and s.team.count("worker") == 0
        assert "Traceback" not in result.stderr
        ran = s.run("run", "--plan", str(written))
        assert ran.returncode == 1, ran.stderr
        assert outcome_of(s.latest()) == SAMPLE_OUTCOME
        assert s.team.count("conductor") == 1  # the plan was given: the conductor was not asked again


@pytest.mark.parametrize("out", ["directory", "/dev/null"])
def test_plan_refuses_an_out_path_that_is_not_a_file_before_asking_the_conductor(tmp_path: Path, out: str) -> None:
    with sample(tmp_path) as s:
        if out == "directory":
            (tmp_path / "plans").mkdir()
            out = str(tmp_path / "plans")
        line = one_error_line(s.run("plan", "--out", out))
        assert out in line and "not a regular file" in line
        assert s.team.calls == []


def test_plan_keeps_an_edited_plan_unless_forced_and_pins_no_base(tmp_path: Path) -> None:
    with sample(tmp_path) as s:
        written = s.package.with_suffix(".plan.yaml")
        written.write_text("# my edits\n")
        line = one_error_line(s.run("plan"))
        assert "exists" in line and "--force" in line and s.team.calls == []
        assert written.read_text() == "# my edits\n"
        result = s.run("plan", "--force")
        assert result.returncode == 0, result.stderr
        assert load_plan(written).base is None  # the run starts from HEAD as it is then
        assert "conductor: planning on conductor-m" in result.stderr


def test_retry_failed_without_resume_is_one_line(tmp_path: Path) -> None:
    with sample(tmp_path) as s:
        line = one_error_line(s.run("run", "--plan", str(s.plan), "--retry-failed"))
        assert "--resume" in line and s.team.calls == []


# --- podium work run ---------------------------------------------------------------------------------------------

def test_run_prints_and_writes_the_report_and_leaves_the_checkout_alone(tmp_path: Path) -> None:
    with sample(tmp_path) as s:
        (s.repo / "notes.txt").write_text("the user's uncommitted work\n")
        (s.repo / "README.md").write_text("# Sample (edited, not committed)\n")
        before = snapshot(s.repo)
        report = tmp_path / "out.md"
        result = s.run("run", "--plan", str(s.plan), "--report", str(report))
        assert result.returncode == 1, result.stderr  # one subtask rejected, one conflicting: not all merged
        assert "Traceback" not in result.stdout + result.stderr
        written = report.read_text()
        assert written.startswith("# Work report") and written.strip() in result.stdout
        assert "## Cost per role" in written and "rejected by review" in written and "conflict" in written
        record = s.latest()
        assert outcome_of(record) == SAMPLE_OUTCOME and record.status == "done"
        assert f"integration branch: {record.integration_branch}" in result.stdout
        # the integration branch exists in the user's repository and its check passes on its own tree
        assert git(s.repo, "rev-parse", "--verify", record.integration_branch).strip()
        checked = check_branch(s.repo, record.integration_branch, tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert snapshot(s.repo) == before and worktrees(s.repo) == 1
        # progress: not a terminal, so one line per event, naming subtasks and the cost so far
        lines = result.stderr.splitlines()
        assert any(re.search(r"convert: merged .*\$0\.\d+ of \$1\.00", line) for line in lines), result.stderr
        assert any("kelvin: checking" in line for line in lines)
        assert "\x1b[" not in result.stderr  # no cursor tricks in a log
        # the reviewer's calls went to the other provider than the worker's
        with s.team._lock:
            keys = {role: {key for r, key, _ in s.team.calls if r == role} for role in ("worker", "reviewer")}
        assert keys == {"worker": {"Bearer sk-acme-0123"}, "reviewer": {"Bearer sk-euro-0123"}}


def test_one_at_a_time_ends_as_the_default_does(tmp_path: Path) -> None:
    outcomes = []
    for n, extra in enumerate([(), ("--parallel", "1")]):
        with sample(tmp_path / str(n)) as s:
            result = s.run("run", "--plan", str(s.plan), *extra)
            assert result.returncode == 1, result.stderr
            record = s.latest()
            outcomes.append((outcome_of(record), record.max_parallel,
                             check_branch(s.repo, record.integration_branch, tmp_path / str(n)).returncode))
    assert outcomes == [(SAMPLE_OUTCOME, 2, 0), (SAMPLE_OUTCOME, 1, 0)]


def test_all_merged_exits_0(tmp_path: Path) -> None:
    with sample(tmp_path) as s:
        plan = load_plan(s.plan)
        one = tmp_path / "one.yaml"
        text = s.plan.read_text()
        one.write_text(text[:text.index("- id: kelvin")])  # convert only
        assert [t.id for t in load_plan(one).subtasks] == ["convert"] and len(plan.subtasks) == 5
        result = s.run("run", "--plan", str(one))
        assert result.returncode == 0, result.stderr
        check = s.latest().integration_check
        assert "(done)" in result.stdout and check is not None and check.passed


def test_sigterm_stops_promptly_saves_and_resumes_and_a_second_run_is_refused(tmp_path: Path) -> None:
    with sample(tmp_path, latency=0.4) as s:
        before = snapshot(s.repo)
        live = s.start("run", "--plan", str(s.plan), "--parallel", "1")
        live.wait_for(r"convert: worker round 1")
        # the same package in the same repository while it runs: refused, naming the pid that holds it
        second = s.run("run", "--plan", str(s.plan), timeout=60)
        line = one_error_line(second)
        assert f"already running (pid {live.process.pid})" in line
        live.wait_for(r"convert: merged")
        sent = time.monotonic()
        live.process.send_signal(signal.SIGTERM)
        code, err = live.finish(timeout=20)
        assert time.monotonic() - sent < 10
        assert code == 143 and "Traceback" not in err + live.stdout
        assert "--resume" in err.splitlines()[-1]
        record = s.latest()
        assert record.status == "interrupted" and record.subtasks["convert"].status == "merged"
        assert worktrees(s.repo) == 1 and snapshot(s.repo) == before
        convert_calls = s.team.count("worker", "TASK-CONVERT")
        resumed = s.run("run", "--resume", "latest")
        assert resumed.returncode == 1, resumed.stderr
        assert "Traceback" not in resumed.stdout + resumed.stderr
        record = s.latest()
        assert record.status == "done" and outcome_of(record) == SAMPLE_OUTCOME
        assert any("resumed" in note for note in record.notes)
        assert s.team.count("worker", "TASK-CONVERT") == convert_calls
        assert worktrees(s.repo) == 1 and snapshot(s.repo) == before


@pytest.mark.parametrize(("signals", "code"), [((signal.SIGINT,), 130), ((signal.SIGTERM, signal.SIGTERM), 143)])
def test_ctrl_c_and_a_repeated_sigterm_stop_as_cleanly(tmp_path: Path, signals: tuple[int, ...], code: int) -> None:
    with sample(tmp_path, latency=0.4) as s:
        live = s.start("run", "--plan", str(s.plan))
        live.wait_for(r"worker round 1")
        for sig in signals:  # a second SIGTERM while it tidies up does not cut the tidying short
            live.process.send_signal(sig)
            time.sleep(0.05)
        got, err = live.finish(timeout=20)
        assert got == code and "Traceback" not in err + live.stdout, err
        assert s.latest().status == "interrupted" and worktrees(s.repo) == 1


def test_sigkill_mid_run_then_resume_completes_without_redoing_merged_work(tmp_path: Path) -> None:
    with sample(tmp_path, latency=0.3) as s:
        before = snapshot(s.repo)
        live = s.start("run", "--plan", str(s.plan), "--parallel", "1")
        live.wait_for(r"kelvin: merged")
        live.wait_for(r"worker round 1")  # the next subtask is in its worktree, its call in flight
        live.process.kill()
        code, _ = live.finish(timeout=20)
        assert code == -signal.SIGKILL
        killed = s.latest()
        assert killed.status == "running"  # nobody tidied up: the crash left its last saved step
        merged = [k for k, v in statuses(killed).items() if v == "merged"]
        assert {"convert", "kelvin"} <= set(merged)
        calls = {m: s.team.count("worker", m) for m in MARKERS}
        resumed = s.run("run", "--resume", "latest")
        assert resumed.returncode == 1, resumed.stderr
        assert "Traceback" not in resumed.stdout + resumed.stderr
        record = s.latest()
        assert record.run_id == killed.run_id and record.status == "done"
        assert outcome_of(record) == SAMPLE_OUTCOME
        for marker in ("TASK-CONVERT", "TASK-KELVIN"):  # merged before the kill: not worked on again
            assert s.team.count("worker", marker) == calls[marker], marker
        assert worktrees(s.repo) == 1 and snapshot(s.repo) == before
        assert check_branch(s.repo, record.integration_branch, tmp_path).returncode == 0


# --- bad input: one line, exit 2, nothing spent -------------------------------------------------------------------

PLANS = {
    "cycle": "- {id: a, title: a, instructions: x, files: [a.py], depends_on: [b]}\n"
             "- {id: b, title: b, instructions: x, files: [b.py], depends_on: [a]}\n",
    "unknown field": "- {id: a, title: a, instructions: x, files: [a.py], colour: red}\n",
    "outside": "- {id: a, title: a, instructions: x, files: [../a.py]}\n",
}


def bad_input(s: Sample, case: str) -> tuple[list[str], Path | None, str]:
    """The arguments for ``case``, the package to use (None: the sample's) and what the line must say."""
    tmp = s.tmp
    if case == "package missing":
        return [], tmp / "missing.md", "no work package"
    if case == "package not UTF-8":
        (tmp / "bad.md").write_bytes(b"\xff\xfe# T\n")
        return [], tmp / "bad.md", "not UTF-8"
    if case == "bad front matter key":
        (tmp / "key.md").write_text("---\nchek: python3 check.py\n---\n# T\n")
        return [], tmp / "key.md", "chek"
    if case == "repo not a directory":
        return ["--repo", str(tmp / "nowhere")], None, "no such directory"
    if case == "repo not git":
        (tmp / "plain").mkdir()
        return ["--repo", str(tmp / "plain")], None, "not a git repository"
    if case == "repo without commits":
        git(tmp, "init", "-q", str(tmp / "empty"))
        return ["--repo", str(tmp / "empty")], None, "no commits"
    if case.startswith("plan "):
        kind = case.removeprefix("plan ")
        path = tmp / f"{kind.replace(' ', '-')}.yaml"
        path.write_text("version: 1\npackage: Arbeitspaket.md\ntitle: t\nsubtasks:\n" + PLANS[kind])
        return ["--plan", str(path)], None, {"cycle": "cycle", "unknown field": "colour",
                                             "outside": "leaves the repository"}[kind]
    if case == "unknown preset":
        return ["--preset", "nope"], None, "unknown work preset 'nope'"
    if case == "unknown worker":
        return ["--worker", "nope"], None, "unknown worker 'nope'"
    if case == "resume with no earlier run":
        return ["--resume", "latest"], None, "no run of package"
    if case == "report is a directory":
        return ["--plan", str(s.plan), "--report", str(tmp)], None, "not a regular file"
    raise AssertionError(case)


BAD = ["package missing", "package not UTF-8", "bad front matter key", "repo not a directory", "repo not git",
       "repo without commits", "plan cycle", "plan unknown field", "plan outside", "unknown preset",
       "unknown worker", "resume with no earlier run", "report is a directory"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    with sample(tmp_path) as s:
        extra, package, says = bad_input(s, case)
        args = s.args("run", package=package)
        if "--repo" in extra:  # replace the sample's --repo
            args[args.index("--repo") + 1] = extra[extra.index("--repo") + 1]
            extra = []
        result = subprocess.run(args + extra, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60)
        line = one_error_line(result)
        assert says in line, line
        assert s.team.calls == []  # nothing asked of any model
        assert worktrees(s.repo) == 1


@pytest.mark.parametrize("budget", ["0", "-1", "nan"])
def test_a_budget_that_is_not_positive_is_refused(tmp_path: Path, budget: str) -> None:
    with sample(tmp_path) as s:
        result = s.run("run", "--plan", str(s.plan), f"--budget={budget}", timeout=60)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "--budget" in result.stderr and s.team.calls == []


@pytest.mark.parametrize("option", ["--budget=0", "--budget=-1", "--budget=nan", "--deadline=0"])
def test_a_budget_that_is_not_positive_is_one_line(tmp_path: Path, option: str) -> None:
    with sample(tmp_path) as s:
        one_error_line(s.run("run", "--plan", str(s.plan), option, timeout=60))


def test_a_check_command_that_does_not_exist_fails_every_subtask_and_says_why(tmp_path: Path) -> None:
    with sample(tmp_path) as s:
        (tmp_path / "nocheck").mkdir()
        package = tmp_path / "nocheck" / "Arbeitspaket.md"  # the plan's package: a file of that name
        package.write_text(s.package.read_text().replace(f"check: {sys.executable} check.py",
                                                         "check: no-such-check-command-xyz"))
        assert "no-such-check-command-xyz" in package.read_text()
        report = tmp_path / "out.md"
        result = s.run("run", "--plan", str(s.plan), "--report", str(report), package=package)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        record = StateStore(s.repo / ".git" / "podium-work" / "arbeitspaket").latest_record()
        assert record is not None
        assert all(sub.status in ("failed", "blocked") for sub in record.subtasks.values()), statuses(record)
        text = report.read_text()
        assert "no-such-check-command-xyz" in text and ("not found" in text or "127" in text), text
        assert s.team.count("reviewer") == 0  # nothing that fails its check goes to review


# --- budget ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("budget", ["0.0016", "0.003"])
def test_a_small_budget_stops_new_work_with_no_call_after_the_refusal(tmp_path: Path, budget: str) -> None:
    with sample(tmp_path) as s:
        report = tmp_path / "out.md"
        result = s.run("run", "--plan", str(s.plan), "--budget", budget, "--parallel", "1", "--report", str(report))
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        record = s.latest()
        assert record.status == "over_budget"
        assert "over budget" in report.read_text().lower()
        refused = [sub for sub in record.subtasks.values() if (sub.error or "").startswith("over budget:")]
        assert len(refused) == 1
        # every request the wire server saw is a call the run counted: none was sent after the refusal
        assert len(s.team.calls) == sum(record.costs.calls.values())
        assert record.costs.total <= float(budget)
        if budget == "0.0016":
            assert s.team.calls == []
