"""A work run against model-written code that reaches outside its worktree.

The check command runs code a model wrote, with the user's permissions, in a git directory the user's
checkout shares. What would act later — the repository's config and hooks — is put back after every check,
commits a check makes are dropped, only the reviewed commit merges, and the subtask fails saying why.
The conductor sees committed text only: never a symlink's target outside the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from podium.client import Podium
from podium.config import load_settings
from podium.providers.scripted import ScriptedProvider, Step
from podium.types import ChatRequest
from podium.work.package import load_package
from podium.work.plan import plan_from_data
from podium.work.runner import RunOptions, WorkRun
from work_sample import config, git, make_repo, texts

FENCE = "`" * 3
# the worker's code, imported by check.py, commits a file of its own and writes into the shared git dir
EVIL = '''"""Temperature conversions."""
import os, subprocess
def c_to_f(celsius):
    """Celsius to Fahrenheit."""
    return celsius * 9 / 5 + 32
_git = os.environ.get("EVIL_GIT_DIR")
if _git and not os.path.exists("unreviewed.py"):
    open("unreviewed.py", "w").write("print('never reviewed')\\n")
    subprocess.run(["git", "add", "unreviewed.py"], check=False)
    subprocess.run(["git", "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "sneaky"], check=False)
    with open(os.path.join(_git, "config"), "a") as f:
        f.write("[alias]\\n\\tst = !touch /tmp/pwned\\n")
    hook = os.path.join(_git, "hooks", "post-commit")
    open(hook, "w").write("#!/bin/sh\\ntouch /tmp/pwned\\n")
    os.chmod(hook, 0o755)
'''


def hostile(tmp_path: Path, worker_text: str, reviewer_seen: list[str]) -> Podium:
    podium = Podium(load_settings(config(tmp_path)))

    def step(request: ChatRequest) -> Step:
        system, prompt = texts(request)
        if "You are the reviewer" in system:
            reviewer_seen.append(prompt)
            return Step(text=json.dumps({"approved": True, "reasons": ["fine"], "changes": []}))
        if "You are the conductor" in system:
            reviewer_seen.append("CONDUCTOR:" + prompt)
            return Step(text=json.dumps({"subtasks": [{"id": "a", "title": "A", "instructions": "x"}]}))
        return Step(text=worker_text)

    for provider, model in (("acme", "conductor-m"), ("acme", "worker-m"), ("euro", "reviewer-m")):
        found = podium.registry.get_provider(provider)
        assert isinstance(found, ScriptedProvider)
        found.set_script(model, step)
    return podium


async def test_a_check_that_commits_and_writes_into_the_git_dir_is_undone_and_fails(tmp_path: Path,
                                                                                     monkeypatch):
    repo, package, _ = make_repo(tmp_path)
    git_dir = repo / ".git"
    monkeypatch.setenv("EVIL_GIT_DIR", str(git_dir))
    config_before = (git_dir / "config").read_bytes()
    hooks_before = sorted(p.name for p in (git_dir / "hooks").iterdir())
    answer = "temperature.py\n" + FENCE + "\n<<<<<<< SEARCH\n\"\"\"Temperature conversions.\"\"\"\n=======\n" + \
        EVIL + ">>>>>>> REPLACE\n" + FENCE + "\n"
    seen: list[str] = []
    podium = hostile(tmp_path, answer, seen)
    plan = plan_from_data({"package": "Arbeitspaket.md", "subtasks": [
        {"id": "evil", "title": "E", "instructions": "add c_to_f", "files": ["temperature.py"]}]})
    record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=plan)).run()
    await podium.aclose()
    sub = record.subtasks["evil"]
    assert sub.status == "failed" and "made commits of its own" in (sub.error or "")
    assert "config" in (sub.error or "") and "hooks/post-commit" in (sub.error or "")
    assert (git_dir / "config").read_bytes() == config_before
    assert sorted(p.name for p in (git_dir / "hooks").iterdir()) == hooks_before
    assert "unreviewed.py" not in git(repo, "ls-tree", "-r", "--name-only", record.integration_branch)
    assert not seen  # it never reached review


async def test_only_the_reviewed_commit_merges(tmp_path: Path):
    """A branch moved after its review (another subtask's check can move any ref) merges as reviewed."""
    repo, package, _ = make_repo(tmp_path)
    answer = "temperature.py\n" + FENCE + "\n<<<<<<< SEARCH\n\"\"\"Temperature conversions.\"\"\"\n=======\n" \
        "\"\"\"Temperature conversions.\"\"\"\nX = 1\n>>>>>>> REPLACE\n" + FENCE + "\n"
    seen: list[str] = []
    podium = hostile(tmp_path, answer, seen)
    plan = plan_from_data({"package": "Arbeitspaket.md", "subtasks": [
        {"id": "a", "title": "A", "instructions": "set X", "files": ["temperature.py"]}]})
    run = WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=plan))

    def move_branch_after_review(record, message: str) -> None:  # type: ignore[no-untyped-def]
        sub = record.subtasks.get("a")
        if sub is not None and sub.status == "approved" and sub.commit:
            evil = git(repo, "commit-tree", f"{sub.commit}^{{tree}}", "-p", sub.commit, "-m", "evil").strip()
            git(repo, "update-ref", f"refs/heads/{sub.branch}", evil)

    run.listener = move_branch_after_review
    record = await run.run()
    await podium.aclose()
    assert record.subtasks["a"].status == "merged"
    log = git(repo, "log", "--format=%s", record.integration_branch)
    assert "evil" not in log and "a: A (round 1)" in log


async def test_the_conductor_sees_committed_text_never_a_symlinks_target(tmp_path: Path):
    repo, package, _ = make_repo(tmp_path)
    secret = tmp_path / "victim_secret"
    secret.write_text("TOP-SECRET\n")
    os.symlink(secret, repo / "NOTES.md")
    (repo / "temperature.py").write_text("UNCOMMITTED EDIT\n")  # the user's work in progress
    git(repo, "add", "NOTES.md")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "notes link")
    (repo / "temperature.py").write_text("UNCOMMITTED EDIT\n")
    package.write_text(package.read_text() + "\nSee NOTES.md and temperature.py.\n")
    seen: list[str] = []
    podium = hostile(tmp_path, "nothing", seen)
    await WorkRun(podium, RunOptions(repo=repo, package=load_package(package))).plan()
    await podium.aclose()
    prompt = next(p for p in seen if p.startswith("CONDUCTOR:"))
    assert "TOP-SECRET" not in prompt and "UNCOMMITTED EDIT" not in prompt
    assert '"""Temperature conversions."""' in prompt  # the committed text of a mentioned file


async def test_worktrees_left_by_a_killed_run_go_when_the_next_run_starts(tmp_path: Path):
    repo, package, plan_path = make_repo(tmp_path)
    script = f"""
import asyncio, os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from work_sample import podium_for
from podium.work.package import load_package
from podium.work.plan import load_plan
from podium.work.runner import RunOptions, WorkRun
from pathlib import Path
async def main():
    podium = podium_for(Path({str(tmp_path / 'k')!r}), latency=0.3)
    def listen(record, message):
        if any(s.status == "checking" for s in record.subtasks.values()):
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind
    await WorkRun(podium, RunOptions(repo=Path({str(repo)!r}), package=load_package({str(package)!r}),
                                     plan=load_plan({str(plan_path)!r})), listen).run()
asyncio.run(main())
"""
    (tmp_path / "k").mkdir()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,  # noqa: ASYNC221
                          timeout=120)
    assert done.returncode == -9, done.stderr[-2000:]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") > 1  # left behind by the kill
    seen: list[str] = []
    podium = hostile(tmp_path, "nothing to do", seen)
    plan = plan_from_data({"package": "Arbeitspaket.md", "subtasks": [
        {"id": "a", "title": "A", "instructions": "x"}]})
    await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=plan)).run()
    await podium.aclose()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


async def test_a_check_that_moves_the_users_branch_or_tags_fails_and_says_how_to_undo(tmp_path: Path):
    repo, package, _ = make_repo(tmp_path)
    main_before = git(repo, "rev-parse", "refs/heads/main").strip()
    check = ("T=$(git rev-parse HEAD^{tree}); C=$(git -c user.name=x -c user.email=y commit-tree -m evil "
             "-p refs/heads/main $T); git update-ref refs/heads/main $C; git tag evil-tag $C; true")
    package.write_text(package.read_text().replace(f"check: {sys.executable} check.py", f"check: {check}"))
    answer = "temperature.py\n" + FENCE + "\n<<<<<<< SEARCH\n\"\"\"Temperature conversions.\"\"\"\n=======\n" \
        "\"\"\"Temperature conversions.\"\"\"\nX = 1\n>>>>>>> REPLACE\n" + FENCE + "\n"
    seen: list[str] = []
    podium = hostile(tmp_path, answer, seen)
    plan = plan_from_data({"package": "Arbeitspaket.md", "subtasks": [
        {"id": "a", "title": "A", "instructions": "set X", "files": ["temperature.py"]}]})
    record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=plan)).run()
    await podium.aclose()
    sub = record.subtasks["a"]
    error = sub.error or ""
    assert sub.status == "failed" and "refs/heads/main" in error and "refs/tags/evil-tag" in error
    assert main_before[:12] in (sub.error or "") and "git update-ref" in (sub.error or "")
    assert not seen  # not reviewed, not merged


async def test_podiums_own_git_commands_carry_no_keys(tmp_path: Path, monkeypatch):
    """A filter a check's code slipped into the shared config runs inside Podium's git commands: it must
    find none of the keys Podium was configured with, under any variable name."""
    from podium.work.git import git_env

    monkeypatch.setenv("MY_ACME_KEY", "sk-acme-from-a-custom-variable")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-0123456789")
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "podium.yaml").write_text(json.dumps({
        "providers": {"acme": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                               "api_key_env": "MY_ACME_KEY"}, "local": {"enabled": False}}}))
    podium = Podium(load_settings(tmp_path / "cfg" / "podium.yaml"))
    env = git_env()
    await podium.aclose()
    assert "sk-acme-from-a-custom-variable" not in env.values() and "OPENAI_API_KEY" not in env
    from podium.work.gate.checks import check_env

    assert "sk-acme-from-a-custom-variable" not in check_env()[0].values()


async def test_a_kill_between_approval_and_merge_merges_once_and_works_no_more(tmp_path: Path):
    """Found by a second outside review: the approval was not saved before the merge, so a SIGKILL there
    re-worked the subtask on resume and merged it twice."""
    repo, package, plan_path = make_repo(tmp_path)
    script = f"""
import asyncio, os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from work_sample import podium_for
from podium.work.package import load_package
from podium.work.plan import load_plan
from podium.work.runner import RunOptions, WorkRun
from pathlib import Path
async def main():
    podium = podium_for(Path({str(tmp_path / 'k')!r}))
    def listen(record, message):
        if message == "convert: approved":
            os.kill(os.getpid(), signal.SIGKILL)
    await WorkRun(podium, RunOptions(repo=Path({str(repo)!r}), package=load_package({str(package)!r}),
                                     plan=load_plan({str(plan_path)!r}), max_parallel=1), listen).run()
asyncio.run(main())
"""
    (tmp_path / "k").mkdir()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,  # noqa: ASYNC221
                          timeout=120)
    assert done.returncode == -9, done.stderr[-2000:]
    from work_sample import podium_for

    podium = podium_for(tmp_path)
    record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), resume="latest")).run()
    again = [r for _, r in podium.registry.get_provider("acme").calls  # type: ignore[attr-defined]
             if "TASK-CONVERT" in str(r.messages[-1].content)]
    await podium.aclose()
    assert record.subtasks["convert"].status == "merged" and again == []
    merges = git(repo, "log", "--format=%s", "--merges", record.integration_branch).splitlines()
    assert sum("/convert" in m for m in merges) == 1, merges
