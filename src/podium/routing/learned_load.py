"""``routing.learned`` checked at load: a router file the gateway can use, or a ConfigError saying why.

Everything that could make a learned router fail mid-request is checked once, when the config
loads, so ``podium serve`` refuses to start (and ``podium ask`` exits 2) with one line instead: the
file is missing or unreadable, it is not a router, it names a model the catalogue does not know or
whose provider is off, the knob is outside [0, 1], or exploration is asked of a router that cannot
learn from it. Names in the file may be any name the catalogue resolves (aliases, vendor ids); the
setup keeps the catalogue's names, which is what routes, traces and the ledger use.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from podium.catalogue import Catalogue
from podium.errors import ConfigError, PodiumError
from podium.routing.learned.contract import LearnedRouter, OnlineRouter
from podium.routing.learned_route import LearnedSetup

if TYPE_CHECKING:
    from podium.config.resolve import ProviderSpec
    from podium.config.schema import LearnedRoutingConfig

TRAIN = "podium router train DATASET --kind knn --out FILE"


def router_path(file: str, base: Path | None) -> Path:
    """A relative ``file`` is read from the config file's folder (else the working directory)."""
    path = Path(file).expanduser()
    return path if path.is_absolute() or base is None else base / path


def read_router(path: Path) -> LearnedRouter:
    """The router in ``path`` (``podium router train``'s format), or a ConfigError naming the problem."""
    where = "routing.learned.file"
    if not path.is_file():
        raise ConfigError(f"router file {path} does not exist; train one with `{TRAIN}` and point "
                          "routing.learned.file at it", key_path=where)
    try:
        from podium.routing.learned.files import load_router
    except ImportError:  # pragma: no cover - the learners ship with Podium
        raise ConfigError("this Podium cannot read router files (podium.routing.learned.files is missing); "
                          "reinstall Podium or set routing.router: heuristic", key_path=where) from None
    try:
        router = load_router(path)
    except PodiumError as exc:
        raise ConfigError(f"router file {path}: {exc.message}", key_path=where) from None
    except Exception as exc:  # a truncated, foreign or tampered file: whatever the reader tripped on
        raise ConfigError(f"router file {path} is not a router file Podium can read ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); train it again with `{TRAIN}`", key_path=where) from None
    if not isinstance(router, LearnedRouter) or not router.models:
        raise ConfigError(f"router file {path} holds no usable router (no models); train it again with `{TRAIN}`",
                          key_path=where)
    return router


def load_learned(cfg: LearnedRoutingConfig | None, catalogue: Catalogue, providers: Mapping[str, ProviderSpec],
                 base: Path | None) -> LearnedSetup:
    """The learned router ``routing.learned`` names, checked against the catalogue and the enabled providers."""
    if cfg is None:
        raise ConfigError(f"routing.router: learned needs a router file: add routing.learned.file (made by `{TRAIN}`)"
                          ", or set routing.router: heuristic", key_path="routing.learned")
    from podium.providers.local import minilm

    lacking = minilm.missing()
    if lacking is not None:
        raise ConfigError(f"routing.router: learned embeds prompts with the local all-MiniLM-L6-v2, and {lacking}",
                          key_path="routing.router")
    path = router_path(cfg.file, base)
    router = read_router(path)
    names: list[str] = []
    for i, name in enumerate(router.models):
        model = catalogue.find(name) if isinstance(name, str) else None
        if model is None:
            raise ConfigError(f"router file {path.name} routes to '{name}', which is not in the catalogue: add it "
                              "under models: in podium.yaml or train the router on models you have",
                              key_path=f"routing.learned.file (model {i + 1})")
        if "chat" not in model.capabilities:
            raise ConfigError(f"router file {path.name} routes to '{model.name}', which is not a chat model; "
                              "train the router on chat models", key_path="routing.learned.file")
        spec = providers.get(model.provider)
        if spec is None or not spec.enabled:
            reason = spec.reason if spec is not None else "not defined"
            raise ConfigError(f"router file {path.name} routes to '{model.name}', whose provider '{model.provider}' "
                              f"is not enabled ({reason}): enable it, or train the router without that model",
                              key_path="routing.learned.file")
        names.append(model.name)
    if len(set(names)) != len(names):
        raise ConfigError(f"router file {path.name} names one model twice ({', '.join(router.models)}); "
                          "train it again", key_path="routing.learned.file")
    knob = router.knob if cfg.knob is None else cfg.knob
    if not isinstance(knob, int | float) or not 0.0 <= float(knob) <= 1.0:
        raise ConfigError(f"router file {path.name} has knob {knob!r}, outside 0..1; set routing.learned.knob "
                          "(0 cheapest … 1 best)", key_path="routing.learned.knob")
    online = isinstance(router, OnlineRouter)
    if cfg.explore is not None and cfg.explore > 0 and not online:
        raise ConfigError(f"routing.learned.explore applies to routers that learn online, and {path.name} holds a "
                          f"'{router.kind}' router that does not: remove explore, or train an online one "
                          "(--kind bandit)", key_path="routing.learned.explore")
    explore = cfg.explore if cfg.explore is not None else _own_explore(router) if online else 0.0
    return LearnedSetup(router, path, float(knob), explore, tuple(names))


def _own_explore(router: LearnedRouter) -> float:
    """The exploration share an online router's file carries (the bandit's ``explore``), else 0."""
    share = getattr(router, "explore", 0.0)
    return float(share) if isinstance(share, int | float) and 0.0 <= share <= 1.0 else 0.0
