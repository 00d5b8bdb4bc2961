"""The ledger API as SQL writes, shared by the SQLite and PostgreSQL stores.

A store supplies three things: ``_enqueue`` buffers a row without waiting (it is committed with
the next awaited write, or soon after), ``_write`` returns once its row — and everything buffered
before it — is committed, and ``_commit_buffered`` returns once everything buffered so far is.
Start and call rows are buffered; finish and feedback rows are awaited, so an answered request is
whole in the ledger.

One request's bad row must not cost other requests theirs, though many requests share a
transaction. So rows are checked before they are queued (``checks``: a wrong type fails its
caller at once), and a batch that still fails — a duplicate id, a full disk — is retried row by
row, each in its own transaction: every row that can be stored is, and a row that cannot is logged
(logger ``podium.ledger``: the reason and the request id, no other row text) and reported to its
own request only — an awaited row's caller at once, a buffered row's request by its
``finish_request`` or ``flush(request_id)``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from podium.ledger.checks import (
    MAX_ID,
    MAX_TEXT,
    InvalidRow,
    ident,
    ident_or_none,
    number,
    number_or_none,
    text,
    text_or_none,
)
from podium.ledger.rows import CallRow, KeyUsage, RequestEnd, RequestStart, ShadowRow
from podium.ledger.schema import (
    FINISH_REQUEST,
    INSERT_CALL,
    INSERT_EMBEDDING,
    INSERT_FEEDBACK,
    INSERT_LABEL,
    INSERT_REQUEST,
    INSERT_SHADOW,
    REQUEST_EMBEDDING,
    REQUEST_OWNER,
    SPENT_BY_KEY,
    SPENT_BY_TEAM,
    USAGE_BY_KEY,
)

log = logging.getLogger("podium.ledger")
MAX_LABEL = 200
MAX_DIMS = 4_096
_MAX_FAILED = 10_000  # failed buffered rows remembered for their requests; the oldest are forgotten beyond


def reason(exc: BaseException) -> str:
    """Why a row failed, without the row's values: a PostgreSQL error's class, SQLSTATE and
    constraint (its message may quote the values); another error's first line, cut short."""
    diag = getattr(exc, "diag", None)
    sqlstate = getattr(exc, "sqlstate", None)
    if diag is not None and sqlstate:
        constraint = getattr(diag, "constraint_name", None)
        return f"{type(exc).__name__} (SQLSTATE {sqlstate}{f', constraint {constraint}' if constraint else ''})"
    first = str(exc).split("\n", 1)[0][:200]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class SqlLedger:
    def __init__(self) -> None:
        self._seq: dict[str, int] = {}  # calls recorded so far per open request (the call rows' order)
        self._failed: dict[str, BaseException] = {}  # buffered rows that failed, by request id
        self._failed_lock = threading.Lock()  # the SQLite writer thread adds, the event loop takes

    def _enqueue(self, sql: str, params: tuple[Any, ...], request_id: str) -> None:
        raise NotImplementedError

    async def _write(self, sql: str, params: tuple[Any, ...], request_id: str) -> None:
        raise NotImplementedError

    async def _commit_buffered(self) -> None:
        raise NotImplementedError

    async def _read_row(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row of a read (``?`` placeholders), from committed data, off the event loop."""
        raise NotImplementedError

    def _row_failed(self, request_id: str | None, error: BaseException, *, buffered: bool) -> None:
        """Log a row that could not be stored; a buffered row's error waits for its request."""
        log.error("ledger row not stored (request %s): %s", request_id, reason(error))
        if buffered and request_id is not None:
            with self._failed_lock:
                self._failed.pop(request_id, None)  # re-inserted last: the newest are kept
                self._failed[request_id] = error
                if len(self._failed) > _MAX_FAILED:
                    del self._failed[next(iter(self._failed))]

    def _take_failed(self, request_id: str) -> BaseException | None:
        if not self._failed:  # a dict's truth is read atomically: the lock only when something failed
            return None
        with self._failed_lock:
            return self._failed.pop(request_id, None)

    def _raise_failed(self, request_id: str) -> None:
        error = self._take_failed(request_id)
        if error is not None:
            raise error

    async def flush(self, request_id: str | None = None) -> None:
        """Return once every row buffered so far is committed (at once when nothing is buffered).

        Called before a request's first upstream call, so a request that reached a provider has its
        start row on disk even if the process is killed the next moment. Rows of other requests
        that failed are theirs to hear about; with ``request_id``, a failed row of that request
        raises here (once: its ``finish_request`` then does not raise it again)."""
        await self._commit_buffered()
        if request_id is not None:
            self._raise_failed(request_id)

    async def start_request(self, row: RequestStart) -> None:
        values = row.values()
        self._enqueue(INSERT_REQUEST, values, row.request_id)

    async def record_call(self, row: CallRow) -> None:
        seq = self._seq.get(row.request_id, 0) + 1
        values = row.values(seq)
        self._seq[row.request_id] = seq
        self._enqueue(INSERT_CALL, values, row.request_id)

    async def record_embedding(self, request_id: str, model: str, vector: bytes, dims: int) -> None:
        """The request's prompt embedding (``dims`` float32 values, little-endian, as ``vector``) and the
        model that answered; buffered like a call row, committed with the request's finish row. The
        prompt's text is never stored."""
        if not isinstance(vector, bytes) or isinstance(dims, bool) or not isinstance(dims, int) \
                or not 0 < dims <= MAX_DIMS or len(vector) != 4 * dims:
            raise InvalidRow(f"ledger: an embedding must be 4 bytes (float32) per dimension, 1 to {MAX_DIMS} of them")
        self._enqueue(INSERT_EMBEDDING, (ident(request_id, "request_id"), text(model, "model"), vector, dims),
                      request_id)

    async def record_label(self, request_id: str, model: str, source: str, score: float) -> None:
        """An automatic label of ``model``'s answer to the request (``podium.strategies.labels``), a score in
        [0, 1]; buffered like an embedding, committed with the request's finish row."""
        value = number(score, "score")
        if not 0.0 <= value <= 1.0:
            raise InvalidRow(f"ledger: a label's score must lie in [0, 1], not {value}")
        self._enqueue(INSERT_LABEL, (ident(request_id, "request_id"), text(model, "model"),
                                     text(source, "source", MAX_LABEL), value, time.time()), request_id)

    async def request_embedding(self, request_id: str) -> tuple[str, bytes, int] | None:
        """The stored embedding of a request (model, float32 bytes, dims), or None."""
        if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_ID:
            return None
        await self._commit_buffered()
        row = await self._read_row(REQUEST_EMBEDDING, (request_id,))
        return None if row is None else (str(row[0]), bytes(row[1]), int(row[2]))

    async def finish_request(self, row: RequestEnd) -> None:
        """Return once the request is whole in the ledger; raises if any of its rows failed."""
        values = row.values()
        self._seq.pop(row.request_id, None)
        try:
            await self._write(FINISH_REQUEST, values, row.request_id)
        except BaseException:
            self._take_failed(row.request_id)  # its own error says enough
            raise
        self._raise_failed(row.request_id)

    async def record_shadow(self, row: ShadowRow) -> None:
        """A shadow trial's outcome (``podium.experiments.shadow``), awaited by the shadow worker: a row that
        cannot be stored raises there (and is logged), never reaching the served request."""
        values = row.values()
        if row.shadow_id is not None:
            self._seq.pop(row.shadow_id, None)  # the shadow's calls are done; it has no finish row to do this
        await self._write(INSERT_SHADOW, values, row.request_id)

    def buffer_shadow(self, row: ShadowRow) -> None:
        """``record_shadow`` without waiting, for the request path (a trial dropped because its queue is full)
        and for shutdown: buffered, committed with the next write or flush."""
        values = row.values()
        if row.shadow_id is not None:
            self._seq.pop(row.shadow_id, None)
        self._enqueue(INSERT_SHADOW, values, row.request_id)

    async def record_feedback(self, request_id: str, score: float | None, label: str | None,
                              comment: str | None, key_id: str | None = None) -> None:
        """Feedback arrives later, keyed by the request id the response carried (TensorZero's shape);
        ``key_id`` is the virtual key that gave it. A bad argument raises ``InvalidRow`` (a
        ``ValueError``) naming it: ``request_id`` 1 to 200 characters, ``score`` a finite number,
        ``label`` at most 200 characters, ``comment`` at most 4,000."""
        if isinstance(label, str) and len(label) > MAX_LABEL:
            raise InvalidRow(f"ledger: label must have at most {MAX_LABEL} characters, not {len(label)}")
        if isinstance(comment, str) and len(comment) > MAX_TEXT:
            raise InvalidRow(f"ledger: comment must have at most {MAX_TEXT} characters, not {len(comment)}")
        values = (ident(request_id, "request_id"), time.time(), number_or_none(score, "score"),
                  text_or_none(label, "label", MAX_LABEL), text_or_none(comment, "comment", MAX_TEXT),
                  ident_or_none(key_id, "key_id"))
        await self._write(INSERT_FEEDBACK, values, request_id)

    async def request_owner(self, request_id: str) -> tuple[bool, str | None]:
        """Whether the request is in the ledger, and the key id that made it (``None`` when it was
        made without one). Rows still buffered are committed first, so a request that has only
        just started is found. An id no request can have (not a string, empty, too long) is
        simply not found."""
        if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_ID:
            return False, None
        await self._commit_buffered()
        row = await self._read_row(REQUEST_OWNER, (request_id,))
        return (False, None) if row is None else (True, row[0])

    async def spent_since(self, since: float, *, key_id: str | None = None, team: str | None = None) -> float:
        """What the calls of one key's (or one team's) requests started at or after ``since`` cost: where a
        budget counter starts from when its shared state has none (a restart of an in-memory gateway, a
        flushed Redis), so a budget is not spent twice."""
        if (key_id is None) == (team is None):
            raise ValueError("spent_since needs exactly one of key_id and team")
        await self._commit_buffered()
        row = await self._read_row(SPENT_BY_KEY if key_id is not None else SPENT_BY_TEAM,
                                   (key_id if key_id is not None else team, since))
        return float(row[0]) if row is not None and row[0] is not None else 0.0

    async def usage_since(self, since: float, *, key_id: str) -> KeyUsage:
        """One key's calls of requests started at or after ``since``: how many, their cost, tokens and time —
        what an external agent did through the gateway (a work run accounts it to the worker role)."""
        await self._commit_buffered()
        row = await self._read_row(USAGE_BY_KEY, (key_id, since))
        if row is None or not row[0]:
            return KeyUsage()
        return KeyUsage(int(row[0]), float(row[1] or 0.0), int(row[2] or 0), int(row[3] or 0),
                        float(row[4] or 0.0) / 1000)
