"""The interface every ledger store offers (SQLite now; PostgreSQL for several gateways)."""

from __future__ import annotations

from typing import Protocol

from podium.ledger.rows import CallRow, RequestEnd, RequestStart


class LedgerStore(Protocol):
    async def start_request(self, row: RequestStart) -> None: ...

    async def record_call(self, row: CallRow) -> None: ...

    async def finish_request(self, row: RequestEnd) -> None: ...

    async def aclose(self) -> None: ...
