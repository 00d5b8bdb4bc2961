"""``podium models`` and ``podium providers check``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

from rich.table import Table

from podium.cli.render import console, models_table
from podium.client import Podium


def run_models(*, capability: str | None, tier: str | None, provider: str | None, region: str | None,
               max_cost: float | None, min_context: int | None, all_models: bool, json_output: bool,
               config: str | None) -> None:
    podium = Podium.from_config(config, ledger=None)
    registry = podium.registry
    found = registry.list_models(capability, tier, max_cost, provider, region, min_context,
                                 include_unavailable=all_models)
    if json_output:
        print(json.dumps([m.model_dump(mode="json") for m in found], indent=2))
        return
    console.print(models_table(found, set(registry.list_providers())))
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
    table = Table(title="providers")
    for column in ("provider", "kind", "state", "why", "health"):
        table.add_column(column)
    for row in rows:
        state = "[green]on[/]" if row["enabled"] else "[dim]off[/]"
        healthy = row["healthy"]
        health_text = "" if healthy is None else ("[green]ok[/] " if healthy else "[red]down[/] ") + str(
            row["detail"])
        table.add_row(str(row["provider"]), str(row["kind"]), state, str(row["why"]), health_text)
    console.print(table)
    if blocked:
        table = Table(title="models that cannot run here (never routed to)")
        for column in ("model", "provider", "why"):
            table.add_column(column)
        for item in blocked:
            table.add_row(item["model"], item["provider"], item["why"])
        console.print(table)
    if deployments:
        circuits = Table(title="deployments (circuit breakers)")
        for column in ("deployment", "provider", "circuit", "retry in", "opened"):
            circuits.add_column(column)
        for d in deployments:
            colour = {"closed": "green", "open": "red"}.get(d.state, "yellow")
            circuits.add_row(d.id, d.provider, f"[{colour}]{d.state}[/]", f"{d.retry_in:g}s", str(d.circuit_opened))
        console.print(circuits)
