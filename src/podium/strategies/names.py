"""Which names are strategies: kept apart from ``spec`` so the request path can ask without
importing every strategy (they load on the first strategy request)."""

from __future__ import annotations

from collections.abc import Mapping

KINDS = frozenset({"single", "cascade", "vote", "consensus", "debate", "mixture", "pipeline", "fast-vote"})


def is_strategy(name: str | None, named: Mapping[str, object]) -> bool:
    return name is not None and (name in named or name.split(":", 1)[0] in KINDS)
