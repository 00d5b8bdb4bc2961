"""What watching for a client's disconnect costs a non-streamed gateway request (server/app.py
``Gateway._unless_disconnected`` and ``ClientWatch``): a registration per request; a watcher task starts
only for answers slower than ``WATCH_AFTER`` (a task for every request cost 7 to 9 % of the gateway's
throughput under load, a timer for every request about 4 %, measured with benchmarks/gateway).

    .venv/bin/python benchmarks/disconnect_watch.py

Prints the CPU per request of awaiting a trivial handler with and without the watcher, interleaved over
several rounds (median), on uvloop as ``podium serve`` runs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from podium.server.app import ClientWatch, Gateway

N = 20_000


class Request:
    """Just enough of a Starlette request: ``receive`` waits, as a connection whose body was read does."""

    def __init__(self) -> None:
        self.forever: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def receive(self) -> dict[str, Any]:
        return await self.forever  # type: ignore[no-any-return]


async def handler() -> int:
    return 1


async def plain() -> float:
    started = time.process_time()
    for _ in range(N):
        await handler()
    return (time.process_time() - started) / N


class Host:
    client_watch = ClientWatch()


async def watched() -> float:
    request = Request()
    host = Host()
    started = time.process_time()
    for _ in range(N):
        await Gateway._unless_disconnected(host, request, handler(), "req")  # type: ignore[arg-type]
    await asyncio.sleep(0)  # let the last cancellations land
    return (time.process_time() - started) / N


async def main() -> None:
    with_watch, without = [], []
    for _ in range(7):
        without.append(await plain())
        with_watch.append(await watched())
    a, b = statistics.median(without), statistics.median(with_watch)
    print(f"non-streamed request, handler awaited: {a * 1e6:.2f} µs CPU; with the disconnect watcher: "
          f"{b * 1e6:.2f} µs (+{(b - a) * 1e6:.2f} µs per request)")


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
