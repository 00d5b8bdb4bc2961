"""``podium eval DATASET --online``: stream the dataset through the bandit router, print and write results."""

from __future__ import annotations

import typer

from podium.errors import ConfigError


def run_online_eval(dataset: str, *, online: bool, explore: float | None, knob: float | None, seed: int,
                    out: str, others: list[str] | None = None) -> None:
    """Print the Markdown tables; write ``<name>-online.md`` and ``<name>-online.svg`` under ``out``."""
    from podium.evaluation.online import check_settings, simulate
    from podium.evaluation.online_report import markdown_online, svg_online

    if not online:
        raise ConfigError("--explore and --knob apply to the online simulation: add --online")
    if others:
        raise ConfigError(f"--online replays the bandit alone: drop {', '.join(others)} (or run them without --online)")
    explore = 0.1 if explore is None else explore
    knob = 0.9 if knob is None else knob
    check_settings(explore, knob)  # before loading or embedding anything
    from podium.evaluation.dataset import load_dataset
    from podium.evaluation.embedding_cache import embed_prompts
    from podium.evaluation.report import write_outputs

    data = load_dataset(dataset)
    if len(data) < 2:
        raise ConfigError(f"{data.name}: an online run needs at least 2 prompts, got {len(data)}")
    run = simulate(data, embed_prompts(data.prompts), explore=explore, knob=knob, seed=seed)
    table = markdown_online(run)
    md, svg = write_outputs(out, {f"{data.name}-online.md": (f"# podium eval --online: {data.name}\n\n{table}",
                                                             "report"),
                                  f"{data.name}-online.svg": (svg_online(run), "chart")})
    typer.echo(table)
    typer.echo(f"wrote {md} and {svg}")
