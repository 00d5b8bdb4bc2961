"""Which names are strategies and which models they reach: kept apart from ``spec`` so the request
path can ask without importing every strategy (they load on the first strategy request).

A strategy is named in the config (``strategies: {panel: {...}}``) or written inline in a
request's ``model``: ``kind:a,b*3``. ``reach`` answers the question a key's scope asks: which
models can a strategy call? A strategy that picks its models at run time (a pipeline's workers,
``fast-vote``, a vote without members) can reach any model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from podium.errors import BadRequestError

KINDS = frozenset({"single", "cascade", "vote", "consensus", "debate", "mixture", "pipeline", "fast-vote"})
DYNAMIC_KINDS = frozenset({"pipeline", "fast-vote"})  # pick members at run time


def is_strategy(name: str | None, named: Mapping[str, object]) -> bool:
    return name is not None and (name in named or name.split(":", 1)[0] in KINDS)


def inline_members(spec: str, max_calls: int | None = None) -> list[tuple[str, int]]:
    """``kind:a,b*3`` → ``[("a", 1), ("b", 3)]``. A multiplier that is not a whole number, or members
    that add up to more than ``max_calls``, are the request's fault (400, naming the cap)."""
    body = spec.split(":", 1)[1] if ":" in spec else ""
    members: list[tuple[str, int]] = []
    total = 0
    for part in (p.strip() for p in body.split(",") if p.strip()):
        model, _, times = part.partition("*")
        times = times.strip()
        if times and not (times.isascii() and times.isdigit()):
            raise BadRequestError(f"'{part}' in '{spec[:200]}': write model*N with a whole number N")
        if len(times) > 9:  # no cap is that large; never turn a 10,000-digit string into an int
            raise BadRequestError(f"'{part[:60]}' in the strategy: N in model*N is far too large",
                                  code="too_many_calls")
        count = int(times) if times else 1
        total += count
        if max_calls is not None and total > max_calls:
            raise BadRequestError(f"'{spec[:200]}' asks for more than {max_calls} calls; the cap is {max_calls} "
                                  "calls per request (routing.max_calls_per_request)", code="too_many_calls")
        members.append((model.strip(), count))
    return members


def referenced_names(config: Any) -> Iterator[tuple[str, str]]:
    """(key path, name) of every model or strategy a config entry (``StrategyConfig``) refers to."""
    for i, name in enumerate(config.models):
        yield f"models[{i}]", name
    for key in ("verifier", "synthesizer", "aggregator", "conductor"):
        value = getattr(config, key)
        if value:
            yield key, value


def _dynamic(config: Any) -> bool:
    return bool(config.type == "pipeline" or (config.type == "vote" and not config.models))


def reach(name: str, named: Mapping[str, Any], canonical: Callable[[str], str | None],
          _seen: frozenset[str] = frozenset()) -> frozenset[str] | None:
    """The catalogue names ``name`` (a model, a named or an inline strategy) can call; None: any model.

    ``canonical`` maps a model name or alias to its catalogue name (None: not a model)."""
    model = canonical(name)
    if model is not None and name not in named:
        return frozenset({model})
    if name in _seen:
        return frozenset()
    seen = _seen | {name}
    if name in named:
        config = named[name]
        if _dynamic(config):
            return None
        refs = [ref for _, ref in referenced_names(config)]
    elif name.split(":", 1)[0] in KINDS:
        kind = name.split(":", 1)[0]
        refs = [member for member, _ in inline_members(name)]
        if kind in DYNAMIC_KINDS and (kind == "fast-vote" or not refs):
            return None
        if kind == "pipeline":
            return None  # its workers are picked by tier at run time
    else:
        return frozenset()
    found: set[str] = set()
    for ref in refs:
        sub = reach(ref, named, canonical, seen)
        if sub is None:
            return None
        found |= sub
    return frozenset(found)
