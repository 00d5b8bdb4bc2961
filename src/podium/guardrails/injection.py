"""Prompt injection (placeholder while the scored detector is written)."""

from __future__ import annotations

import re

_INJECTION = re.compile(
    r"(ignore|disregard|forget) (all |any )?(the |your )?(previous|prior|above|earlier) (instructions|prompts|rules)"
    r"|you are now (?:in )?(?:developer|dan|jailbreak) mode|reveal (?:your |the )?(?:system|hidden) prompt"
    r"|print (?:your |the )?(?:system|initial) (?:prompt|instructions)|act as if you have no (?:rules|restrictions)",
    re.I)


def detect(text: str) -> tuple[int, int] | None:
    m = _INJECTION.search(text)
    return (m.start(), m.end()) if m else None
