"""``podium eval``: load a dataset, cross-fit and score the baselines and any learned routers, print and
write the results."""

from __future__ import annotations

import typer

from podium.errors import ConfigError

LEARNED_NOTE = ("Learned routers (all-MiniLM-L6-v2 embeddings; logistic/mlp add length, digit, code and math "
                "features of the text) score a prompt 1 - P(weak)/P(strong), the order in which the gateway's "
                "knob sends prompts to the strong model.")


def run_eval(dataset: str, *, folds: int, seed: int, out: str, routers: str = "",
             train_on: str | None = None, cascade: bool = False,
             target: float | None = None) -> None:
    """Print the Markdown table; write ``<name>.md`` and ``<name>.svg`` under ``out``."""
    if cascade or target is not None:
        if not cascade:
            raise ConfigError("--target calibrates a cascade's threshold: add --cascade")
        from podium.evaluation import cascade_replay

        typer.echo(cascade_replay.run(dataset, folds=folds, seed=seed, out=out, target=target))
        return
    from podium.evaluation.dataset import load_dataset
    from podium.evaluation.learned import EmbeddingTable, learned_routers, pick_report, pick_table, transfer_scores
    from podium.evaluation.replay import EvalResult, evaluate, score_router
    from podium.evaluation.report import markdown_table, svg_curves, write_outputs
    from podium.evaluation.routers import baselines

    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    kinds = [k.strip() for k in routers.split(",") if k.strip()]
    table = EmbeddingTable()
    learned = learned_routers(kinds, table)
    if train_on is not None and not learned:
        raise ConfigError("--train-on needs learned routers to fit: add e.g. --router knn,logistic")
    data = load_dataset(dataset)
    source = load_dataset(train_on) if train_on is not None else None
    if learned:
        table.add(data.prompts)
    result = evaluate(data, [*baselines(seed), *learned], folds, seed)
    extra = []
    if source is not None:
        if {data.strong, data.weak} - set(source.all_models):
            raise ConfigError(f"--train-on {source.name} has models {list(source.all_models)}, not {data.name}'s "
                              f"{data.strong} and {data.weak}")
        table.add(source.prompts)
        c_min, c_max = float(data.weak_cost.mean()), float(data.strong_cost.mean())
        extra = [score_router(f"{r.kind} (trained on {source.name})", transfer_scores(r.kind, source, data, table),
                              data, c_min, c_max, cross_fitted=False) for r in learned]
        last = len(result.routers) - 1  # the oracle stays last
        result = EvalResult(result.dataset, result.folds, result.seed, result.strong_accuracy, result.weak_accuracy,
                            result.routers[:last] + extra + result.routers[last:])
    text = markdown_table(result)
    if learned:
        text += LEARNED_NOTE + "\n"
    if source is not None:
        text += (f"Rows marked 'trained on {source.name}' were fitted on all of {source.name} and scored on every "
                 f"{data.name} prompt: not cross-fitted, and out of domain.\n")
    if learned and len(data.all_models) > 2:
        for r in learned:
            rows = pick_report(data, r.kind, r.chances_for(data), r.models)
            text += (f"\n{r.kind}: the cheapest model whose chance clears knob x best chance, cross-fitted "
                     f"(share of prompts per model):\n\n" + pick_table(rows, r.models))
    md, svg = write_outputs(out, {f"{data.name}.md": (f"# podium eval: {data.name}\n\n{text}", "report"),
                                  f"{data.name}.svg": (svg_curves(result), "chart")})
    typer.echo(text)
    typer.echo(f"wrote {md} and {svg}")
