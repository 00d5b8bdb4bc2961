"""One run of a command-line tool: started without a shell, fed on stdin, read within bounds, always reaped.

The tool runs in its own session (process group), so whatever it starts (Node workers, shells) is killed
with it: on the deadline, on the caller's cancellation, on too much output, and after it exits (a child it
left behind goes too). Its stdout is read up to ``max_bytes``; of its stderr only the last ``STDERR_TAIL``
bytes are kept, enough for the error it printed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

STDERR_TAIL = 64 * 1024
READ = 64 * 1024


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

    @classmethod
    async def start(cls, argv: Sequence[str], stdin: bytes, env: Mapping[str, str], cwd: Path,
                    max_bytes: int) -> Child:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=dict(env), cwd=cwd, start_new_session=True, limit=max_bytes + 1)
        child = cls(process, max_bytes)
        child._tasks = [asyncio.create_task(child._feed(stdin)), asyncio.create_task(child._drain_stderr())]
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
        return bytes(out)

    async def lines(self) -> AsyncIterator[bytes]:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                if end.partial:
                    self._count(len(end.partial))
                    yield end.partial
                return
            except asyncio.LimitOverrunError as overrun:
                raise OutputTooLarge(f"printed a line longer than {self.max_bytes} bytes") from overrun
            self._count(len(line))
            yield line

    async def wait(self) -> int:
        """The exit status, once stderr has been read to its end too."""
        code = await self.process.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return code

    async def kill(self) -> None:
        """Kill the whole process group (also after a normal exit: children it left behind) and reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for task in self._tasks:
            task.cancel()
        # shielded: a cancelled request still waits for the reaping, so no zombie is left
        with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
            await asyncio.shield(self.process.wait())
        await asyncio.gather(*self._tasks, return_exceptions=True)
