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

_DESIGN = re.compile(r"\b(architect\w*|design\w*|migrat\w*|refactor\w*|trade-?offs?|scalab\w*|distributed|"
                     r"threat model|security model|system design|plan\w* (?:the|a) )", re.I)
_RISKY = re.compile(r"\b(security|secur\w+|auth\w*|payment\w*|billing|production|compliance|gdpr|hipaa|medical|"
                    r"legal|delete\w*|drop table|credentials?|encrypt\w*|vulnerab\w*)\b", re.I)
_CODE = re.compile(r"```|\bdef \w+\(|\bclass \w+|\bfunction \w+\(|Traceback \(most recent|\bSELECT .+ FROM\b",
                   re.I | re.S)
_SMALL = re.compile(r"\b(translate|format|spell|capital of|yes or no|one word|in one sentence|define|synonym|"
                    r"what time|convert)\b", re.I)
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
        tokens = approximate_tokens(text)
        signals: list[str] = []
        size, risk = 1, 0  # medium, low
        if tokens >= 8000:
            size = 2
            signals.append(f"{tokens:,} prompt tokens")
        elif tokens >= 2000:
            size = _bump(size)
            signals.append(f"{tokens:,} prompt tokens")
        elif tokens < 60 and not _CODE.search(text):
            size = 0
        if _DESIGN.search(text):
            size, risk = 2, _bump(risk)
            signals.append(f"design: '{_DESIGN.search(text).group(0).strip()}'")  # type: ignore[union-attr]
        if match := _RISKY.search(text):
            risk = 2
            signals.append(f"risky: '{match.group(0)}'")
        if _CODE.search(text):
            size = max(size, 1)
            signals.append("code")
        if _SMALL.search(text) and tokens < 200 and size < 2:
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
