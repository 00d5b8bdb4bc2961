"""The ledger API as SQL writes, shared by the SQLite and PostgreSQL stores.

A store supplies two ways to write: ``_enqueue`` buffers a row without waiting (it is committed
with the next awaited write, or soon after), ``_write`` returns once its row — and everything
buffered before it — is committed. Start and call rows are buffered; finish and feedback rows are
awaited, so an answered request is whole in the ledger. A buffered row that failed is reported by
the next awaited write (``_deferred_error``).
"""

from __future__ import annotations

import time
from typing import Any

from podium.ledger.rows import CallRow, RequestEnd, RequestStart
from podium.ledger.schema import FINISH_REQUEST, INSERT_CALL, INSERT_FEEDBACK, INSERT_REQUEST


class SqlLedger:
    def __init__(self) -> None:
        self._seq: dict[str, int] = {}  # calls recorded so far per open request (the call rows' order)
        self._deferred_error: BaseException | None = None

    def _enqueue(self, sql: str, params: tuple[Any, ...]) -> None:
        raise NotImplementedError

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _raise_deferred(self) -> None:
        if self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            raise error

    async def start_request(self, row: RequestStart) -> None:
        self._enqueue(INSERT_REQUEST, row.values())

    async def record_call(self, row: CallRow) -> None:
        seq = self._seq[row.request_id] = self._seq.get(row.request_id, 0) + 1
        self._enqueue(INSERT_CALL, row.values(seq))

    async def finish_request(self, row: RequestEnd) -> None:
        self._seq.pop(row.request_id, None)
        await self._write(FINISH_REQUEST, row.values())

    async def record_feedback(self, request_id: str, score: float | None, label: str | None,
                              comment: str | None) -> None:
        """Feedback arrives later, keyed by the request id the response carried (TensorZero's shape)."""
        await self._write(INSERT_FEEDBACK, (request_id, time.time(), score, label, comment))
