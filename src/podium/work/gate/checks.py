"""The package's check command, run in a subtask's worktree: the first half of the quality gate.

The command is a shell line the package's author wrote (``python -m pytest -q``, ``make lint test``), so
it runs as ``/bin/sh -c COMMAND`` — but the code it runs was written by a model, so it is held short:

- its own session (and so its own process group), stdin closed; when the shell ends, on the timeout and
  when the caller is cancelled, the whole group is stopped (SIGTERM, then SIGKILL), so a test server or
  a forgotten ``sleep`` cannot outlive the check or hold its output open. (A process that leaves the
  group on purpose — its own ``setsid`` — is beyond any process-group kill.)
- the environment is the run's own minus whatever looks like a credential (``check_env``, by the rule
  of ``podium.secrets_env``): names ending in ``_API_KEY``, ``_TOKEN``, ``_PASSWORD``, ``_ACCESS_KEY``,
  ``_PRIVATE_KEY``, ``_CREDENTIALS``, any name containing ``SECRET``, Podium's own ``PODIUM_*KEY`` (the
  admin key, the gateway's keys), and ``SSH_AUTH_SOCK`` (a check has no business pushing anywhere). Model-written
  tests must not be able to read, print or send the keys the run itself calls models with.
- stdout and stderr are merged and only the last ``OUTPUT_LIMIT`` bytes kept, with a note of how much
  was cut; whatever still looks like a key in that tail is redacted. It goes into the report and back
  to the worker as feedback, so a chatty test suite must not flood either.

A check passes when the shell exits 0. One that cannot start (no such directory, no ``/bin/sh``), does
not finish in time, or is cancelled fails with ``exit_code=None``: the gate never passes in doubt.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from podium.errors import redact
from podium.process_group import Tail, exited, pump, signal_group, stop_group
from podium.secrets_env import is_secret_name, without_secrets
from podium.work.contracts import CheckResult

__all__ = ["check_env", "is_secret_name", "run_check"]

OUTPUT_LIMIT = 8 * 1024  # bytes of merged stdout/stderr kept (the tail: where test runners put the summary)
TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL when the check is stopped
DRAIN_TIMEOUT = 2.0  # seconds to read what is left in the pipe once the group is gone
SHELL = "/bin/sh"

def check_env(base: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The environment a check runs with: ``base`` (default: this process's) without credential-like
    variables (``podium.secrets_env``); and the values dropped (to redact them from the output should a
    check find them anyway)."""
    return without_secrets(base)


async def _finish_reading(reader: asyncio.Task[None]) -> None:
    """Read what is left once the group is gone; give up after DRAIN_TIMEOUT (a process that left the group
    may still hold the pipe open)."""
    done, _ = await asyncio.wait({reader}, timeout=DRAIN_TIMEOUT)
    if not done:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def _describe_exit(code: int) -> str:
    if code == 127:
        return " (127: the shell did not find the command)"
    if code == 126:
        return " (126: the command was found but could not be run)"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f" (killed by {signal.Signals(-code).name})"
    return ""


async def run_check(command: str, cwd: Path, timeout: float, *,  # noqa: ASYNC109 (the contract's)
                    env: Mapping[str, str] | None = None, output_limit: int = OUTPUT_LIMIT) -> CheckResult:
    """Run the package's check command in ``cwd`` and say whether it passed.

    ``env`` replaces this process's environment as the base (as in ``subprocess``); credential-like
    variables are dropped from either. Never raises for the check's own failures (it cannot start, it
    fails, it times out): those are a failed CheckResult. A ``timeout`` of 0 or less (the run's deadline
    is near) fails at once without starting anything. Cancelling the call stops the check's whole process
    group and re-raises."""
    started = time.monotonic()
    if not command.strip():
        return CheckResult(command=command, passed=False, exit_code=None, seconds=0.0,
                           output="the check command is empty; set check: in the package's front matter")
    if not timeout > 0:  # also NaN: the caller cut the timeout to what is left of the run's deadline
        return CheckResult(command=command, passed=False, exit_code=None, seconds=0.0, timed_out=True,
                           output="the check was not run: no time left before the run's deadline")
    child_env, secrets = check_env(env)
    try:
        proc = await asyncio.create_subprocess_exec(
            SHELL, "-c", command, cwd=str(cwd), env=child_env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        what = f" ({exc.filename})" if exc.filename else ""
        reason = f"{exc.strerror or type(exc).__name__}{what}"
        return CheckResult(command=command, passed=False, exit_code=None, seconds=time.monotonic() - started,
                           output=f"the check command could not start: {reason}")
    tail = Tail(output_limit)
    reader = asyncio.create_task(pump(proc.stdout, tail))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(exited(proc), timeout)
        except TimeoutError:
            timed_out = True
        await stop_group(proc, TERM_GRACE if timed_out else 0.0)
        await _finish_reading(reader)
    except BaseException:  # cancelled (or anything unexpected): nothing of the check may keep running
        signal_group(proc.pid, signal.SIGKILL)
        reader.cancel()
        with contextlib.suppress(BaseException):
            await exited(proc, DRAIN_TIMEOUT)
        raise
    seconds = time.monotonic() - started
    output = redact(tail.text(), *secrets)
    if timed_out:
        note = f"[the check did not finish in {timeout:g} s; it and every process it started were stopped]"
        return CheckResult(command=command, passed=False, exit_code=None, seconds=seconds,
                           output=f"{output.rstrip()}\n{note}" if output.strip() else note, timed_out=True)
    code = proc.returncode if proc.returncode is not None else -1
    if code != 0:
        note = f"[exit code {code}{_describe_exit(code)}]"
        output = f"{output.rstrip()}\n{note}" if output.strip() else note
    return CheckResult(command=command, passed=code == 0, exit_code=code, seconds=seconds, output=output)
