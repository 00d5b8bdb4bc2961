"""``podium router train --ledger LEDGER [--labels feedback,agreement,verifier]``: fit a learned router on
what the gateway recorded — the stored prompt embeddings (``ledger.store_embeddings``) of requests that got
feedback or automatic labels from votes, consensus and verifier cascades — and write the file
``routing.router: learned`` loads (``podium.routing.learned.ledger_labels``)."""

from __future__ import annotations

import typer

from podium.errors import ConfigError


def run_router_train_ledger(ledger: str | None, dataset: str | None, *, kind: str, knob: float, out: str,
                            labels_kinds: str | None = None) -> None:
    from podium.routing.learned.files import save_router
    from podium.routing.learned.ledger_labels import DEFAULT_KINDS, is_dsn, parse_kinds, train_from_ledger
    from podium.routing.learned.training import KINDS
    from podium.safe_files import check_writable_target

    if ledger is None:
        raise ConfigError("podium router train needs a DATASET (an eval .jsonl or a RouteLLM folder) or --ledger "
                          "LEDGER (a SQLite ledger file or a PostgreSQL DSN)")
    if dataset is not None:
        raise ConfigError("give either a DATASET or --ledger, not both")
    if kind not in KINDS:
        raise ConfigError(f"unknown --kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not 0 <= knob <= 1:
        raise ConfigError(f"--knob must lie in [0, 1] (0 cheapest, 1 best), got {knob}")
    kinds = DEFAULT_KINDS if labels_kinds is None else parse_kinds(labels_kinds)
    check_writable_target(out, "router file")  # before reading the ledger: --out /dev/null is refused
    router, labels = train_from_ledger(ledger, kind, knob, kinds=kinds)
    import numpy as np

    means = np.nanmean(labels.outcomes, axis=0)
    per_model = ", ".join(f"{m} {n} (mean reward {means[j]:.2f})" for j, (m, n) in enumerate(labels.labels.items()))
    source = "the PostgreSQL ledger" if is_dsn(ledger) else ledger
    typer.echo(f"{kind} router on {source}: {len(labels):,} labelled requests with stored embeddings "
               f"(per model: {per_model}); {labels.ignored} feedback rows were no 0..1 score or good/bad label")
    used = ", ".join(f"{source} {n}" for source, n in sorted(labels.sources.items())) or "none"
    typer.echo(f"labels ({', '.join(kinds)}) used: {used}; explicit feedback outranks a strategy's label for the "
               "model that answered")
    typer.echo("fitted on the outcomes the ledger knows (feedback for the answering model, strategy labels for "
               "members; the rest unknown); no held-out metrics: check it with podium eval on a dataset, or as an A/B "
               "experiment")
    path = save_router(router, out)
    typer.echo(f"wrote {path}")
