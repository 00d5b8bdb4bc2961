"""One run of a command-line tool: started without a shell, fed on stdin, read within bounds, always reaped.

The tool runs in its own session (process group), so whatever it starts (Node workers, shells) is killed
with it: on the deadline, on the caller's cancellation, on too much output, and after it exits (a child it
left behind goes too). Its stdout is read up to ``max_bytes``; of its stderr only the last ``STDERR_TAIL``
bytes are kept, enough for the error it printed last.

A tool that exits while something it started still holds its stdout or stderr open (``(sleep 999 &);
echo answer``) would keep the pipes from ever reaching their end. So once the tool itself has exited
(its exit status is polled, not read from ``Process.wait``, which on some Pythons also waits for the
pipes), what it printed gets
``EXIT_GRACE`` seconds to arrive; then the rest of its process group is killed, and if the pipes are
still open after ``KILL_DRAIN`` — a child that left the group with its own ``setsid`` cannot be reached
by a group kill — Podium closes its ends and uses what it read. Such a child lives on: a tool that
daemonises something on purpose must stop it itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from podium.process_group import exited, signal_group

STDERR_TAIL = 64 * 1024
READ = 64 * 1024
EXIT_GRACE = 1.0  # seconds the output may take to arrive after the tool exited
KILL_DRAIN = 0.5  # seconds after killing the group before its pipes are closed on our side
_POLL_MAX = 0.05


class OutputTooLarge(Exception):
    """The tool printed more than the provider's ``max_output_bytes``."""


class Child:
    """A started tool. Use ``async with Child.start(...)``: leaving the block kills its process group."""

    def __init__(self, process: asyncio.subprocess.Process, max_bytes: int) -> None:
        self.process = process
        self.max_bytes = max_bytes
        self.read_bytes = 0
        self._stderr = bytearray()
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: asyncio.Task[None] | None = None
        self.left_open = False  # something outside its group still held its output when it exited
        self._stdout_ended = False
        self._stderr_ended = False

    @classmethod
    async def start(cls, argv: Sequence[str], stdin: bytes, env: Mapping[str, str], cwd: Path,
                    max_bytes: int) -> Child:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=dict(env), cwd=cwd, start_new_session=True, limit=max_bytes + 1)
        child = cls(process, max_bytes)
        child._tasks = [asyncio.create_task(child._feed(stdin)), asyncio.create_task(child._drain_stderr())]
        child._watcher = asyncio.create_task(child._after_exit())
        return child

    async def __aenter__(self) -> Child:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()

    async def _feed(self, data: bytes) -> None:
        """Write the prompt concurrently with reading, so a tool that prints before it has read all of its
        input never deadlocks on a full pipe; a tool that exits without reading it is no error."""
        stdin = self.process.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.write(data)
            await stdin.drain()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()

    async def _drain_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        while chunk := await stderr.read(READ):
            self._stderr += chunk
            if len(self._stderr) > STDERR_TAIL:
                del self._stderr[:-STDERR_TAIL]
        self._stderr_ended = True

    @property
    def stderr(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def _count(self, size: int) -> None:
        self.read_bytes += size
        if self.read_bytes > self.max_bytes:
            raise OutputTooLarge(f"printed more than {self.max_bytes} bytes")

    async def read_all(self) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        out = bytearray()
        while chunk := await stdout.read(READ):
            self._count(len(chunk))
            out += chunk
        self._stdout_ended = True
        return bytes(out)

    async def lines(self) -> AsyncIterator[bytes]:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                self._stdout_ended = True
                if end.partial:
                    self._count(len(end.partial))
                    yield end.partial
                return
            except asyncio.LimitOverrunError as overrun:
                raise OutputTooLarge(f"printed a line longer than {self.max_bytes} bytes") from overrun
            self._count(len(line))
            yield line

    async def exited(self) -> int:
        """The tool's exit status, as soon as it has exited, whoever still holds its pipes."""
        await exited(self.process)
        assert self.process.returncode is not None
        return self.process.returncode

    def _ended(self) -> bool:
        stdout = self.process.stdout
        return self._stderr_ended and (self._stdout_ended or stdout is None or stdout.at_eof())

    async def _pipes_closed(self, within: float) -> bool:
        """Whether stdout and stderr reach their end within ``within`` seconds. (A reader that has not yet
        read up to the end counts as open: at worst the pipes are then closed on our side, which keeps what
        was received.)"""
        deadline = asyncio.get_running_loop().time() + within
        delay = 0.005
        while not self._ended():
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
        return True

    def _kill_group(self) -> None:
        signal_group(self.process.pid, signal.SIGKILL)

    def _close_pipes(self) -> None:
        """Close our ends of the tool's pipes: readers get what was read so far, then the end of the stream."""
        transport = getattr(self.process, "_transport", None)
        for fd in (0, 1, 2):
            pipe = transport.get_pipe_transport(fd) if transport is not None else None
            if pipe is not None:
                pipe.close()

    async def _after_exit(self) -> None:
        """Once the tool has exited: a grace for its output, then its group killed, then the pipes closed."""
        await self.exited()
        if await self._pipes_closed(EXIT_GRACE):
            return
        self._kill_group()  # children it left behind in its group, holding the pipes
        if await self._pipes_closed(KILL_DRAIN):
            return
        self.left_open = True  # a child in its own session: out of reach; stop waiting for it
        self._close_pipes()

    async def wait(self) -> int:
        """The exit status, once stderr has been read to its end too (at most ``EXIT_GRACE`` + ``KILL_DRAIN``
        seconds after the exit, whatever the tool left behind)."""
        code = await self.exited()
        if self._watcher is not None:
            await asyncio.shield(self._watcher)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return code

    async def kill(self) -> None:
        """Kill the whole process group (also after a normal exit: children it left behind) and reap it."""
        self._kill_group()
        for task in self._tasks:
            task.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        self._close_pipes()  # nothing more is read; a child out of the group's reach cannot hold them open
        # shielded: a cancelled request still waits for the reaping, so no zombie is left
        with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
            await asyncio.shield(self.process.wait())
        await asyncio.gather(*self._tasks, *(t for t in (self._watcher,) if t is not None), return_exceptions=True)
