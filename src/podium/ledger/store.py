"""The interface every ledger store offers (SQLite now; PostgreSQL for several gateways)."""

from __future__ import annotations

from typing import Protocol

from podium.ledger.rows import CallRow, KeyUsage, RequestEnd, RequestStart, ShadowRow


class LedgerStore(Protocol):
    async def start_request(self, row: RequestStart) -> None: ...

    async def record_call(self, row: CallRow) -> None: ...

    async def finish_request(self, row: RequestEnd) -> None: ...

    async def flush(self, request_id: str | None = None) -> None:
        """Return once every row buffered so far is committed (before a request reaches a provider)."""

    async def record_embedding(self, request_id: str, model: str, vector: bytes, dims: int) -> None:
        """A request's prompt embedding (float32 bytes), with ``ledger.store_embeddings``."""

    async def record_label(self, request_id: str, model: str, source: str, score: float) -> None:
        """An automatic label (vote, consensus, verifier) of one model's answer, with ``store_embeddings``."""

    async def request_embedding(self, request_id: str) -> tuple[str, bytes, int] | None:
        """A request's stored embedding: (model, float32 bytes, dims), or None."""
        ...

    async def record_feedback(self, request_id: str, score: float | None, label: str | None,
                              comment: str | None, key_id: str | None = None) -> None: ...

    async def request_owner(self, request_id: str) -> tuple[bool, str | None]:
        """Whether the request is in the ledger, and the key id that made it."""
        ...

    async def spent_since(self, since: float, *, key_id: str | None = None, team: str | None = None) -> float:
        """What one key's (or team's) calls of requests started since ``since`` cost."""
        ...

    async def usage_since(self, since: float, *, key_id: str) -> KeyUsage:
        """One key's calls since ``since``: how many, cost, tokens, seconds."""
        ...

    async def record_shadow(self, row: ShadowRow) -> None:
        """A shadow trial's outcome, once it is committed."""

    def buffer_shadow(self, row: ShadowRow) -> None:
        """A shadow trial's outcome, buffered without waiting."""

    async def aclose(self) -> None: ...
