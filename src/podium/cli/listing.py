"""``podium models`` and ``podium providers check``."""

from __future__ import annotations

import asyncio
import difflib
import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any, get_args

from rich.markup import escape

from podium.catalogue.model_info import KNOWN_CAPABILITIES, Region, Tier
from podium.cli import tables
from podium.cli.render import console, show_models
from podium.cli.tables import Column
from podium.client import Podium
from podium.errors import BadRequestError

PROVIDER_COLUMNS = (Column("provider", identifier=True), Column("kind", drop=1), Column("state"),
                    Column("why", drop=2, wrap=True), Column("health", wrap=True))
BLOCKED_COLUMNS = (Column("model", identifier=True), Column("provider", identifier=True, drop=1),
                   Column("why", wrap=True))
CIRCUIT_COLUMNS = (Column("deployment", identifier=True), Column("provider", identifier=True, drop=3),
                   Column("circuit"), Column("retry in", drop=1), Column("opened", drop=2))


def _one_of(option: str, value: str | None, valid: Iterable[str]) -> None:
    if value is not None and value not in valid:
        choices = sorted(set(valid))
        close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
        hint = f" Did you mean: {close[0]}?" if close else ""
        raise BadRequestError(f"{option}: unknown value '{value}' (one of: {', '.join(choices)}).{hint}")


def check_filters(podium: Podium, *, capability: str | None, tier: str | None, provider: str | None,
                  region: str | None, max_cost: float | None, min_context: int | None) -> None:
    """A filter no model could match is a typo, not an empty table: refused with the valid values
    (capabilities: the known ones and any the catalogue's rows add; providers: the configured ones)."""
    catalogue = podium.settings.catalogue
    _one_of("--tier", tier, get_args(Tier))
    _one_of("--region", region, get_args(Region))
    _one_of("--capability", capability, KNOWN_CAPABILITIES.union(*(m.capabilities for m in catalogue)))
    _one_of("--provider", provider, {*podium.settings.providers, *(m.provider for m in catalogue)})
    if max_cost is not None and not max_cost >= 0:
        raise BadRequestError(f"--max-cost must be 0 or more (USD per million tokens), not {max_cost:g}")
    if min_context is not None and min_context < 0:
        raise BadRequestError(f"--min-context must be 0 or more (tokens), not {min_context}")


def run_models(*, capability: str | None, tier: str | None, provider: str | None, region: str | None,
               max_cost: float | None, min_context: int | None, all_models: bool, json_output: bool,
               config: str | None) -> None:
    podium = Podium.from_config(config, ledger=None)
    registry = podium.registry
    check_filters(podium, capability=capability, tier=tier, provider=provider, region=region, max_cost=max_cost,
                  min_context=min_context)
    found = registry.list_models(capability, tier, max_cost, provider, region, min_context,
                                 include_unavailable=all_models)
    if json_output:
        print(json.dumps([m.model_dump(mode="json") for m in found], indent=2))
        return
    show_models(found, set(registry.list_providers()))
    if not all_models:
        console.print("[dim]Only models whose provider is on; --all lists the whole catalogue.[/]")


def run_providers_check(*, json_output: bool, config: str | None) -> None:
    podium = Podium.from_config(config, ledger=None)

    async def check() -> dict[str, Any]:
        async with podium:
            for name in podium.settings.deployments:  # configured deployments appear even before first use
                podium.deployments(podium.settings.catalogue.get(name))
            return await podium.health()

    report = asyncio.run(check())
    health = report["providers"]
    deployments = report["deployments"]
    specs = podium.settings.providers
    rows = []
    for name, spec in sorted(specs.items()):
        result = health.get(name)
        rows.append({"provider": name, "kind": spec.kind, "enabled": name in health,
                     "why": spec.reason, "base_url": spec.base_url,
                     "healthy": getattr(result, "ok", None), "detail": getattr(result, "detail", None),
                     "latency_ms": round(getattr(result, "latency_ms", 0.0), 1) if result else None})
    blocked = [{"model": m.name, "provider": m.provider, "why": why} for m in podium.settings.catalogue
               if m.provider in health and (why := podium.registry.cannot_run(m)) is not None]
    if json_output:
        print(json.dumps({"providers": rows, "deployments": [asdict(d) for d in deployments],
                          "cannot_run": blocked}, indent=2))
        return
    cells = []
    for row in rows:
        state = "[green]on[/]" if row["enabled"] else "[dim]off[/]"
        healthy = row["healthy"]
        health_text = "" if healthy is None else ("[green]ok[/] " if healthy else "[red]down[/] ") + escape(
            str(row["detail"]))
        cells.append([escape(str(row["provider"])), escape(str(row["kind"])), state, escape(str(row["why"])),
                      health_text])
    tables.show(console, "providers", PROVIDER_COLUMNS, cells)
    if blocked:
        tables.show(console, "models that cannot run here (never routed to)", BLOCKED_COLUMNS,
                    [[escape(item["model"]), escape(item["provider"]), escape(item["why"])] for item in blocked])
    if deployments:
        circuit_rows = []
        for d in deployments:
            colour = {"closed": "green", "open": "red"}.get(d.state, "yellow")
            circuit_rows.append([escape(d.id), escape(d.provider), f"[{colour}]{d.state}[/]", f"{d.retry_in:g}s",
                                 str(d.circuit_opened)])
        tables.show(console, "deployments (circuit breakers)", CIRCUIT_COLUMNS, circuit_rows)
