"""The dashboard over HTTP: static pages and the JSON endpoints they read.

    GET /dashboard/                 the overview page (and /dashboard/models, /task-types, /routing,
                                    /keys, /requests: the same page shell, each its own page)
    GET /dashboard/static/…         the pages' one script and one stylesheet (package data)
    GET /dashboard/api/session      who is asking and what the dashboard reads (the pages' first call)
    GET /dashboard/api/overview     GET /dashboard/api/models      GET /dashboard/api/task-types
    GET /dashboard/api/routing      GET /dashboard/api/keys
    GET /dashboard/api/requests     search (id, user, tag, key, team, model, task type, status; newest first,
                                    paged by the last row shown: ``before`` its start, ``before_id`` its id)
    GET /dashboard/api/requests/{id}    one request: ledger row, calls, trace tree, feedback

Every endpoint takes the range (``?range=24h`` or ``?from=…&to=…``, see ``ranges``) and answers JSON;
the pages themselves hold no data and need no key. The endpoints need one (``authorize``: in the
gateway, the admin key or a virtual key whose scope lists ``dashboard``). A bad parameter is a 400
naming it, a missing key 401, a key without the scope 403; nothing a client sends becomes a 500.

Answers are kept for ``CACHE_SECONDS`` per (endpoint, query): many tabs refreshing the same page cost
the ledger one query, and the queries run on the reader's own threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from podium.catalogue import ModelInfo
from podium.dashboard import charts, views
from podium.dashboard.queries import Search
from podium.dashboard.ranges import parse_span
from podium.dashboard.reader import LedgerReader
from podium.errors import BadRequestError, NotFoundError, PodiumError

log = logging.getLogger("podium.dashboard")
PAGES = {"": "Overview", "models": "Models & deployments", "task-types": "Task types", "routing": "Routing",
         "keys": "Keys & teams", "requests": "Request explorer"}
CACHE_SECONDS = 2.0
CACHE_ENTRIES = 256
MAX_PARAM = 200
MAX_LIMIT = 200
SCOPE = "dashboard"
STATUSES = ("ok", "error", "cancelled", "running")  # a ledger row's status ('running': not finished yet)
RANGE_PARAMS = frozenset({"range", "from", "to"})
SEARCH_PARAMS = RANGE_PARAMS | {"id", "user", "tag", "key", "team", "model", "task_type", "status", "before",
                                "before_id", "limit"}
_DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")


class Live(Protocol):
    """What only a running gateway knows (none of it is in the ledger)."""

    def circuits(self) -> list[dict[str, Any]]: ...

    def refusals(self) -> dict[str, float]: ...


class KeySource(Protocol):
    """The keys' public fields (id, name, budget, budget_period, rpm, tpm, team, revoked) and the teams'
    budgets and limits: the gateway's key store and config, or a keys file beside a ledger."""

    async def keys(self) -> list[dict[str, Any]]: ...

    def teams(self) -> dict[str, dict[str, Any]]: ...


Authorize = Callable[[Request], Awaitable[str]]


def bearer(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


async def open_access(request: Request) -> str:
    return "local"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def _error(exc: PodiumError) -> Response:
    return _json({"error": {"message": exc.message, "type": exc.error_type, "code": exc.code}}, exc.status)


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None or value.strip() == "":
        return None
    if len(value) > MAX_PARAM or any(ord(c) < 32 for c in value):
        raise BadRequestError(f"'{name}' must be at most {MAX_PARAM} printable characters")
    return value.strip()


def whole_number(params: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    """An integer parameter, ASCII digits only: ``str.isdigit`` and ``int`` also take '²' (which ``int``
    then refuses: a 500) and '٣' (which it reads as 3)."""
    text = params.get(name)
    if text is None or text == "":
        return default
    if re.fullmatch(r"[0-9]{1,6}", text) is None or not low <= int(text) <= high:
        raise BadRequestError(f"'{name}' must be a whole number from {low} to {high}")
    return int(text)


def epoch_seconds(text: str, name: str) -> float:
    """A time parameter: plain ASCII decimal seconds (``float`` would also take '٣', '1_0', 'inf', '1e308')."""
    if _DECIMAL.fullmatch(text) is None:
        raise BadRequestError(f"'{name}' must be a time in epoch seconds")
    value = float(text)
    assert math.isfinite(value)
    return value


def check_params(params: QueryParams, allowed: frozenset[str]) -> None:
    """Only the parameters an endpoint reads, each once: anything else is a 400 naming it, so a client
    cannot vary the cache's key (and force a full scan per request) with parameters nobody reads."""
    unknown = sorted({name for name in params if name not in allowed})
    if unknown:
        shown = ", ".join(f"'{name[:40]}'" for name in unknown[:5])
        raise BadRequestError(f"unknown parameter {shown} (this endpoint takes: {', '.join(sorted(allowed))})")
    repeated = sorted({name for name in params if len(params.getlist(name)) > 1})
    if repeated:
        raise BadRequestError(f"parameter '{repeated[0]}' given more than once")


def shown_ledger(reader: LedgerReader) -> str:
    """The ledger as the page's footer names it: a SQLite file by its name alone (its directory is the
    server's business, not that of whoever holds a dashboard key); PostgreSQL by host:port, never the user."""
    path = getattr(reader, "path", None)
    return f"SQLite {path.name}" if path is not None and hasattr(path, "name") else reader.describe()


def search_of(params: Mapping[str, str]) -> Search:
    """The explorer's search from a query string, every field checked."""
    limit = whole_number(params, "limit", 1, MAX_LIMIT, 50)
    before = epoch_seconds(params["before"], "before") if params.get("before") else None
    status = _text(params, "status")
    if status is not None and status not in STATUSES:
        raise BadRequestError(f"'status' must be one of: {', '.join(STATUSES)}")
    before_id = _text(params, "before_id")
    if before_id is not None and before is None:
        raise BadRequestError("'before_id' goes with 'before' (the last request shown: its start time and id)")
    request_id = _text(params, "id")
    if request_id is not None:  # the ids clients see: chatcmpl-…, msg_…, resp_… around the ledger's own
        request_id = request_id.removeprefix("chatcmpl-").removeprefix("msg_").removeprefix("resp_")
    return Search(request_id=request_id, user=_text(params, "user"), tag=_text(params, "tag"),
                  key_id=_text(params, "key"), team=_text(params, "team"), model=_text(params, "model"),
                  task_type=_text(params, "task_type"), status=status, before=before,
                  before_id=before_id, limit=limit)


async def overview_data(reader: LedgerReader, ask: views.Ask) -> dict[str, Any]:
    """The overview's numbers: the requests' and the calls' scans on the reader's two threads at once."""
    buckets = await reader.read(lambda run, schema: views.overview_buckets(run, schema, ask))
    requests, tokens, feedback = await asyncio.gather(
        reader.read(lambda run, schema: views.overview_requests(run, schema, ask, buckets)),
        reader.read(lambda run, schema: views.overview_tokens(run, schema, ask, buckets)),
        reader.read(lambda run, schema: views.overview_feedback(run, schema, ask)))
    return views.overview_combine(ask, buckets, requests, tokens, feedback)


async def models_data(reader: LedgerReader, ask: views.Ask, circuits: Sequence[dict[str, Any]] = ()
                      ) -> dict[str, Any]:
    """The models page's numbers: its two halves on the reader's two threads at once."""
    totals, timing = await asyncio.gather(
        reader.read(lambda run, schema: views.models_totals(run, schema, ask)),
        reader.read(lambda run, schema: views.models_latency(run, schema, ask)))
    return views.models_combine(ask, totals, timing, circuits)


@dataclass
class Dashboard:
    reader: LedgerReader | None
    baseline: ModelInfo | None
    authorize: Authorize = open_access
    live: Live | None = None
    key_source: KeySource | None = None
    mode: str = "ledger"  # "gateway": inside podium serve; "ledger": podium dashboard
    refresh_seconds: int = 30
    clock: Callable[[], float] = time.time
    _cache: OrderedDict[str, tuple[float, bytes, int]] = field(default_factory=OrderedDict)
    # what every route of the host goes through (in the gateway: its request id and one log line per
    # request, so a 401 or 403 here is in the request log like any other refusal); None: as it is
    around: Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]] | None = None

    # --- pages ------------------------------------------------------------------------------------
    def _shell(self, page: str) -> str:
        template = resources.files("podium.dashboard").joinpath("static/page.html").read_text(encoding="utf-8")
        current = ' aria-current="page"'
        nav = "".join(f'<li><a href="/dashboard/{slug}"{current if slug == page else ""}>{title}</a></li>'
                      for slug, title in PAGES.items())
        return (template.replace("{{page}}", page or "overview").replace("{{title}}", PAGES[page])
                .replace("{{nav}}", nav).replace("{{refresh}}", str(self.refresh_seconds)))

    def page(self, slug: str) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            return Response(self._shell(slug), media_type="text/html; charset=utf-8",
                            headers={"cache-control": "no-store", "x-content-type-options": "nosniff",
                                     "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                                     "style-src 'self'; script-src 'self'; frame-ancestors 'none'"})

        return serve

    # --- the API ----------------------------------------------------------------------------------
    def endpoint(self, handler: Callable[[Request], Awaitable[Any]], allowed: frozenset[str] = RANGE_PARAMS
                 ) -> Callable[[Request], Awaitable[Response]]:
        """Authorised, parameters checked, cached, and every error a JSON answer with its status (never a
        traceback)."""

        async def run(request: Request) -> Response:
            try:
                await self.authorize(request)
                check_params(request.query_params, allowed)
                key = f"{request.url.path}?{request.url.query}"
                cached = self._cache.get(key)
                now = time.monotonic()
                if cached is not None and now - cached[0] < CACHE_SECONDS:
                    return Response(cached[1], cached[2], media_type="application/json",
                                    headers={"cache-control": "no-store"})
                if self.reader is None:
                    raise BadRequestError("the ledger is disabled (ledger.enabled: false): there is nothing to show",
                                          code="ledger_disabled")
                response = _json(await handler(request))
                self._cache[key] = (now, bytes(response.body), response.status_code)
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
                return response
            except PodiumError as exc:
                return _error(exc)
            except Exception:
                log.exception("dashboard: %s failed", request.url.path)
                return _json({"error": {"message": "internal error; the server's log has the details",
                                        "type": "api_error", "code": "internal_error"}}, 500)

        return run

    def _ask(self, request: Request) -> views.Ask:
        assert self.reader is not None
        now = self.clock()
        return views.Ask(parse_span(request.query_params, now), now, self.reader.dialect, self.baseline)

    async def session(self, request: Request) -> Response:
        """Whether the key presented (if any) may read the dashboard: always a 200, so a page that has no
        key yet asks for one without a failed request in the browser's console."""
        try:
            who = await self.authorize(request)
        except PodiumError as exc:
            return _json({"authorized": False, "reason": exc.message, "status": exc.status, "mode": self.mode})
        return _json({"authorized": True, "who": who, "mode": self.mode,
                      "ledger": shown_ledger(self.reader) if self.reader else None,
                      "refresh_seconds": self.refresh_seconds, "pages": PAGES})

    async def overview(self, request: Request) -> dict[str, Any]:
        ask = self._ask(request)
        assert self.reader is not None
        data = await overview_data(self.reader, ask)
        data["live"] = {"refused": self.live.refusals()} if self.live is not None else None
        data["charts"] = charts.overview(data) if data["series"] else {}
        return data

    async def models(self, request: Request) -> dict[str, Any]:
        ask = self._ask(request)
        circuits = self.live.circuits() if self.live is not None else []
        assert self.reader is not None
        data = await models_data(self.reader, ask, circuits)
        data["charts"] = charts.models(data) if data["deployments"] else {}
        return data

    async def task_types(self, request: Request) -> dict[str, Any]:
        ask = self._ask(request)
        assert self.reader is not None
        data = await self.reader.read(lambda run, schema: views.task_types(run, schema, ask))
        data["charts"] = charts.task_types(data) if data["by_task_type"] else {}
        return data

    async def routing(self, request: Request) -> dict[str, Any]:
        ask = self._ask(request)
        assert self.reader is not None
        return await self.reader.read(lambda run, schema: views.routing(run, schema, ask))

    async def keys(self, request: Request) -> dict[str, Any]:
        ask = self._ask(request)
        source = self.key_source
        known: Sequence[dict[str, Any]] = await source.keys() if source is not None else []
        teams = source.teams() if source is not None else None
        assert self.reader is not None
        data = await self.reader.read(lambda run, schema: views.keys(run, schema, ask, known, teams))
        data["charts"] = charts.keys(data) if data["keys"] else {}
        return data

    async def requests(self, request: Request) -> dict[str, Any]:
        ask = self._ask(request)
        wanted = search_of(request.query_params)
        assert self.reader is not None
        return await self.reader.read(lambda run, schema: views.search(run, schema, ask, wanted))

    async def request(self, request: Request) -> dict[str, Any]:
        request_id = str(request.path_params["request_id"])
        if len(request_id) > MAX_PARAM:
            raise BadRequestError(f"a request id has at most {MAX_PARAM} characters")
        request_id = request_id.removeprefix("chatcmpl-").removeprefix("msg_").removeprefix("resp_")
        ask = self._ask(request)
        assert self.reader is not None
        found = await self.reader.read(lambda run, schema: views.request_detail(run, schema, ask, request_id))
        if found is None:
            raise NotFoundError(f"no request '{request_id[:100]}' in the ledger", code="request_not_found")
        return found

    def routes(self) -> list[BaseRoute]:
        async def home(request: Request) -> Response:
            return RedirectResponse("/dashboard/", 308)

        pages: list[BaseRoute] = [Route("/dashboard", home, methods=["GET"])]
        pages += [Route(f"/dashboard/{slug}", self.page(slug), methods=["GET"]) for slug in PAGES]
        wrap = self.around or (lambda handler: handler)
        api = {"overview": self.overview, "models": self.models, "task-types": self.task_types,
               "routing": self.routing, "keys": self.keys, "requests": self.requests}
        pages += [Route(f"/dashboard/api/{name}", wrap(self.endpoint(handler, SEARCH_PARAMS if name == "requests"
                                                                      else RANGE_PARAMS)), methods=["GET"])
                  for name, handler in api.items()]
        pages += [Route("/dashboard/api/session", wrap(self.session), methods=["GET"]),
                  Route("/dashboard/api/requests/{request_id:path}", wrap(self.endpoint(self.request)),
                        methods=["GET"]),
                  Mount("/dashboard/static", StaticFiles(packages=[("podium.dashboard", "static")]))]
        return pages

    async def aclose(self) -> None:
        if self.reader is not None:
            await self.reader.aclose()
