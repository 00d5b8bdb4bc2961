"""``podium work run`` marks its process not dumpable: code a model wrote, run as the same user by a check or
an agent, cannot read the run's environment (its provider keys) from ``/proc/<pid>/environ``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")
HOLDER = f"""
import os, sys, time
sys.path.insert(0, {SRC!r})
if sys.argv[1] == "guarded":
    from podium.cli.work import not_dumpable
    not_dumpable()
print(os.getpid(), flush=True)
time.sleep(30)
"""
READER = """
import sys
try:
    data = open(f"/proc/{sys.argv[1]}/environ", "rb").read()
    print("READ" if b"SK_TEST_SECRET" in data else "NOSECRET")
except OSError as exc:
    print("DENIED", type(exc).__name__)
"""


def as_same_unprivileged_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: cannot test as an unprivileged user")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl and /proc are Linux's")
@pytest.mark.parametrize(("mode", "expected"), [("plain", "READ"), ("guarded", "DENIED")])
def test_a_child_of_the_same_user_cannot_read_the_runs_environment(mode: str, expected: str):
    prefix = as_same_unprivileged_user()
    env = {**os.environ, "SK_TEST_SECRET": "sk-live-0123456789"}
    holder = subprocess.Popen([*prefix, sys.executable, "-c", HOLDER, mode], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout is not None
        pid = holder.stdout.readline().strip()
        got = subprocess.run([*prefix, sys.executable, "-c", READER, pid], capture_output=True, text=True,
                             timeout=30, env={"PATH": os.environ.get("PATH", "")})
        assert got.stdout.split()[0] == expected, got.stdout + got.stderr
    finally:
        holder.kill()
        holder.wait()
