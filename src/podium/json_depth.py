"""How deep a JSON value nests, measured without recursion: requests are refused past ``MAX_DEPTH``.

Python's own JSON handling (and pydantic's) recurses, so a value nested a few thousand levels deep
is a ``RecursionError`` wherever it is walked — in validation, in a guardrail, in a wire that parses
a tool call's arguments. Podium measures depth iteratively and refuses (or keeps as text) what is
deeper than any real request needs (tool schemas need ~20 levels).
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # JSON nesting a request may have (tool schemas need ~20); deeper is refused, not recursed into


def json_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of ``value``, counted without recursion and stopping past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def arguments_object(text: str) -> dict[str, Any]:
    """A tool call's arguments as the JSON object the Anthropic, Gemini and Ollama wires take. Arguments a
    model wrote badly (not JSON, not an object, nested deeper than ``MAX_DEPTH``) are kept whole under
    ``_raw`` instead of failing the request."""
    try:
        value = json.loads(text or "{}")
    except (ValueError, RecursionError):
        return {"_raw": text}
    if not isinstance(value, dict) or json_depth(value) > MAX_DEPTH:
        return {"_raw": text}
    return value
