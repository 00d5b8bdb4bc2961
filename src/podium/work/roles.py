"""Which models play which role in a work run: the seed's presets, or ``work.presets`` from podium.yaml.

The seed's orchestra pattern names its cast per strategy:

    production     conductor Claude Sonnet · workers DeepSeek / Mixtral · reviewer Apertus (Swiss)
    budget         conductor Mixtral      · workers cheap fast models  · reviewer Mixtral
    privacy-first  Apertus everywhere (EU, Swiss or local models only, local first)

Model names are only useful if their provider is on here, so a built-in preset is the seed's cast
filtered to models that can run, then filled up from the catalogue by tier (and, for privacy-first,
region), so every role always has a list: on the embedded default that is the local models. Each list is
ordered: the first is preferred, the rest are its fallbacks; the config's emergency fallbacks apply after
them on every call. A preset in ``work.presets`` is taken as written (its names checked against the
catalogue when the run starts; models that cannot run here — their provider off — are left out, and a role
left with none is an error saying why).

The run's routing preset (``preset`` of the roles) is held at the choke point on every call: with
privacy-first, a reviewer or fallback outside the EU, Switzerland or this machine is refused there, not
just left out of these lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.catalogue import ModelInfo
from podium.config import Settings
from podium.errors import ConfigError
from podium.providers import ProviderRegistry
from podium.routing.presets import PRESETS
from podium.work.contracts import ROLES, Role

_SEED: dict[str, dict[Role, tuple[str, ...]]] = {
    "production": {"conductor": ("claude-sonnet-4-5", "openrouter/claude-sonnet-4.5"),
                   "worker": ("deepseek-chat", "openrouter/mixtral-8x7b"),
                   "reviewer": ("apertus-70b",)},
    "budget": {"conductor": ("openrouter/mixtral-8x7b",),
               "worker": ("deepseek-flash", "openrouter/mixtral-8x7b"),
               "reviewer": ("openrouter/mixtral-8x7b", "apertus-8b")},
    "privacy-first": {"conductor": ("apertus-70b",), "worker": ("apertus-70b",), "reviewer": ("apertus-70b",)},
}
# the tiers each role is filled up from, best first
_TIERS: dict[str, dict[Role, tuple[str, ...]]] = {
    "production": {"conductor": ("advanced", "standard", "fast"), "worker": ("standard", "fast", "advanced"),
                   "reviewer": ("advanced", "standard", "fast")},
    "budget": {"conductor": ("standard", "fast"), "worker": ("fast", "standard"), "reviewer": ("fast", "standard")},
    "privacy-first": {"conductor": ("advanced", "standard", "fast"), "worker": ("standard", "fast", "advanced"),
                      "reviewer": ("advanced", "standard", "fast")},
}
MAX_FALLBACKS = 4


@dataclass(frozen=True)
class RoleModels:
    preset: str  # the work preset's name
    routing_preset: str | None  # the routing preset held on every call (regions), if any
    models: dict[Role, tuple[str, ...]]

    def for_role(self, role: Role) -> tuple[str, ...]:
        return self.models[role]

    def describe(self) -> str:
        return "; ".join(f"{role}: {', '.join(self.models[role])}" for role in ROLES)


def _runnable(settings: Settings, registry: ProviderRegistry, regions: frozenset[str] | None) -> list[ModelInfo]:
    return [m for m in settings.catalogue
            if registry.cannot_run(m) is None and "chat" in m.capabilities and not m.name.endswith("-embed")
            and (regions is None or m.region in regions)]


def _fill(name: str, role: Role, runnable: list[ModelInfo], prefer_local: bool) -> tuple[str, ...]:
    names = {m.name for m in runnable}
    chosen = [n for n in _SEED.get(name, {}).get(role, ()) if n in names]
    tiers = _TIERS.get(name, _TIERS["production"])[role]
    for tier in tiers:
        pool = [m for m in runnable if m.tier == tier and m.name not in chosen]
        # code-capable first, instruction-tuned before base models; then local first for privacy-first;
        # then the better-known (pricier) first for the conductor and reviewer, the cheaper first for workers
        cheap_first = role == "worker" or name == "budget"
        pool.sort(key=lambda m: (not m.has("code"), m.prompt_format != "chat",
                                 not m.local if prefer_local else False,
                                 m.blended_price if cheap_first else -m.blended_price, m.name))
        chosen.extend(m.name for m in pool)
    return tuple(chosen[:MAX_FALLBACKS])


def resolve_roles(settings: Settings, registry: ProviderRegistry, preset: str | None = None) -> RoleModels:
    """The models per role for ``preset`` (default ``work.preset``); a ConfigError naming the fix when a role
    has no model that can run here."""
    name = preset or settings.work.preset
    configured = settings.work.presets.get(name)
    if configured is not None:
        routing = configured.preset
        if routing is not None and routing not in PRESETS:
            raise ConfigError(f"unknown routing preset '{routing}' (one of: {', '.join(sorted(PRESETS))})",
                              key_path=f"work.presets.{name}.preset")
        # a model outside the preset's regions is left out of the role (so out of an agent's key too): the
        # invoker would refuse it on the run's own calls, and a key scoped to it would not
        regions = PRESETS[routing].regions if routing is not None else None
        models: dict[Role, tuple[str, ...]] = {}
        skipped: dict[str, str] = {}  # the first model of each role that cannot run here, and why
        for role in ROLES:
            listed: list[str] = getattr(configured, role)
            resolved = []
            for i, entry in enumerate(listed):
                model = settings.catalogue.find(entry)
                if model is None:
                    raise ConfigError(settings.catalogue.missing(entry, []),
                                      key_path=f"work.presets.{name}.{role}[{i}]")
                why = registry.cannot_run(model)
                if why is None and regions is not None and model.region not in regions:
                    why = f"runs in region '{model.region}', outside {', '.join(sorted(regions))} ({routing})"
                if why is None:
                    resolved.append(model.name)
                elif not skipped.get(role):
                    skipped[role] = f"{model.name}: {why}"
            if not resolved:
                raise ConfigError(f"no model of this role can run here ({skipped[role]}); enable its provider "
                                  "(podium providers check) or list another model",
                                  key_path=f"work.presets.{name}.{role}")
            models[role] = tuple(resolved)
        return RoleModels(name, routing, models)
    if name not in _SEED:
        known = sorted({*_SEED, *settings.work.presets})
        raise ConfigError(f"unknown work preset '{name}' (one of: {', '.join(known)}; add your own under "
                          "work.presets in podium.yaml)")
    routing_preset = PRESETS[name]
    runnable = _runnable(settings, registry, routing_preset.regions)
    models = {role: _fill(name, role, runnable, routing_preset.prefer_local) for role in ROLES}
    empty = [role for role in ROLES if not models[role]]
    if empty:
        where = f" in {', '.join(sorted(routing_preset.regions))}" if routing_preset.regions else ""
        raise ConfigError(f"preset '{name}' has no model{where} that can run here for: {', '.join(empty)}; "
                          "enable a provider (podium providers check) or name models under work.presets")
    return RoleModels(name, name, models)
