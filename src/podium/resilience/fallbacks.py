"""Where to go when a model cannot answer: configured chains, plus three automatic ones.

- a chain from the config: ``{model: gpt-4o, on: [rate_limited, unavailable, timeout], to: [...]}``
  (``model: "*"`` applies to every model);
- context too long → the cheapest enabled model with at least twice the window and the same
  capabilities (a step that small is rarely enough: the provider does not say by how much it was over);
- content filtered → a model of the same tier or better from another provider (their filters differ).
  Only a vendor's structured sign is a ``ContentFilteredError`` (an error code such as ``content_filter``,
  Anthropic's ``refusal`` stop reason, Gemini's blocked prompt or SAFETY finish; see ``providers.call``):
  a 400 whose message merely says "safety" is a bad request and goes nowhere else;
- the emergency table from the seeds: when a provider is down, its requests go to the models
  listed for it (``{provider: openrouter, to: [apertus-70b, smollm2-135m]}``; ``provider: "*"`` for any).

Pure logic over the catalogue; the executor decides when to ask.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from podium import errors
from podium.catalogue import Catalogue, ModelInfo

ERROR_KINDS: tuple[tuple[type[errors.PodiumError], str], ...] = (
    (errors.RateLimitedError, "rate_limited"),
    (errors.ProviderUnavailableError, "unavailable"),
    (errors.TimeoutError, "timeout"),
    (errors.ContextTooLongError, "context_too_long"),
    (errors.ContentFilteredError, "content_filtered"),
    (errors.AuthenticationError, "auth"),
    (errors.PermissionDeniedError, "permission"),
    (errors.NotFoundError, "not_found"),
    (errors.ProviderError, "provider_error"),
)
KINDS = frozenset(kind for _, kind in ERROR_KINDS)
DEFAULT_ON = frozenset({"rate_limited", "unavailable", "timeout", "provider_error", "auth", "permission"})
# A provider that is down, or that rejects our key, serves nothing: the emergency table applies.
PROVIDER_DOWN = frozenset({"unavailable", "timeout", "provider_error", "auth"})


def error_kind(error: BaseException) -> str | None:
    for cls, kind in ERROR_KINDS:
        if isinstance(error, cls):
            return kind
    return None


@dataclass(frozen=True)
class FallbackRule:
    model: str
    to: tuple[str, ...]
    on: frozenset[str] = DEFAULT_ON


@dataclass(frozen=True)
class EmergencyRule:
    provider: str
    to: tuple[str, ...]


class Fallbacks:
    def __init__(self, catalogue: Catalogue, enabled: Collection[str], rules: Sequence[FallbackRule] = (),
                 emergency: Sequence[EmergencyRule] = (), context_fallback: bool = True,
                 filter_fallback: bool = True) -> None:
        self.catalogue = catalogue
        self.enabled = enabled
        self.rules = list(rules)
        self.emergency = list(emergency)
        self.context_fallback = context_fallback
        self.filter_fallback = filter_fallback

    def _usable(self, names: Iterable[str], tried: Collection[str]) -> list[ModelInfo]:
        out = []
        for name in names:
            model = self.catalogue.find(name)
            if model is not None and model.provider in self.enabled and model.name not in tried:
                out.append(model)
        return out

    def after(self, model: ModelInfo, error: BaseException, tried: Collection[str],
              eligible: Callable[[ModelInfo], bool] | None = None) -> list[tuple[ModelInfo, str]]:
        """Models to try next after ``model`` failed with ``error``, each with the reason.

        ``eligible`` lets the router's constraints (region, budget) veto a fallback: a confidential
        request never falls back to a model it could not have been routed to.
        """
        kind = error_kind(error)
        if kind is None:
            return []
        ok = eligible or (lambda _: True)
        found: list[tuple[ModelInfo, str]] = []
        for rule in self.rules:
            if rule.model in {model.name, "*"} and kind in rule.on:
                found += [(m, f"{kind} on {model.name} → configured fallback") for m in self._usable(rule.to, tried)]
        if kind == "context_too_long" and self.context_fallback:
            larger = [m for m in self.catalogue if m.provider in self.enabled and m.name not in tried
                      and not m.superseded_by
                      and m.context_window >= 2 * model.context_window and model.capabilities <= m.capabilities]
            larger.sort(key=lambda m: (m.blended_price, m.context_window))
            found += [(m, f"context too long for {model.name} ({model.context_window:,} tokens) → "
                          f"{m.context_window:,}-token window") for m in larger[:2]]
        if kind == "content_filtered" and self.filter_fallback:
            others = [m for m in self.catalogue if m.provider in self.enabled and m.name not in tried
                      and not m.superseded_by
                      and m.provider != model.provider and m.tier_rank >= model.tier_rank and "chat" in m.capabilities]
            others.sort(key=lambda m: (m.tier_rank, m.blended_price))
            found += [(m, f"{model.provider} filtered the content → another provider") for m in others[:2]]
        if kind in PROVIDER_DOWN:
            for emergency in self.emergency:
                if emergency.provider in {model.provider, "*"}:
                    found += [(m, f"{model.provider} is down → emergency table")
                              for m in self._usable(emergency.to, tried) if m.provider != model.provider]
        seen: set[str] = set()
        unique = []
        for m, why in found:
            if m.name not in seen and ok(m):
                seen.add(m.name)
                unique.append((m, why))
        return unique
