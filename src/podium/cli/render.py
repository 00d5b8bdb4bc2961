"""Rich renderings shared by the commands: trace tree, cost line, tables."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from podium.catalogue import ModelInfo
from podium.cli import tables
from podium.cli.tables import Column
from podium.types import CallTrace, ChatResponse, Trace

console = Console()
err_console = Console(stderr=True)


def money(value: float) -> str:
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def _call_line(call: CallTrace, label: str) -> str:
    status = "[green]ok[/]" if call.status == "ok" else f"[red]{call.status}[/]"
    approx = "~" if call.usage_estimated else ""
    line = (f"{label}{call.model} ({call.provider}) {status} · {approx}{call.usage.input_tokens} in / "
            f"{approx}{call.usage.output_tokens} out · {money(call.cost)} · {call.latency_ms:.0f} ms")
    if call.usage_estimated:
        line += " · usage estimated (the provider reported none)"
    if call.error:
        line += f" · {escape(call.error)}"
    return line


def trace_tree(trace: Trace) -> Tree:
    """The route, then the calls as a tree: a step label ``round 2/agent 1`` nests under ``round 2``."""
    tree = Tree(f"[bold]{trace.request_id}[/] · strategy [cyan]{escape(trace.strategy)}[/]")
    if trace.decision is not None:
        d = trace.decision
        tree.add(f"route → [green]{escape(d.model)}[/] ({d.provider}) · {escape(d.rationale)} · "
                 f"est. ≤ {money(d.estimated_cost)} · confidence {d.confidence:.2f}")
    groups: dict[str, Tree] = {}
    for call in trace.calls:
        parts = (call.step or "").split("/")
        parent = tree
        for depth in range(len(parts) - 1):
            key = "/".join(parts[: depth + 1])
            if key not in groups:
                groups[key] = parent.add(f"[cyan]{escape(parts[depth])}[/]")
            parent = groups[key]
        leaf = parts[-1]
        parent.add(_call_line(call, f"{escape(leaf)}: " if leaf else "call "))
    if trace.notes:
        notes = tree.add("[dim]decisions[/]")
        for note in trace.notes:
            notes.add(f"[dim]{escape(note)}[/]")
    total = sum(c.cost for c in trace.calls)
    tree.add(f"[bold]{len(trace.calls)} calls · {money(total)}[/]")
    return tree


def cost_line(response: ChatResponse, baseline: ModelInfo | None) -> str:
    usage = response.usage
    line = (f"cost {money(response.cost)} · {usage.input_tokens} in / {usage.output_tokens} out tokens · "
            f"{response.latency_ms:.0f} ms · {response.model} ({response.provider})")
    if baseline is not None and baseline.name != response.model:
        would = baseline.cost_of(usage)
        line += f" · saved {money(would - response.cost)} vs {baseline.name}"
    return line


MODEL_COLUMNS = (
    Column("name", identifier=True), Column("provider", identifier=True, drop=1), Column("tier", drop=4),
    Column("region", drop=3), Column("context", drop=2, justify="right"), Column("$/M in", drop=5, justify="right"),
    Column("$/M out", drop=5, justify="right"), Column("capabilities", drop=6, wrap=True),
)


def show_models(models: list[ModelInfo], enabled: set[str]) -> None:
    """The catalogue table: names and providers whole; capabilities, prices, tier… left out when narrow."""
    rows = []
    for m in sorted(models, key=lambda m: (m.provider, m.blended_price)):
        provider = escape(m.provider) if m.provider in enabled else f"[dim]{escape(m.provider)} (off)[/]"
        rows.append([escape(m.name), provider, m.tier, m.region, f"{m.context_window:,}", f"{m.input_price:g}",
                     f"{m.output_price:g}", ", ".join(sorted(m.capabilities))])
    tables.show(console, f"{len(models)} models", MODEL_COLUMNS, rows)
