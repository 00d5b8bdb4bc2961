"""How hard and how risky a request looks, from its text alone (no model call, microseconds).

A heuristic, and pluggable (``Router(estimator=...)``): the learned router of a later issue can
replace it. Signals, each documented so a user can predict the tier:

- size: prompt tokens (≥ 2,000 → larger; ≥ 8,000 → large);
- design words (architecture, design, migrate, refactor, trade-off, scalab…, distributed,
  security model, threat model) → large, and risk up;
- risky areas (security, auth, payment, billing, production, database migration, compliance,
  medical, legal, delete, drop table) → high risk;
- code (fenced blocks, ``def``/``class``/``function``, stack traces) → at least medium;
- small-task words (translate, format, summarise in a sentence, yes or no, spell, capital of) and a
  short prompt → small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

from podium.catalogue import approximate_tokens
from podium.types import ChatRequest

Complexity = Literal["small", "medium", "large"]
Risk = Literal["low", "medium", "high"]

# Keyword tests run on the lower-cased words of the prompt with ``str.startswith`` over a tuple of
# stems (one C call per distinct word), phrases with a substring test: a regex per rule was 5x slower.
_PUNCTUATION = str.maketrans(dict.fromkeys("\n\t.,;:!?()[]{}<>\"'`/\\|=+*&^%$#@~", " "))
_DESIGN_STEMS = ("architect", "design", "migrat", "refactor", "trade-off", "tradeoff", "scalab", "distributed")
_DESIGN_PHRASES = ("threat model", "security model", "system design")
_RISKY_STEMS = ("secur", "auth", "payment", "billing", "production", "complian", "gdpr", "hipaa", "medical", "legal",
                "delet", "credential", "encrypt", "vulnerab")
_RISKY_PHRASES = ("drop table",)
_SMALL_WORDS = frozenset({"translate", "format", "spell", "define", "synonym", "convert"})
_SMALL_PHRASES = ("capital of", "yes or no", "one word", "in one sentence", "what time")
_CODE = re.compile(r"```|\bdef \w+\(|\bclass \w+|\bfunction \w+\(|Traceback \(most recent|\bSELECT .+ FROM\b")
_CODE_HINTS = ("```", "def ", "class ", "function ", "Traceback", "SELECT")  # cheap gate before the regex


def _has_code(text: str) -> bool:
    return any(hint in text for hint in _CODE_HINTS) and _CODE.search(text) is not None


def _first(words: list[str], stems: tuple[str, ...], text: str, phrases: tuple[str, ...]) -> str | None:
    for word in words:
        if word.startswith(stems):
            return word
    return next((p for p in phrases if p in text), None)


_AREA_RISK: dict[str, Risk] = {"core": "high", "security": "high", "infra": "high", "payments": "high",
                               "data": "medium", "api": "medium", "tests": "low", "docs": "low", "ui": "low"}


@dataclass(frozen=True)
class Estimate:
    complexity: Complexity
    risk: Risk
    signals: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        why = f" ({', '.join(self.signals)})" if self.signals else ""
        return f"complexity {self.complexity}, risk {self.risk}{why}"


class ComplexityEstimator(Protocol):
    def estimate(self, request: ChatRequest) -> Estimate: ...


def _bump(level: int, by: int = 1) -> int:
    return max(0, min(2, level + by))


class HeuristicEstimator:
    """The default estimator; see the module docstring for its rules."""

    def estimate(self, request: ChatRequest) -> Estimate:
        text = request.prompt_text
        lower = text.lower()
        words = list(dict.fromkeys(lower.translate(_PUNCTUATION).split()))
        tokens = approximate_tokens(text)
        signals: list[str] = []
        size, risk = 1, 0  # medium, low
        has_code = _has_code(text)
        if tokens >= 8000:
            size = 2
            signals.append(f"{tokens:,} prompt tokens")
        elif tokens >= 2000:
            size = _bump(size)
            signals.append(f"{tokens:,} prompt tokens")
        elif tokens < 60 and not has_code:
            size = 0
        if design := _first(words, _DESIGN_STEMS, lower, _DESIGN_PHRASES):
            size, risk = 2, _bump(risk)
            signals.append(f"design: '{design}'")
        if risky := _first(words, _RISKY_STEMS, lower, _RISKY_PHRASES):
            risk = 2
            signals.append(f"risky: '{risky}'")
        if has_code:
            size = max(size, 1)
            signals.append("code")
        small = not _SMALL_WORDS.isdisjoint(words) or any(p in lower for p in _SMALL_PHRASES)
        if small and tokens < 200 and size < 2:
            size = 0
            signals.append("small task")
        area = next((t.removeprefix("area:") for t in request.metadata.tags if t.startswith("area:")), None)
        if area in _AREA_RISK:
            risk = max(risk, ("low", "medium", "high").index(_AREA_RISK[area]))
            signals.append(f"area {area}")
        if request.metadata.sensitivity == "confidential":
            risk = max(risk, 1)
        levels: tuple[Complexity, Complexity, Complexity] = ("small", "medium", "large")
        risks: tuple[Risk, Risk, Risk] = ("low", "medium", "high")
        return Estimate(levels[size], risks[risk], tuple(signals))
