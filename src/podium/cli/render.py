"""Rich renderings shared by the commands: trace tree, cost line, tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from podium.catalogue import ModelInfo
from podium.types import ChatResponse, Trace

console = Console()
err_console = Console(stderr=True)


def money(value: float) -> str:
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def trace_tree(trace: Trace) -> Tree:
    tree = Tree(f"[bold]{trace.request_id}[/] · strategy [cyan]{trace.strategy}[/]")
    if trace.decision is not None:
        d = trace.decision
        tree.add(f"route → [green]{d.model}[/] ({d.provider}) · {d.rationale} · "
                 f"est. ≤ {money(d.estimated_cost)} · confidence {d.confidence:.2f}")
    for call in trace.calls:
        status = "[green]ok[/]" if call.status == "ok" else f"[red]{call.status}[/]"
        label = f"{call.step}: " if call.step else ""
        approx = "~" if call.usage_estimated else ""
        line = (f"{label}call {call.model} ({call.provider}) {status} · {approx}{call.usage.input_tokens} in / "
                f"{approx}{call.usage.output_tokens} out · {money(call.cost)} · {call.latency_ms:.0f} ms")
        if call.usage_estimated:
            line += " · usage estimated (the provider reported none)"
        if call.error:
            line += f" · {call.error}"
        tree.add(line)
    for note in trace.notes:
        tree.add(f"[dim]{note}[/]")
    return tree


def cost_line(response: ChatResponse, baseline: ModelInfo | None) -> str:
    usage = response.usage
    line = (f"cost {money(response.cost)} · {usage.input_tokens} in / {usage.output_tokens} out tokens · "
            f"{response.latency_ms:.0f} ms · {response.model} ({response.provider})")
    if baseline is not None and baseline.name != response.model:
        would = baseline.cost_of(usage)
        line += f" · saved {money(would - response.cost)} vs {baseline.name}"
    return line


def models_table(models: list[ModelInfo], enabled: set[str]) -> Table:
    table = Table(title=f"{len(models)} models", show_lines=False)
    for column in ("name", "provider", "tier", "region", "context", "$/M in", "$/M out", "capabilities"):
        table.add_column(column, justify="right" if column.startswith(("$", "context")) else "left")
    for m in sorted(models, key=lambda m: (m.provider, m.blended_price)):
        provider = m.provider if m.provider in enabled else f"[dim]{m.provider} (off)[/]"
        table.add_row(m.name, provider, m.tier, m.region, f"{m.context_window:,}", f"{m.input_price:g}",
                      f"{m.output_price:g}", ", ".join(sorted(m.capabilities)))
    return table
