"""HTTP plumbing every remote adapter shares: one pooled client, and failures mapped onto the tree.

The client is aiohttp: on this project's two-core machines httpx's async client cost ~1.5 ms per
request more than aiohttp's (2.2 ms vs 0.67 ms p50 against the same local server), which alone
would exceed the gateway's whole overhead budget. Adapters see only ``HttpClient`` below.

Adapters never retry (the resilience layer owns retries); they only say precisely what happened:

    status / failure                          → podium.errors
    400 + context-length wording or code      → ContextTooLongError
    400 + a content-filter *code*             → ContentFilteredError (``content_filter``, ``content_policy_violation``)
    400 + Google's ``API_KEY_INVALID`` reason → AuthenticationError (Gemini answers a bad key with 400)
    400, 413, 422                             → BadRequestError
    401                                       → AuthenticationError
    403                                       → PermissionDeniedError
    404                                       → NotFoundError (model)
    408, read/connect/pool timeout            → TimeoutError
    429                                       → RateLimitedError (retry_after from Retry-After or reset headers,
                                                else the body's google.rpc.RetryInfo ``retryDelay``)
    500 and anything else                     → ProviderError
    502, 503, 504, 529, refused, reset        → ProviderUnavailableError
    malformed JSON, stream without terminator → ProviderError

A content filter is recognised only from a vendor's structured fields (an error code here; finish and
stop reasons in the wire modules), never from words such as "safety" in a message: a 400 that merely
mentions them is a bad request, and must not send the request to another provider as a filtered one.

The vendor's own message is kept (it is usually the most useful text) after ``redact``.

Proxies: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` and ``NO_PROXY`` (either case) are read
when a provider's client is made, with the standard library's rules (``urllib.request``), as curl
and requests read them. Only those variables: aiohttp's ``trust_env`` would also read ``~/.netrc``
and send its passwords to the vendors.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import re
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import aiohttp
import orjson

from podium import errors
from podium.config import ProviderSpec
from podium.providers.base import Health

_CONTEXT_WORDS = re.compile(r"context.length|context window|maximum context|too many tokens|prompt is too long|"
                            r"input is too long|exceeds the (?:maximum|context)|token limit", re.I)
_FILTER_CODES = ("content_filter", "content_policy")  # OpenAI/Azure: content_filter, content_policy_violation
_BAD_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})  # google.rpc.ErrorInfo reasons
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


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Streamed:
    """An open streamed response: status and headers now, the body line by line."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        return await self._response.read()

    async def lines(self) -> AsyncIterator[str]:
        async for raw in self._response.content:
            yield raw.decode("utf-8").rstrip("\r\n")


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """Server-sent events as ``(event, data)`` (html.spec.whatwg.org/#event-stream-interpretation)."""
    event, data = "", list[str]()
    async for line in lines:
        if not line:
            if data:
                yield event or "message", "\n".join(data)
            event, data = "", list[str]()
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
    if data:
        yield event or "message", "\n".join(data)


class HttpClient:
    """One keep-alive pool per provider. The session is bound to the event loop that first uses it
    and re-created if another loop (a test, ``SyncPodium``) uses the provider later."""

    def __init__(self, base_url: str, headers: Mapping[str, str], *, read_timeout: float,
                 connect_timeout: float, proxy: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.proxy = proxy
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, keepalive_timeout=30, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=self._timeout, connector=connector,
                                                  trust_env=False, auto_decompress=True)
            self._loop = loop
        return self._session

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def request(self, method: str, path: str, *, body: Any = None,
                      params: Mapping[str, str | int] | None = None) -> Reply:
        data = orjson.dumps(body) if body is not None else None
        async with self._get().request(method, self._url(path), data=data, params=params,
                                       headers=_JSON_HEADERS if data is not None else None,
                                       allow_redirects=False, proxy=self.proxy) as response:
            return Reply(response.status, response.headers, await response.read())

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path: str, *, body: Any,
                     params: Mapping[str, str | int] | None = None) -> AsyncIterator[Streamed]:
        async with self._get().request(method, self._url(path), data=orjson.dumps(body), params=params,
                                       headers=_JSON_HEADERS, allow_redirects=False, proxy=self.proxy) as response:
            try:
                yield Streamed(response)
            except BaseException:
                response.close()  # left early (cancelled, failed): drop the connection so the upstream stops
                raise

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(RuntimeError):  # its loop may be gone already
                await self._session.close()


TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


async def get_json(client: HttpClient, path: str, *, provider: str, secrets: tuple[str | None, ...] = (),
                   params: Mapping[str, str | int] | None = None) -> Any:
    """GET a JSON document (model listings), every failure mapped onto the error tree."""
    try:
        reply = await client.request("GET", path, params=params)
    except TRANSPORT_ERRORS as exc:
        raise transport_error(exc, provider=provider, model=None) from None
    raise_for_status(reply.status, reply.headers, reply.body, provider=provider, model=None, secrets=secrets)
    return parse_json(reply.body, provider=provider, model=None)


async def listing_health(list_models: Callable[[], Awaitable[list[str]]], noun: str = "models listed") -> Health:
    """A provider is healthy when it answers its model listing: free, fast, and needs a valid key."""
    start = time.perf_counter()
    try:
        models = await list_models()
    except errors.PodiumError as exc:
        return Health(False, exc.message, (time.perf_counter() - start) * 1000)
    return Health(True, f"{len(models)} {noun}", (time.perf_counter() - start) * 1000)


def make_client(spec: ProviderSpec, headers: Mapping[str, str], base_url: str) -> HttpClient:
    """One client per provider: keep-alive pool, connect and per-read timeouts, the environment's
    proxy for its URL, no retries."""
    return HttpClient(base_url, {**headers, **spec.headers}, read_timeout=spec.timeout,
                      connect_timeout=spec.connect_timeout, proxy=env_proxy(base_url))


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY`` for https, ``HTTP_PROXY`` for http,
    else ``ALL_PROXY``), or None when there is none or ``NO_PROXY`` covers the URL's host."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()  # either case; lower case wins, as in curl
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or not parts.hostname or _no_proxy(parts.hostname, parts.port, proxies.get("no", "")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _no_proxy(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` covers a host: ``*``, the host itself, or a domain it is in (``example.com``,
    ``.example.com`` and ``*.example.com`` all cover ``api.example.com``); ``host:port`` only that port."""
    host = host.lower()
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and (not entry_port.isdigit() or int(entry_port) != port):
            continue
        name = name.removeprefix("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


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


def retry_after(headers: Mapping[str, str], body: bytes = b"") -> float | None:
    """The wait a 429 asks for: Retry-After first, then the vendors' reset headers (the longest)."""
    for name in ("retry-after-ms", "retry-after"):
        if name in headers:
            seconds = parse_duration(headers[name])
            if seconds is not None:
                return seconds / 1000 if name == "retry-after-ms" else seconds
    resets = [parse_duration(value) for name, value in headers.items() if _is_reset_header(name)]
    known = [r for r in resets if r is not None]
    if known:
        return max(known)
    delay = _google_detail(body, "RetryInfo", "retryDelay")
    return parse_duration(delay) if delay else None


def _google_detail(body: bytes, kind: str, field: str) -> str | None:
    """A field of a google.rpc detail in an error body (``error.details[]`` with ``@type`` ending in ``kind``):
    Gemini says how long to wait in ``RetryInfo.retryDelay`` (``"37s"``) and what a 400 is in ``ErrorInfo.reason``."""
    if kind.encode() not in body:
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith(f".{kind}"):
            value = detail.get(field)
            return str(value) if value is not None else None
    return None


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


def raise_for_status(status: int, headers: Mapping[str, str], body: bytes, *, provider: str, model: str | None,
                     secrets: tuple[str | None, ...] = ()) -> None:
    if status < 400:
        return
    raise_error_body(status, headers, body, provider=provider, model=model, secrets=secrets)


def raise_error_body(status: int, headers: Mapping[str, str], body: bytes, *, provider: str, model: str | None,
                     secrets: tuple[str | None, ...] = (), in_stream: bool = False) -> NoReturn:
    """The error a vendor's error body means: after an HTTP error status, or sent inside a 200 stream
    (``in_stream``; ``status`` is then the body's own code if it has one, else 200 and its code decides)."""
    message, code = error_message(body)
    where = "stream error" if in_stream else f"returned HTTP {status}"
    text = errors.redact(f"{provider} {where}: {message}", *secrets)
    if status == 400 and _google_detail(body, "ErrorInfo", "reason") in _BAD_KEY_REASONS:
        raise errors.AuthenticationError(text, code="invalid_api_key", provider=provider, model=model)
    raise_mapped(status, text, code, headers, provider=provider, model=model, body=body)


def raise_mapped(status: int, text: str, code: str | None, headers: Mapping[str, str] | None, *,
                 provider: str, model: str | None, body: bytes = b"") -> NoReturn:
    """Map by HTTP status first; the vendor's error code decides only where the status does not
    (errors sent inside a 200 stream, or a 400 that means "context too long" or "content filtered")."""
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
        raise errors.RateLimitedError(text, retry_after=retry_after(headers or {}, body), **kw)
    if status in {400, 413, 422}:
        if "context_length" in code_l or _CONTEXT_WORDS.search(text):
            raise errors.ContextTooLongError(text, **kw)
        if any(filter_code in code_l for filter_code in _FILTER_CODES):
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


def transport_error(exc: BaseException, *, provider: str, model: str | None) -> errors.PodiumError:
    """A failure below HTTP status: the connection, the clock or the bytes."""
    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return errors.TimeoutError(f"{provider} did not answer in time ({type(exc).__name__})", **kw)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return errors.ProviderUnavailableError(f"cannot connect to {provider}: {exc.os_error or exc}", **kw)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return errors.ProviderUnavailableError(f"{provider} closed the connection mid-response: "
                                               f"{type(exc).__name__}", **kw)
    return errors.ProviderError(f"{provider}: {type(exc).__name__}: {exc}", **kw)


_JSON_HEADERS = {"content-type": "application/json"}


def parse_json(body: bytes | str, *, provider: str, model: str | None) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.ProviderError(f"{provider} sent malformed JSON: {body[:200]!r}", provider=provider,
                                   model=model) from None
