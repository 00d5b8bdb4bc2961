"""Child processes Podium starts in their own process group (a check command, a coding agent, a vendor's
command-line tool): how to wait for one, stop it with everything it started, and keep a bounded tail of
what it printed. One place, because each of them must get the same three things right:

- the exit is polled (``exited``), never read from ``Process.wait``: on Python 3.11 that also waits for the
  output pipes to close, which a child the process left behind may hold open for ever;
- signals go to the whole group (``signal_group``), so children it started go with it;
- output is kept as a bounded tail (``Tail``), cut at a character boundary and saying how much was cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

_POLL_MAX = 0.05


def signal_group(pgid: int, sig: int) -> None:
    """``sig`` to every process of the group; nothing if the group is gone (or not ours)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def exited(proc: asyncio.subprocess.Process, within: float | None = None) -> bool:
    """Whether the process has exited (within ``within`` seconds; None: wait as long as it takes)."""
    loop = asyncio.get_running_loop()
    until = None if within is None else loop.time() + within
    delay = 0.005
    while proc.returncode is None:
        if until is not None and loop.time() >= until:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, _POLL_MAX)
    return True


async def stop_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM to the group and up to ``grace`` seconds for the process to go, then SIGKILL to whatever is left
    of the group (children that ignored SIGTERM, or that it left behind)."""
    if proc.returncode is None and grace > 0:
        signal_group(proc.pid, signal.SIGTERM)
        await exited(proc, grace)
    signal_group(proc.pid, signal.SIGKILL)
    await exited(proc, grace + 1.0)


class Tail:
    """The last ``limit`` bytes of a stream, and how many came in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._buf = bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._buf += chunk
        if len(self._buf) > 2 * self.limit:
            del self._buf[: len(self._buf) - self.limit]

    def text(self) -> str:
        """The tail as text, not starting inside a UTF-8 character, with a note of what was cut before it."""
        data = bytes(self._buf[-self.limit:]) if self.limit > 0 else b""
        cut = self.total - len(data)
        if cut > 0:
            while data and (data[0] & 0xC0) == 0x80:
                data = data[1:]
                cut += 1
        body = data.decode("utf-8", errors="replace")
        if cut > 0:
            return f"[… {cut:,} of {self.total:,} bytes of output cut; the last {len(data):,} follow]\n{body}"
        return body


async def pump(stream: asyncio.StreamReader | None, tail: Tail) -> None:
    """Read ``stream`` to its end into ``tail``."""
    if stream is None:
        return
    while chunk := await stream.read(65536):
        tail.add(chunk)
