"""The one call skeleton every remote wire shares, so that a wire is its translation module plus a few lines.

What is the same on every vendor's HTTP API lives here once, written once and tested once:

- the time limits: connect and per-read timeouts on the client, ``total_timeout`` (``Deadline``) over a
  whole answer and between the chunks of a stream, which a slow drip never trips per read;
- the failures: transport errors, an HTTP error status, an error object sent inside a 200 stream, a body
  that is not JSON or not the object the wire answers with — each mapped onto ``podium.errors``
  (``providers.http``), with the key redacted from every message;
- the stream: opening it, its framing (server-sent events or one JSON object per line), the wire's end
  marker (a stream that stops without it was cut off and is an error, never a short answer), and closing
  the connection when the caller stops reading early;
- content filtering as the vendors signal it in their answers (``finish_reason == "content_filter"``, which
  the wire modules derive from OpenAI's finish reason, Anthropic's ``refusal`` stop reason and Gemini's
  SAFETY-like finish reasons): a whole answer every choice of which was filtered, or a stream filtered
  before it said anything, is a ``ContentFilteredError``, so the resilience layer can ask another
  provider; a stream that already said something ends with that finish reason instead.

A wire module only translates: a request body out, a JSON object (or one stream event's) in. Its stream
translation is a ``Decoder``: events in, chunks out, and ``done`` once the wire's own end sign arrived
(``Chunks`` makes one from a function that turns an event into at most one chunk). ``RemoteProvider``
gives a provider class what is the same for all of them: the check of its config (``check_spec``), its
``health`` (the model listing answers) and ``aclose``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from podium.config import ProviderSpec
from podium.errors import ConfigError, ContentFilteredError, ProviderError
from podium.providers.base import Health
from podium.providers.http import (
    TRANSPORT_ERRORS,
    Deadline,
    get_json,
    listing_health,
    make_client,
    parse_json,
    raise_error_body,
    raise_for_status,
    sse_events,
    transport_error,
)
from podium.types import ChatResponse, StreamChunk

Framing = Literal["sse", "ndjson"]


class Decoder(Protocol):
    """A wire's stream translation: one event's JSON in, the chunks it means out (often none or one)."""

    done: bool  # the wire's own end-of-stream sign has arrived

    def feed(self, event: str, data: Any) -> Sequence[StreamChunk]: ...


class Chunks:
    """A ``Decoder`` over a function that makes at most one chunk of an event; the stream's end is a payload
    the skeleton recognises (``done_marker``), so ``done`` stays False here."""

    done = False

    def __init__(self, parse: Callable[[Any], StreamChunk | None]) -> None:
        self.parse = parse

    def feed(self, event: str, data: Any) -> Sequence[StreamChunk]:
        chunk = self.parse(data)
        return (chunk,) if chunk is not None else ()


def check_spec(spec: ProviderSpec, noun: str, options: Sequence[str] = ()) -> str:
    """The base URL of a provider's config, after checking it has one and no option it does not know."""
    if not spec.base_url:
        raise ConfigError(f"{noun} needs a base_url", key_path=f"providers.{spec.name}")
    unknown = sorted(set(spec.options) - set(options))
    if unknown:
        expected = f"expected one of: {', '.join(sorted(options))}" if options else f"{noun} takes no options"
        raise ConfigError(f"unknown key ({expected})", key_path=f"providers.{spec.name}.options.{unknown[0]}")
    return spec.base_url


async def _ndjson(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """One JSON object per line (Ollama), in the shape ``sse_events`` yields."""
    async for line in lines:
        if line.strip():
            yield "", line


def _stream_error(event: str, data: Any) -> bool:
    """Whether a stream event is the vendor's error object sent after a 200 (every wire's shape has an
    ``error`` key there and nowhere else; Anthropic also names the event ``error``)."""
    return event == "error" or (isinstance(data, dict) and "error" in data)


def _error_status(data: Any) -> int:
    """The HTTP status an in-stream error names (Gemini's ``error.code``), else 200: its code then decides."""
    err = data.get("error") if isinstance(data, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        return int(code) if int(code) >= 400 else 200
    return 200


def refuse_filtered(response: ChatResponse, provider: str) -> ChatResponse:
    """A whole answer whose every choice the vendor's content filter stopped is an error: the caller (or
    the fallback to another provider) gets a reason, not an empty or cut-off text that looks like an answer."""
    if response.finish_reason == "content_filter" and all(
            choice.finish_reason == "content_filter" for choice in response.more_choices):
        raise ContentFilteredError(f"{provider} stopped the answer: its content filter blocked it "
                                   f"(finish_reason 'content_filter')", provider=provider, model=response.model)
    return response


class Endpoint:
    """One provider's HTTP endpoint: its pooled client, name, key (for redaction) and total time limit."""

    def __init__(self, spec: ProviderSpec, base_url: str, headers: Mapping[str, str]) -> None:
        self.name = spec.name
        self.total = spec.total_timeout
        self.secrets: tuple[str | None, ...] = (spec.api_key,)
        self.client = make_client(spec, headers, base_url)

    async def get(self, path: str, *, params: Mapping[str, str | int] | None = None) -> Any:
        """A JSON document (model listings)."""
        return await get_json(self.client, path, provider=self.name, secrets=self.secrets, params=params)

    async def post(self, path: str, body: Any, model: str, *, expect: Callable[[Any], bool] | None = None,
                   answered: str = "something else", params: Mapping[str, str | int] | None = None) -> Any:
        """POST ``body`` within the deadline and return the JSON answered; ``expect`` says whether it is
        the object the wire answers with (else a ``ProviderError`` quoting it, "answered ``answered``")."""
        try:
            async with Deadline(self.total, self.name, model).within():
                reply = await self.client.request("POST", path, body=body, params=params)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=model) from None
        raise_for_status(reply.status, reply.headers, reply.body, provider=self.name, model=model,
                         secrets=self.secrets)
        data = parse_json(reply.body, provider=self.name, model=model)
        if expect is not None and not expect(data):
            raise ProviderError(f"{self.name} answered {answered}: {reply.body[:200]!r}", provider=self.name,
                                model=model)
        return data

    async def post_list(self, path: str, body: Any, model: str, key: str) -> dict[str, Any]:
        """POST ``body`` and return the JSON object answered, which must hold a list under ``key`` (embeddings)."""
        data: dict[str, Any] = await self.post(path, body, model, answered=f"without '{key}'",
                                               expect=lambda data: isinstance(data, dict)
                                               and isinstance(data.get(key), list))
        return data

    async def complete(self, path: str, body: Any, model: str, parse: Callable[[dict[str, Any]], ChatResponse], *,
                       expect: Callable[[dict[str, Any]], bool] = lambda data: True,
                       answered: str = "something else",
                       params: Mapping[str, str | int] | None = None) -> ChatResponse:
        """One whole answer: POST, check, parse with the wire's ``parse``, refuse a filtered answer."""
        data = await self.post(path, body, model, params=params, answered=answered,
                               expect=lambda data: isinstance(data, dict) and expect(data))
        return refuse_filtered(parse(data), self.name)

    async def stream(self, path: str, body: Callable[[], Any], model: str, decoder: Decoder, *, end: str,
                     framing: Framing = "sse", done_marker: str | None = None,
                     params: Mapping[str, str | int] | None = None) -> AsyncIterator[StreamChunk]:
        """The chunks of one streamed answer. ``body`` is built when the stream is first read (as any
        generator's work is); ``end`` names the wire's end sign in the truncation error; ``done_marker``
        is a payload that is that sign itself rather than JSON (OpenAI's ``[DONE]``)."""
        deadline = Deadline(self.total, self.name, model)
        said = False
        try:
            async with self.client.stream("POST", path, body=body(), params=params) as response:
                if response.status >= 400:
                    raise_for_status(response.status, response.headers, await response.read(), provider=self.name,
                                     model=model, secrets=self.secrets)
                events = sse_events(response.lines()) if framing == "sse" else _ndjson(response.lines())
                done = False
                async for event, payload in events:
                    deadline.check()
                    if payload == done_marker:
                        done = True
                        break
                    data = parse_json(payload, provider=self.name, model=model)
                    if _stream_error(event, data):
                        raise_error_body(_error_status(data), {}, payload.encode(), provider=self.name, model=model,
                                         secrets=self.secrets, in_stream=True)
                    for chunk in decoder.feed(event, data):
                        if chunk.finish_reason == "content_filter" and not said:
                            raise ContentFilteredError(f"{self.name} stopped the answer before any of it: its "
                                                       f"content filter blocked it", provider=self.name, model=model)
                        said = said or bool(chunk.text or chunk.tool_calls)
                        yield chunk
                    if decoder.done:
                        done = True
                        break
            if not done:
                raise ProviderError(f"{self.name} ended the stream without {end} (truncated)", provider=self.name,
                                    model=model)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=model) from None

    async def aclose(self) -> None:
        await self.client.aclose()


class RemoteProvider:
    """What every remote provider does the same way; a subclass sets ``name`` and ``_http`` and lists models."""

    name: str
    _http: Endpoint
    _listed = "models listed"  # the health detail's noun

    async def list_models(self) -> list[str]:
        raise NotImplementedError

    async def health(self) -> Health:
        """Healthy when the model listing answers: free, fast, and it needs a valid key."""
        return await listing_health(self.list_models, self._listed)

    async def aclose(self) -> None:
        await self._http.aclose()
