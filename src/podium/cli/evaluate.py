"""``podium eval``: load a dataset, cross-fit and score the baselines, print and write the results."""

from __future__ import annotations

from pathlib import Path

import typer

from podium.errors import ConfigError


def run_eval(dataset: str, *, folds: int, seed: int, out: str, cascade: bool = False,
             target: float | None = None) -> None:
    """Print the Markdown table; write ``<name>.md`` and ``<name>.svg`` under ``out``."""
    if cascade or target is not None:
        if not cascade:
            raise ConfigError("--target calibrates a cascade's threshold: add --cascade")
        from podium.evaluation import cascade_replay

        typer.echo(cascade_replay.run(dataset, folds=folds, seed=seed, out=out, target=target))
        return
    from podium.evaluation.dataset import load_dataset
    from podium.evaluation.replay import evaluate
    from podium.evaluation.report import markdown_table, svg_curves
    from podium.evaluation.routers import baselines

    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    data = load_dataset(dataset)
    result = evaluate(data, baselines(seed), folds, seed)
    table = markdown_table(result)
    target = Path(out)
    try:
        target.mkdir(parents=True, exist_ok=True)
        md, svg = target / f"{data.name}.md", target / f"{data.name}.svg"
        md.write_text(f"# podium eval: {data.name}\n\n{table}", encoding="utf-8")
        svg.write_text(svg_curves(result), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write to {target}: {exc.strerror or exc}") from None
    typer.echo(table)
    typer.echo(f"wrote {md} and {svg}")
