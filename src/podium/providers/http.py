"""HTTP plumbing every remote adapter shares: one pooled client, and failures mapped onto the tree.

Adapters never retry (the resilience layer owns retries); they only say precisely what happened:

    status / failure                          → podium.errors
    400 + context-length wording or code      → ContextTooLongError
    400 + safety / content-policy wording     → ContentFilteredError
    400, 413, 422                             → BadRequestError
    401                                       → AuthenticationError
    403                                       → PermissionDeniedError
    404                                       → NotFoundError (model)
    408, read/connect/pool timeout            → TimeoutError
    429                                       → RateLimitedError (retry_after from Retry-After or reset headers)
    500 and anything else                     → ProviderError
    502, 503, 504, 529, refused, reset        → ProviderUnavailableError
    malformed JSON, stream without terminator → ProviderError

The vendor's own message is kept (it is usually the most useful text) after ``redact``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import httpx
import orjson

from podium import errors
from podium.config import ProviderSpec

_CONTEXT_WORDS = re.compile(r"context.length|context window|maximum context|too many tokens|prompt is too long|"
                            r"input is too long|exceeds the (?:maximum|context)|token limit", re.I)
_FILTER_WORDS = re.compile(r"content.(?:policy|filter|management)|safety|blocked", re.I)
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")


class Deadline:
    """The total time a call may take (``total_timeout``); None means only connect/read timeouts apply.

    ``within`` bounds a whole request/response; ``check`` is called between stream chunks, since a
    slow-dripping stream never trips a per-read timeout.
    """

    def __init__(self, seconds: float | None, provider: str, model: str | None) -> None:
        self.seconds, self.provider, self.model = seconds, provider, model
        self.ends = None if seconds is None else time.monotonic() + seconds

    def _error(self) -> errors.TimeoutError:
        return errors.TimeoutError(f"{self.provider} did not finish within total_timeout={self.seconds:g}s",
                                   provider=self.provider, model=self.model)

    def check(self) -> None:
        if self.ends is not None and time.monotonic() > self.ends:
            raise self._error()

    @contextlib.asynccontextmanager
    async def within(self) -> AsyncIterator[None]:
        if self.seconds is None:
            yield
            return
        try:
            async with asyncio.timeout(self.seconds):
                yield
        except TimeoutError:  # the builtin one, raised by asyncio.timeout
            raise self._error() from None


def make_client(spec: ProviderSpec, headers: Mapping[str, str], base_url: str) -> httpx.AsyncClient:
    """One client per provider: keep-alive pool, connect/read/write/pool timeouts, no retries."""
    timeout = httpx.Timeout(spec.timeout, connect=spec.connect_timeout)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30)
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), headers={**headers, **spec.headers}, timeout=timeout,
                             limits=limits, follow_redirects=False, trust_env=False)


def parse_duration(value: str) -> float | None:
    """Seconds from a Retry-After style value: ``12``, ``1.5``, ``6m0s``, ``250ms``, an HTTP date or ISO time."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    match = _DURATION.match(value)
    if match and any(match.groups()):
        h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
        return h * 3600 + m * 60 + s + ms / 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            from datetime import datetime

            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return max(0.0, when.timestamp() - time.time())


def retry_after(headers: httpx.Headers) -> float | None:
    """The wait a 429 asks for: Retry-After first, then the vendors' reset headers (the longest)."""
    for name in ("retry-after-ms", "retry-after"):
        if name in headers:
            seconds = parse_duration(headers[name])
            if seconds is not None:
                return seconds / 1000 if name == "retry-after-ms" else seconds
    resets = [parse_duration(value) for name, value in headers.items() if _is_reset_header(name)]
    known = [r for r in resets if r is not None]
    return max(known) if known else None


def _is_reset_header(name: str) -> bool:
    name = name.lower()
    return name.startswith("x-ratelimit-reset") or (name.startswith("anthropic-ratelimit-") and name.endswith("-reset"))


def error_message(body: bytes) -> tuple[str, str | None]:
    """(message, code) from any vendor's error body; the raw text if it is not JSON."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500] or "(empty body)", None
    if isinstance(data, list) and data:  # Gemini sometimes wraps errors in a list
        data = data[0]
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, str):
        return err, None
    if isinstance(err, dict):
        message = str(err.get("message") or err.get("detail") or err)
        code = err.get("code") or err.get("type") or err.get("status")
        return message, str(code) if code is not None else None
    return str(data)[:500], None


def raise_for_status(response: httpx.Response, body: bytes, *, provider: str, model: str | None,
                     secrets: tuple[str | None, ...] = ()) -> None:
    status = response.status_code
    if status < 400:
        return
    message, code = error_message(body)
    text = errors.redact(f"{provider} returned HTTP {status}: {message}", *secrets)
    raise_mapped(status, text, code, response.headers, provider=provider, model=model)


def raise_mapped(status: int, text: str, code: str | None, headers: httpx.Headers | None, *,
                 provider: str, model: str | None) -> NoReturn:
    """Map by HTTP status first; the vendor's error code decides only where the status does not
    (errors sent inside a 200 stream, or a 400 that means "context too long")."""
    kw: dict[str, Any] = {"provider": provider, "model": model}
    code_l = (code or "").lower()
    by_code = {"rate_limit_error": 429, "rate_limit_exceeded": 429, "resource_exhausted": 429,
               "authentication_error": 401, "unauthenticated": 401, "permission_error": 403,
               "permission_denied": 403, "not_found_error": 404, "not_found": 404, "overloaded_error": 529,
               "unavailable": 503, "service_unavailable": 503, "invalid_request_error": 400,
               "invalid_argument": 400, "timeout": 408, "deadline_exceeded": 504}
    if status < 400 or (status == 500 and code_l in by_code):
        status = by_code.get(code_l, 500)
    if status == 429:
        raise errors.RateLimitedError(text, retry_after=retry_after(headers) if headers else None, **kw)
    if status in {400, 413, 422}:
        if "context_length" in code_l or _CONTEXT_WORDS.search(text):
            raise errors.ContextTooLongError(text, **kw)
        if "content_filter" in code_l or "content_policy" in code_l or _FILTER_WORDS.search(text):
            raise errors.ContentFilteredError(text, **kw)
        raise errors.BadRequestError(text, code=code, **kw)
    if status == 401:
        raise errors.AuthenticationError(text, code=code, **kw)
    if status == 403:
        raise errors.PermissionDeniedError(text, code=code, **kw)
    if status == 404:
        raise errors.NotFoundError(text, code="model_not_found", **kw)
    if status == 408:
        raise errors.TimeoutError(text, **kw)
    if status in {502, 503, 504, 529}:
        raise errors.ProviderUnavailableError(text, code=code, **kw)
    raise errors.ProviderError(text, code=code, **kw)


def transport_error(exc: httpx.HTTPError, *, provider: str, model: str | None) -> errors.PodiumError:
    """A failure below HTTP status: the connection, the clock or the bytes."""
    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, httpx.TimeoutException):
        return errors.TimeoutError(f"{provider} did not answer in time ({type(exc).__name__})", **kw)
    if isinstance(exc, httpx.ConnectError):
        return errors.ProviderUnavailableError(f"cannot connect to {provider}: {exc}", **kw)
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return errors.ProviderUnavailableError(f"{provider} closed the connection mid-response: {exc}", **kw)
    return errors.ProviderError(f"{provider}: {type(exc).__name__}: {exc}", **kw)


_JSON_HEADERS = {"content-type": "application/json"}


def json_body(body: Any) -> dict[str, Any]:
    """Keyword arguments for httpx that send ``body`` as JSON, serialised by orjson (several times
    faster than the standard library, which httpx's ``json=`` uses)."""
    return {"content": orjson.dumps(body), "headers": _JSON_HEADERS}


def parse_json(body: bytes | str, *, provider: str, model: str | None) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.ProviderError(f"{provider} sent malformed JSON: {body[:200]!r}", provider=provider,
                                   model=model) from None
