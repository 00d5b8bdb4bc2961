"""Presets from the seeds, selectable by name (``--preset``, ``routing.preset``, ``metadata.preset``).

    production     quality first: tiers as estimated, emergency fallback to local models
    budget         cost first: one tier lower than estimated, at most $0.01 per request
    privacy-first  data stays in the EU, Switzerland or on this machine, local models preferred

A preset is data: a tier shift, an optional per-request cost cap, an optional region set, and
whether local models come first. Config can define more under ``routing.presets``.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.errors import BadRequestError, ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    tier_shift: int = 0
    max_cost: float | None = None
    regions: frozenset[str] | None = None
    prefer_local: bool = False
    local_last_resort: bool = False


PRESETS: dict[str, Preset] = {
    "production": Preset("production", "quality first; local models as the emergency fallback",
                         local_last_resort=True),
    "budget": Preset("budget", "one tier lower than estimated; at most $0.01 per request", tier_shift=-1,
                     max_cost=0.01),
    "privacy-first": Preset("privacy-first", "EU, Swiss or local models only; local first",
                            regions=frozenset({"eu", "ch", "local"}), prefer_local=True, local_last_resort=True),
}


def get_preset(name: str, extra: dict[str, Preset] | None = None) -> Preset:
    table = {**PRESETS, **(extra or {})}
    try:
        return table[name]
    except KeyError:
        raise ConfigError(f"unknown preset '{name}' (one of: {', '.join(sorted(table))})",
                          key_path="routing.preset") from None


def preset_for(requested: str | None, configured: str | None) -> Preset | None:
    """The preset in force: the request's own (an unknown name is the request's fault: 400), else the
    config's ``routing.preset``."""
    if requested is None:
        return get_preset(configured) if configured else None
    try:
        return get_preset(requested)
    except ConfigError as exc:
        raise BadRequestError(exc.message.removeprefix("routing.preset: "), code="unknown_preset") from None
