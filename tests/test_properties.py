"""Issue 10's promises as properties, checked on generated worlds (Hypothesis).

A world is a config (scripted providers in the regions us, eu, ch and local; models on them with
random prices and windows; extra deployments of a model on another provider, with or without a
``region`` of their own; configured fallbacks and the emergency table; named strategies of every
type whose members are models or other strategies), a key (scope, budget, team budget), requests
(a model, a named or inline strategy, or auto; sensitivity; preset; max_tokens; stream; sent one
after another or all at once; some abandoned, cancelled or disconnected part-way) and a failure
schedule per deployment (errors, latency, streams cut after k chunks).

Each world runs through the library (``Podium.chat`` / ``Podium.stream`` with a policy from
``podium.policies.build``) and through the gateway in-process (raw ASGI, so a client can go away
mid-stream as it does under uvicorn), and every example checks:

- scope: every model a scripted provider was called for is in the key's scope;
- regions: no confidential (or privacy-first) request reaches a deployment outside eu/ch/local;
- budget: spent <= budget + the largest single call's worst case, for the key and its team; and what
  the counters say was spent equals what the ledger's calls cost (every hold was released);
- a key whose calls all failed has spent $0, and the key can still send (a later request to a
  healthy model that fits what is left of its budget is answered);
- every answer has exactly one ledger row under its request id, status ok;
- no 500, and a 5xx only with an upstream failure in the schedule to explain it (502/503/504).

The example counts are small by default (the file runs in about a minute);
``PODIUM_PROPERTY_EXAMPLES=2000`` runs that many examples per property.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from podium import errors
from podium.catalogue import ModelInfo, worst_input_tokens
from podium.client import Podium
from podium.config import load_settings
from podium.policy import BudgetSlot, worst_output_tokens
from podium.providers.scripted import ScriptedProvider, Step
from podium.server.app import create_app
from podium.server.keys import KeyStore
from podium.server.state import MemoryState
from podium.types import ChatRequest, Message

EXAMPLES = int(os.environ.get("PODIUM_PROPERTY_EXAMPLES", "0") or 0)
LIBRARY_EXAMPLES = EXAMPLES or 500
GATEWAY_EXAMPLES = EXAMPLES or 350

PROVIDERS = {"pus": "us", "peu": "eu", "pch": "ch", "ploc": "local"}
REGIONS = sorted(set(PROVIDERS.values()))
SAFE = frozenset({"eu", "ch", "local"})  # where confidential (and privacy-first) data may go
KINDS = ("single", "cascade", "vote", "consensus", "debate", "mixture", "pipeline")
ERRORS: dict[str, Callable[[], errors.PodiumError]] = {
    "unavailable": lambda: errors.ProviderUnavailableError("scripted: down"),
    "rate_limited": lambda: errors.RateLimitedError("scripted: slow down", retry_after=0.0),
    "timeout": lambda: errors.TimeoutError("scripted: no answer in time"),
    "context": lambda: errors.ContextTooLongError("scripted: too long"),
    "filtered": lambda: errors.ContentFilteredError("scripted: refused"),
    "auth": lambda: errors.AuthenticationError("scripted: bad upstream key"),
}
# The 5xx a client may see when every route failed, by the upstream failures that explain it: the error's
# own status, or 503 once failures opened every circuit.
UPSTREAM_STATUS = {"unavailable": {503}, "timeout": {503, 504}, "rate_limited": {503}, "auth": {502, 503}}
PLAN = '{"subtasks": [{"id": "s1", "tier": "fast", "instructions": "answer"}]}'
TEXTS = ["Paris", "Paris is the capital of France.", "42", "yes", "A", PLAN, "APPROVED", "one two three four five"]
LEDGER = "ledger.sqlite3"
ADMIN = "admin-0123456789abcdef"


# --- the world ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepSpec:
    """One scripted answer: text, or an error (before the first chunk, or after ``after`` chunks)."""

    text: str = "Paris"
    error: str | None = None
    after: int | None = None  # a stream fails after this many chunks
    latency: float = 0.0
    chunk_latency: float = 0.0
    output_tokens: int | None = None

    def step(self, request: ChatRequest) -> Step:
        error = ERRORS[self.error]() if self.error else None
        words = self.text.split(" ")
        chunks = [w + " " for w in words[:-1]] + [words[-1]]
        out = self.output_tokens if self.output_tokens is not None else math.ceil(len(self.text) / 4)
        if request.max_tokens is not None:  # a provider never bills more output than it was allowed
            out = min(out, request.max_tokens * request.n)
        return Step(text=self.text, error=error, latency=self.latency, output_tokens=out, chunks=chunks,
                    chunk_latency=self.chunk_latency, fail_after_chunks=self.after if error is not None else None)


@dataclass(frozen=True)
class Req:
    model: str | None
    sensitivity: str = "public"
    preset: str | None = None
    max_tokens: int | None = None
    stream: bool = False
    prompt: str = "What is the capital of France?"
    leave_after: float | None = None  # the caller goes away after this many seconds (cancel / disconnect)
    abandon_after: int | None = None  # the library caller stops reading a stream after this many chunks
    tag: str = "r0"  # metadata.user: which request a provider call belongs to

    @property
    def restricted(self) -> bool:
        return self.sensitivity == "confidential" or self.preset == "privacy-first"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model or "auto", "messages": [{"role": "user", "content": self.prompt}],
                                "stream": self.stream, "user": self.tag}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        meta = {"sensitivity": self.sensitivity}
        if self.preset:
            meta["preset"] = self.preset
        body["metadata"] = meta
        return body

    def chat_request(self) -> ChatRequest:
        return ChatRequest(messages=[Message.user(self.prompt)], model=self.model, max_tokens=self.max_tokens,
                           stream=self.stream, metadata={"sensitivity": self.sensitivity, "preset": self.preset,
                                                         "user": self.tag})


@dataclass
class World:
    config: dict[str, Any]
    models: dict[str, dict[str, Any]]  # name -> catalogue row (model_id == name)
    deployments: dict[str, list[dict[str, Any]]]
    strategies: dict[str, dict[str, Any]]
    key_models: list[str] | None
    key_budget: float | None
    team_budget: float | None
    requests: list[Req]
    schedule: dict[tuple[str, str], list[StepSpec]]  # (provider, model) -> steps, the last one repeats
    concurrent: bool = False

    def where(self, model: str, provider: str) -> str:
        """The region a call to ``model`` on ``provider`` runs in: the deployment's own region, else its
        provider's when that is not the model's own provider, else the model's (the documented rule)."""
        row = self.models[model]
        for dep in self.deployments.get(model, []):
            if dep["provider"] == provider:
                if dep.get("region"):
                    return str(dep["region"])
                return PROVIDERS[provider] if provider != row["provider"] else str(row["region"])
        return str(row["region"])

    def faults(self) -> set[str]:
        return {s.error for steps in self.schedule.values() for s in steps if s.error}

    def explained_5xx(self) -> set[int]:
        allowed: set[int] = set()
        for fault in self.faults():
            allowed |= UPSTREAM_STATUS.get(fault, set())
        if self.config["resilience"].get("attempt_timeout") or self.config["resilience"].get("deadline"):
            allowed |= {503, 504}  # slow steps time out
        return allowed


def own_reach(world: World) -> set[str] | None:
    """The scope oracle, written from the docs: the listed models plus everything a listed strategy names,
    recursively; a pipeline or a vote without members picks at run time (None: any); 'auto' adds nothing."""
    if world.key_models is None:
        return None
    found: set[str] = set()

    def walk(name: str, seen: frozenset[str]) -> bool:
        if name in world.models:
            found.add(name)
            return True
        if name in seen:
            return True
        if name in world.strategies:
            cfg = world.strategies[name]
            if cfg["type"] == "pipeline" or (cfg["type"] == "vote" and not cfg.get("models")):
                return False
            refs = list(cfg.get("models", [])) + [cfg[k] for k in ("verifier", "synthesizer", "aggregator",
                                                                    "conductor") if cfg.get(k)]
        elif ":" in name:
            kind, _, rest = name.partition(":")
            refs = [part.partition("*")[0].strip() for part in rest.split(",") if part.strip()]
            if kind in {"pipeline", "fast-vote"}:
                return False
        else:
            return True
        return all(walk(ref, seen | {name}) for ref in refs)

    for entry in world.key_models:
        if entry != "auto" and not walk(entry, frozenset()):
            return None
    return found if found else None


# --- generating worlds ---------------------------------------------------------------------------------
PRICES = st.sampled_from([0.0, 0.1, 1.0, 2.5, 10.0, 60.0, 150.0])
BUDGETS = st.sampled_from([0.0, 2e-6, 5e-5, 1e-3, 0.01, 0.05, 0.2, 10.0, 10.0])


@st.composite
def steps(draw: st.DrawFn, slow: bool) -> list[StepSpec]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["ok", "ok", "ok", "error", "error", "cut", "slow"]))
        text = draw(st.sampled_from(TEXTS))
        tokens = draw(st.none() | st.integers(0, 3000))
        if kind == "ok":
            out.append(StepSpec(text=text, output_tokens=tokens))
        elif kind == "error":
            out.append(StepSpec(text=text, error=draw(st.sampled_from(sorted(ERRORS)))))
        elif kind == "cut":
            out.append(StepSpec(text="one two three four five", error=draw(st.sampled_from(sorted(ERRORS))),
                                after=draw(st.integers(0, 4)), output_tokens=tokens,
                                chunk_latency=0.002 if slow else 0.0))
        else:
            out.append(StepSpec(text=text, latency=0.03 if slow else 0.0, chunk_latency=0.003 if slow else 0.0,
                                output_tokens=tokens))
    return out


@st.composite
def worlds(draw: st.DrawFn, concurrency: bool = True, requests: tuple[int, int] = (1, 5)) -> World:
    names = [f"m{i}" for i in range(draw(st.integers(2, 5)))]
    providers = sorted(PROVIDERS)
    models: dict[str, dict[str, Any]] = {}
    for name in names:
        provider = draw(st.sampled_from(providers))
        region = PROVIDERS[provider] if draw(st.booleans()) else draw(st.sampled_from(REGIONS))
        row: dict[str, Any] = {
            "provider": provider, "model_id": name,
            "context_window": draw(st.sampled_from([64, 1000, 8000, 200_000, 200_000, 200_000])),
            "input_price": draw(PRICES), "output_price": draw(PRICES), "region": region,
            "tier": draw(st.sampled_from(["fast", "standard", "advanced"])),
            "capabilities": ["chat", *draw(st.lists(st.sampled_from(["code", "planning"]), unique=True))]}
        if draw(st.booleans()):
            row["max_output_tokens"] = draw(st.integers(1, 4000))
        models[name] = row
    deployments: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        if draw(st.integers(0, 2)) == 0:
            deps = []
            for provider in draw(st.lists(st.sampled_from(providers), min_size=1, max_size=3, unique=True)):
                dep: dict[str, Any] = {"provider": provider}
                if draw(st.booleans()):
                    dep["region"] = draw(st.sampled_from(REGIONS))
                deps.append(dep)
            deployments[name] = deps
    on_kinds = ["rate_limited", "unavailable", "timeout", "context_too_long", "content_filtered", "auth"]
    fallbacks = [{"model": draw(st.sampled_from([*names, "*"])),
                  "to": draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)),
                  **({"on": draw(st.lists(st.sampled_from(on_kinds), min_size=1, unique=True))}
                     if draw(st.booleans()) else {})}
                 for _ in range(draw(st.integers(0, 2)))]
    emergency = [{"provider": draw(st.sampled_from([*providers, "*"])),
                  "to": draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))}
                 for _ in range(draw(st.integers(0, 1)))]
    slow = draw(st.booleans())
    strategies: dict[str, dict[str, Any]] = {}
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(KINDS))
        pool = names + list(strategies)  # a strategy may name the ones before it: nesting without cycles
        cfg: dict[str, Any] = {"type": kind, "models": draw(st.lists(st.sampled_from(pool), max_size=3,
                                                                    min_size=2 if kind == "mixture" else 1))}
        if kind == "vote" and draw(st.integers(0, 4)) == 0:
            cfg["models"] = []  # picks fast models at run time
        if kind == "pipeline":
            cfg = {"type": kind, "max_subtasks": 1, "max_revisions": draw(st.integers(0, 1)),
                   "review": draw(st.booleans())}
            if draw(st.booleans()):
                cfg["conductor"] = draw(st.sampled_from(names))
        if kind == "cascade":
            cfg["accept"] = draw(st.sampled_from(["confidence", "agreement", "verifier", "always"]))
            if cfg["accept"] == "verifier":
                cfg["verifier"] = draw(st.sampled_from(names))
        if kind in {"consensus", "debate"} and draw(st.booleans()):
            cfg["synthesizer"] = draw(st.sampled_from(pool))
        if kind == "debate":
            cfg["rounds"] = draw(st.integers(1, 2))
        if kind == "mixture" and draw(st.booleans()):
            cfg["aggregator"] = draw(st.sampled_from(names))
        if kind in {"consensus", "vote"} and slow and draw(st.booleans()):
            cfg["timeout"] = 0.02  # members cancelled part-way
        if draw(st.integers(0, 3)) == 0:
            cfg["budget"] = draw(st.sampled_from([1e-6, 1e-4, 0.01]))
            cfg["on_budget_exhausted"] = draw(st.sampled_from(["best", "fail"]))
        strategies[f"s{i}"] = cfg
    resilience: dict[str, Any] = {
        "retries": {"max_attempts": draw(st.integers(1, 3)), "base_delay": 0.0, "max_delay": 0.0,
                    "max_retry_after": 0.0},
        "breaker": {"failures": draw(st.sampled_from([1, 3, 1000]))},
        "fallbacks": fallbacks, "emergency": emergency,
        "context_fallback": draw(st.booleans()), "filter_fallback": draw(st.booleans())}
    if slow:
        resilience["attempt_timeout"] = 0.01
        if draw(st.booleans()):
            resilience["deadline"] = 0.05
    config: dict[str, Any] = {
        "providers": {**{p: {"kind": "scripted", "region": r, "options": {"default": "Paris"}}
                         for p, r in PROVIDERS.items()}, "local": {"enabled": False}},
        "models": models, "deployments": deployments, "strategies": strategies,
        "routing": {"max_calls_per_request": draw(st.sampled_from([3, 8, 32]))},
        "resilience": resilience,
        "gateway": {"cache": {"enabled": draw(st.booleans())}},
    }
    if draw(st.booleans()):
        config["routing"]["default"] = draw(st.sampled_from(names))
    schedule = {}
    for name in names:
        for provider in (d["provider"] for d in deployments.get(name, [{"provider": models[name]["provider"]}])):
            if draw(st.booleans()):
                schedule[(provider, name)] = draw(steps(slow))
    key_models = None if draw(st.booleans()) else draw(st.lists(st.sampled_from([*names, *strategies, "auto"]),
                                                                  min_size=1, max_size=4, unique=True))

    def inline() -> str:
        kind = draw(st.sampled_from(["consensus", "vote", "cascade", "mixture", "debate", "single"]))
        members = draw(st.lists(st.sampled_from([*names, *strategies]), min_size=2 if kind == "mixture" else 1,
                                max_size=3))
        if kind == "vote" and draw(st.booleans()):
            return f"vote:{members[0]}*{draw(st.integers(1, 5))}"
        return f"{kind}:{','.join(members)}"

    asks = []
    for i in range(draw(st.integers(*requests))):
        choice = draw(st.integers(0, 11))
        if choice <= 2:
            model: str | None = draw(st.sampled_from(names))
        elif choice <= 4 and strategies:
            model = draw(st.sampled_from(sorted(strategies)))
        elif choice <= 6:
            model = inline()
        elif choice <= 10 and key_models:  # what the key may ask for, most of the time
            model = draw(st.sampled_from(key_models))
        else:
            model = None
        stream = draw(st.booleans())
        leave = draw(st.sampled_from([None, None, None, None, 0.0, 0.005, 0.02])) if slow else None
        asks.append(Req(
            model=None if model == "auto" else model,
            sensitivity=draw(st.sampled_from(["public", "internal", "confidential"])),
            preset=draw(st.sampled_from([None, None, "production", "budget", "privacy-first"])),
            max_tokens=draw(st.none() | st.integers(1, 64) | st.sampled_from([500, 3000])), stream=stream,
            prompt=draw(st.sampled_from(["What is the capital of France?", "hi", "Is 91 prime?",
                                         "Design a secure payment system with tests " * 20, "x" * 3000])),
            leave_after=leave, abandon_after=draw(st.none() | st.integers(0, 3)) if stream else None, tag=f"r{i}"))
    return World(config, models, deployments, strategies, key_models, draw(st.none() | BUDGETS),
                 draw(st.none() | BUDGETS.filter(bool)), asks, schedule,
                 concurrent=concurrency and draw(st.booleans()))


# --- running a world ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    req: Req
    status: int  # 200, the error's status, or 499 when the caller went away
    request_id: str | None
    answered: bool  # a whole answer (a stream that ended with [DONE] and no error event)
    error: str = ""
    calls: list[tuple[str, str, ChatRequest]] = field(default_factory=list)  # (provider, model, request)
    ids: str = ""  # what is wrong with the ids the client saw


@dataclass
class Run:
    outcomes: list[Outcome]
    spent: dict[str, float]  # budget slot -> dollars, from the shared counters
    limits: dict[str, float]
    ledger_rows: dict[str, list[tuple[str, float]]]  # request id -> [(status, cost)]
    key_call_cost: float  # what the key's calls cost, by the ledger (before the follow-up)
    follow_up: Outcome | None = None
    catalogue: dict[str, ModelInfo] = field(default_factory=dict)


def write(world: World, directory: Path, **gateway: Any) -> Path:
    config = json.loads(json.dumps(world.config))
    config["ledger"] = {"path": str(directory / LEDGER)}
    teams = {"t": {"budget": world.team_budget, "budget_period": "total"}} if world.team_budget is not None else {}
    config["gateway"] = {**config.get("gateway", {}), "admin_key": ADMIN,
                         "keys_path": str(directory / "keys.sqlite3"), "teams": teams, **gateway}
    path = directory / "podium.yaml"
    path.write_text(json.dumps(config))
    return path


def scripted(podium: Podium) -> dict[str, ScriptedProvider]:
    found = {}
    for name in PROVIDERS:
        provider = podium.registry.get_provider(name)
        assert isinstance(provider, ScriptedProvider)
        found[name] = provider
    return found


def install(world: World, providers: dict[str, ScriptedProvider], healthy: bool = False) -> None:
    """The world's schedule on its providers (``healthy``: every model answers plainly)."""
    for provider in providers.values():
        for model in world.models:
            specs = [StepSpec()] if healthy else world.schedule.get((provider.name, model), [StepSpec()])
            position = {"n": 0}

            def play(request: ChatRequest, specs: list[StepSpec] = specs, position: dict[str, int] = position) -> Step:
                spec = specs[min(position["n"], len(specs) - 1)]
                position["n"] += 1
                return spec.step(request)

            provider.set_script(model, play)


def calls_by_tag(providers: dict[str, ScriptedProvider]) -> dict[str, list[tuple[str, str, ChatRequest]]]:
    found: dict[str, list[tuple[str, str, ChatRequest]]] = {}
    for name, provider in providers.items():
        for model, request in provider.calls:
            found.setdefault(request.metadata.user or "?", []).append((name, model, request))
    return found


def read_ledger(path: Path, key_id: str) -> tuple[dict[str, list[tuple[str, float]]], float]:
    rows: dict[str, list[tuple[str, float]]] = {}
    with sqlite3.connect(path) as conn:
        for request_id, status, cost in conn.execute("SELECT request_id, status, cost FROM requests"):
            rows.setdefault(request_id, []).append((status, cost))
        key_cost = conn.execute("SELECT COALESCE(SUM(c.cost), 0) FROM calls c JOIN requests r USING (request_id) "
                                "WHERE r.key_id = ?", (key_id,)).fetchone()[0]
    return rows, float(key_cost)


def follow_up_model(world: World, podium: Podium, spent: float, limits: dict[str, float]) -> str | None:
    """A model the key names itself whose deployments are all healthy and whose worst case (a short
    prompt, max_tokens 1) fits what is left of every budget; None when there is no such model (or when
    the 10 ms attempt timeout, there to time slow steps out, could also time out a busy machine's answer)."""
    if world.config["resilience"].get("attempt_timeout") or world.config["resilience"].get("deadline"):
        return None
    for name in world.key_models if world.key_models is not None else list(world.models):
        if name not in world.models:
            continue
        info = podium.settings.catalogue.get(name)
        if any(d.breaker.state != "closed" for d in podium.deployments(info)):
            continue
        worst = worst_case(info, ChatRequest(messages=[Message.user("hi")], max_tokens=1))
        if all(worst <= limit - spent - 1e-12 for limit in limits.values()):
            return name
    return None


async def send_all(world: World, send: Callable[[Req], Any]) -> list[Outcome]:
    if world.concurrent:
        return list(await asyncio.gather(*(send(req) for req in world.requests)))
    return [await send(req) for req in world.requests]


async def run_library(world: World, directory: Path) -> Run:
    podium = Podium(load_settings(write(world, directory)))
    providers = scripted(podium)
    install(world, providers)
    state = MemoryState()
    slots: list[BudgetSlot] = []
    if world.key_budget is not None:
        slots.append(BudgetSlot("key_p:total", world.key_budget, label="key 'p'"))
    if world.team_budget is not None:
        slots.append(BudgetSlot("team:t:total", world.team_budget, label="team 't'"))

    async def ask(req: Req, request: ChatRequest, policy: Any) -> None:
        if not req.stream:
            response = await podium.chat(request, policy=policy)
            if response.id != policy.request_id:
                raise _WrongId(f"the answer's id {response.id} is not the policy's {policy.request_id}")
            return
        stream = podium.stream(request, policy=policy)
        chunks = aiter(stream)
        try:
            n = 0
            async for _ in chunks:
                n += 1
                if req.abandon_after is not None and n >= req.abandon_after:
                    raise _Abandoned
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        if stream.response is None or stream.response.id != policy.request_id or stream.request_id != policy.request_id:
            raise _WrongId(f"the stream's response {stream.response} does not carry {policy.request_id}")

    async def send(req: Req) -> Outcome:
        request = req.chat_request()
        policy = podium.policies.build(request, key_id="key_p", key_name="p",
                                       team="t" if world.team_budget is not None else None,
                                       models=world.key_models, budgets=slots, counters=state)
        try:
            if req.leave_after is None:
                await ask(req, request, policy)
            else:
                await asyncio.wait_for(ask(req, request, policy), req.leave_after)
        except _WrongId as exc:
            return Outcome(req, 200, policy.request_id, True, ids=str(exc))
        except _Abandoned:
            return Outcome(req, 499, policy.request_id, False, "abandoned")
        except TimeoutError:  # wait_for's: the caller went away
            return Outcome(req, 499, policy.request_id, False, "cancelled")
        except errors.PodiumError as exc:
            return Outcome(req, exc.status, policy.request_id, False, f"{type(exc).__name__}: {exc.message[:300]}")
        except Exception as exc:  # a bug: the gateway would answer 500
            return Outcome(req, 500, policy.request_id, False, f"{type(exc).__name__}: {exc!r}"[:400])
        return Outcome(req, 200, policy.request_id, True)

    outcomes = await send_all(world, send)
    await asyncio.sleep(0)  # releases that outlived a cancelled caller finish
    spent = {slot.key: await state.spent(slot.key) for slot in slots}
    limits = {slot.key: slot.limit for slot in slots}
    if podium.ledger is not None:
        await podium.ledger.flush()
    _, key_cost = read_ledger(directory / LEDGER, "key_p")
    follow = None
    candidate = follow_up_model(world, podium, key_cost, limits)
    if candidate is not None:
        install(world, providers, healthy=True)
        follow = await send(Req(model=candidate, max_tokens=1, prompt="hi", tag="follow"))
    catalogue = {name: podium.settings.catalogue.get(name) for name in world.models}
    tagged = calls_by_tag(providers)
    await podium.aclose()
    rows, _ = read_ledger(directory / LEDGER, "key_p")
    for outcome in outcomes:
        outcome.calls = tagged.get(outcome.req.tag, [])
    return Run(outcomes, spent, limits, rows, key_cost, follow, catalogue)


class _Abandoned(Exception):
    """The library caller stops reading a stream."""


class _WrongId(Exception):
    """An answer under another id than its request's."""


async def asgi_post(app: Any, path: str, body: bytes, headers: dict[str, str],
                    leave_after: float | None = None) -> tuple[int, dict[str, str], bytes]:
    """One POST through the ASGI app as uvicorn makes it (spec 2.3: a client that goes away is an
    ``http.disconnect`` from ``receive``), so a stream can lose its client part-way."""
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 4000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
             + [(b"host", b"gw"), (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())]}
    delivered = False
    status = 0
    response_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        if leave_after is None:
            await asyncio.Event().wait()  # the client stays until the response is done
        await asyncio.sleep(leave_after or 0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update({k.decode().lower(): v.decode() for k, v in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, response_headers, b"".join(chunks)


def http_outcome(req: Req, status: int, headers: dict[str, str], raw: bytes) -> Outcome:
    """What the client got: an answer is a 200 whose body (or every stream chunk) carries the id of the
    ``x-request-id`` header, and a stream must end with [DONE] and no error event."""
    request_id = headers.get("x-request-id")
    text = raw.decode(errors="replace")
    if status != 200:
        return Outcome(req, status, request_id, False, text[:300])
    if not req.stream:
        answer_id = json.loads(text).get("id")
        ids = "" if answer_id == f"chatcmpl-{request_id}" else f"the answer's id {answer_id} is not {request_id}'s"
        return Outcome(req, status, request_id, True, ids=ids)
    events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    answered = bool(events) and events[-1] == "[DONE]" and not any(e.startswith('{"error"') for e in events)
    chunk_ids = {json.loads(e).get("id") for e in events if e.startswith('{"id"')}
    ids = "" if chunk_ids <= {f"chatcmpl-{request_id}"} else f"chunk ids {sorted(chunk_ids)} under {request_id}"
    error = "" if answered else (events[-1][:300] if events else "the client left before the first event")
    return Outcome(req, status, request_id, answered, error, ids=ids)


async def run_gateway(world: World, directory: Path) -> Run:
    loaded = load_settings(write(world, directory))
    podium = Podium(loaded)
    app = create_app(loaded, podium=podium)
    gateway = app.state.gateway
    providers = scripted(podium)
    install(world, providers)
    store = KeyStore(directory / "keys.sqlite3")
    secret, key = store.create("p", models=world.key_models, budget=world.key_budget,
                               team="t" if world.team_budget is not None else None)
    store.close()
    headers = {"authorization": f"Bearer {secret}"}

    async def send(req: Req) -> Outcome:
        leave = req.leave_after if req.stream else None
        status, answer_headers, raw = await asgi_post(app, "/v1/chat/completions", json.dumps(req.body()).encode(),
                                                      headers, leave)
        return http_outcome(req, status, answer_headers, raw)

    outcomes = await send_all(world, send)
    await asyncio.sleep(0)
    limits = {}
    if world.key_budget is not None:
        limits[f"{key.id}:total"] = world.key_budget
    if world.team_budget is not None:
        limits["team:t:total"] = world.team_budget
    spent = {slot: await gateway.state.spent(slot) for slot in limits}
    if podium.ledger is not None:
        await podium.ledger.flush()
    _, key_cost = read_ledger(directory / LEDGER, key.id)
    follow = None
    candidate = follow_up_model(world, podium, key_cost, limits)
    if candidate is not None:
        install(world, providers, healthy=True)
        follow = await send(Req(model=candidate, max_tokens=1, prompt="hi", tag="follow"))
    catalogue = {name: podium.settings.catalogue.get(name) for name in world.models}
    tagged = calls_by_tag(providers)
    await podium.aclose()
    await gateway.keys.aclose()
    rows, _ = read_ledger(directory / LEDGER, key.id)
    for outcome in outcomes:
        outcome.calls = tagged.get(outcome.req.tag, [])
    return Run(outcomes, spent, limits, rows, key_cost, follow, catalogue)


# --- the promises -----------------------------------------------------------------------------------------
def worst_case(model: ModelInfo, request: ChatRequest) -> float:
    prompt = worst_input_tokens(request)
    return model.estimated_cost(prompt, worst_output_tokens(request, model, prompt))


def check(world: World, run: Run, scope: frozenset[str] | None, where: str) -> None:
    """Every promise on one run."""
    problems: list[str] = []
    for outcome in run.outcomes:
        event(f"{where} status {outcome.status}")
        event(f"{where} calls {min(len(outcome.calls), 5)}")
        if os.environ.get("PODIUM_PROPERTY_EVENTS"):
            event(f"{where} {outcome.status} {''.join(c for c in outcome.error[:70] if not c.isdigit())}")
    oracle = own_reach(world)
    if scope is not None and oracle is not None and not scope <= oracle:
        problems.append(f"scope {sorted(scope)} is wider than the key's list reaches ({sorted(oracle)})")
    allowed = scope if scope is not None else oracle
    largest = 0.0
    explained = world.explained_5xx()
    for outcome in run.outcomes:
        for provider, model, request in outcome.calls:
            if allowed is not None and model not in allowed:  # scope never escaped
                problems.append(f"{outcome.req}: {model} on {provider} was called outside the scope {sorted(allowed)}")
            region = world.where(model, provider)
            if outcome.req.restricted and region not in SAFE:  # regions
                problems.append(f"{outcome.req}: {model} on {provider} (region {region}) got a "
                                f"{outcome.req.sensitivity}/{outcome.req.preset} request")
            largest = max(largest, worst_case(run.catalogue[model], request))
        unexplained = outcome.status == 500 or (outcome.status >= 500 and outcome.status not in explained)
        if unexplained:  # no 500; a 5xx only when upstream failures explain it
            problems.append(f"{outcome.req}: status {outcome.status} ({outcome.error}); failures scheduled: "
                            f"{sorted(world.faults())}")
        if outcome.ids:
            problems.append(f"{outcome.req}: {outcome.ids}")
        rows = run.ledger_rows.get(outcome.request_id or "", [])
        if outcome.answered and [status for status, _ in rows] != ["ok"]:  # one ledger row per answer
            problems.append(f"{outcome.req}: answered as {outcome.request_id} but the ledger has {rows}")
        elif len(rows) > 1:
            problems.append(f"{outcome.req}: {len(rows)} ledger rows under {outcome.request_id}")
    for slot, limit in run.limits.items():  # budgets: never overspent, every hold settled
        spent = run.spent[slot]
        if spent > limit + largest + 1e-9:
            problems.append(f"{slot}: spent ${spent:.9f} of ${limit:.9f} (+ largest worst case ${largest:.9f})")
        if not math.isclose(spent, run.key_call_cost, rel_tol=1e-6, abs_tol=1e-12):
            problems.append(f"{slot}: the counters say ${spent:.9f} was spent, the ledger's calls cost "
                            f"${run.key_call_cost:.9f} (a hold not released?)")
    if run.key_call_cost == 0 and any(v > 1e-12 for v in run.spent.values()):
        problems.append(f"no call cost anything, yet the counters hold {run.spent}")
    if run.follow_up is not None:  # the key can still send
        rows = run.ledger_rows.get(run.follow_up.request_id or "", [])
        if run.follow_up.status != 200:
            problems.append(f"a healthy request after the others was refused: {run.follow_up.status} "
                            f"{run.follow_up.error}; spent {run.spent} of {run.limits}")
        elif [status for status, _ in rows] != ["ok"]:
            problems.append(f"the follow-up {run.follow_up.request_id} has ledger rows {rows}")
    assert not problems, f"{where}:\n" + "\n".join(problems)


def scope_of(world: World, directory: Path) -> frozenset[str] | None:
    """The scope podium computes for the key (``podium.policies.scope``; None: any model)."""
    podium = Podium(load_settings(write(world, directory)), ledger=None)
    scope, _ = podium.policies.scope(world.key_models)
    asyncio.run(podium.aclose())
    return scope


PROFILE: dict[str, Any] = {"deadline": None, "derandomize": EXAMPLES == 0, "print_blob": True, "database": None,
                           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.filter_too_much]}


@settings(max_examples=LIBRARY_EXAMPLES, **PROFILE)
@given(worlds())
def test_the_library_keeps_the_promises(world: World):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        scope = scope_of(world, directory)
        run = asyncio.run(run_library(world, directory))
        check(world, run, scope, "library")


@settings(max_examples=GATEWAY_EXAMPLES, **PROFILE)
@given(worlds())
def test_the_gateway_keeps_the_promises(world: World):
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        scope = scope_of(world, directory)
        run = asyncio.run(run_gateway(world, directory))
        check(world, run, scope, "gateway")


def test_the_generator_makes_varied_worlds():
    """A guard on the generator itself: its worlds have strategies, deployments, failures and budgets."""
    seen: dict[str, int] = {}

    @settings(max_examples=80, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(worlds())
    def look(world: World):
        for fact, present in {
            "strategies": bool(world.strategies), "deployments": bool(world.deployments),
            "regional deployments": any(d.get("region") for ds in world.deployments.values() for d in ds),
            "failures": bool(world.faults()), "budgets": world.key_budget is not None,
            "team budgets": world.team_budget is not None, "streams": any(r.stream for r in world.requests),
            "confidential": any(r.sensitivity == "confidential" for r in world.requests),
            "scoped": world.key_models is not None, "inline": any(r.model and ":" in r.model for r in world.requests),
            "cut streams": any(s.after is not None for ss in world.schedule.values() for s in ss),
            "callers who leave": any(r.leave_after is not None for r in world.requests),
            "concurrent": world.concurrent,
        }.items():
            seen[fact] = seen.get(fact, 0) + present

    look()
    assert all(count > 0 for count in seen.values()), seen


# --- bugs the properties found, as minimal examples ---------------------------------------------------------
def small_config(tmp_path: Path) -> Path:
    data = {"providers": {"canned": {"kind": "scripted", "options": {"default": "Paris"}}, "local": {"enabled": False}},
            "models": {"m0": {"provider": "canned", "model_id": "m0", "context_window": 8000, "input_price": 1.0,
                              "output_price": 1.0, "tier": "fast", "region": "us"}},
            "resilience": {"retries": {"max_attempts": 1}},
            "ledger": {"path": str(tmp_path / LEDGER)},
            "gateway": {"admin_key": ADMIN, "keys_path": str(tmp_path / "keys.sqlite3")}}
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("model", ["mixture:m0,m0", "consensus:m0", "vote:m0*2", "consensus:gpt-4o"])
async def test_a_strategy_whose_members_all_failed_for_the_request_is_not_a_5xx(tmp_path: Path, model: str):
    podium = Podium(load_settings(small_config(tmp_path)))
    canned = podium.registry.get_provider("canned")
    assert isinstance(canned, ScriptedProvider)
    canned.set_script("m0", Step(error=errors.ContextTooLongError("too long")))
    with pytest.raises(errors.PodiumError) as raised:
        await podium.chat("What is the capital of France?", model=model)
    await podium.aclose()
    assert raised.value.status < 500, f"{type(raised.value).__name__} {raised.value.status}: {raised.value.message}"


@pytest.mark.parametrize("body", [{"input": "hi", "model": "text-embedding-3-small"}, {"input": "hi"}])
async def test_embeddings_for_a_model_whose_provider_is_off_is_not_a_5xx(tmp_path: Path, body: dict[str, Any]):
    loaded = load_settings(small_config(tmp_path))
    podium = Podium(loaded)
    app = create_app(loaded, podium=podium)
    secret, _ = KeyStore(tmp_path / "keys.sqlite3").create("k")
    status, _, raw = await asgi_post(app, "/v1/embeddings", json.dumps(body).encode(),
                                     {"authorization": f"Bearer {secret}"})
    await podium.aclose()
    assert status < 500, raw.decode()
