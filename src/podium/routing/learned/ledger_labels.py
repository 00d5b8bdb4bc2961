"""Training rows from the ledger: the stored prompt embeddings of requests that got feedback.

With ``ledger.store_embeddings: true`` the ledger keeps each answered request's prompt embedding and
the model that answered (``request_embeddings``, never the text); ``/v1/feedback`` adds scores and
labels. Each such request becomes one row: its embedding, and for the model that answered the mean of
its rewards (a score in [0, 1] as it is, a good/bad label as 1/0, anything else left out; see
``podium.learned_runtime.reward_of``) — every other model's outcome is unknown (NaN), which every
learner fits around. A model's overall chance of success is then the mean of its labels, as the
learners' base rates read it. Text features are off (the ledger has no text), and each model's cost
is its mean cost per request in the ledger.

``podium router train --ledger LEDGER`` reads a SQLite file or a PostgreSQL DSN and hands the rows
to :func:`podium.routing.learned.training.fit_learner`, as a dataset's rows are.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from podium.errors import ConfigError
from podium.routing.learned.common import DIMENSIONS, Learner
from podium.routing.learned.contract import Floats, Vectors

QUERY = ("SELECT e.request_id, e.model, e.embedding, e.dims, f.score, f.label, r.cost"
         " FROM request_embeddings e JOIN feedback f ON f.request_id = e.request_id"
         " LEFT JOIN requests r ON r.request_id = e.request_id ORDER BY e.request_id")
_TEXT_OFF: dict[str, dict[str, Any]] = {"logistic": {"text": False}, "mlp": {"text": False},
                                         "ensemble": {"logistic": {"text": False}}}


@dataclass(frozen=True)
class LedgerLabels:
    """One row per labelled request: its embedding and the answering model's mean reward (NaN elsewhere)."""

    embeddings: Vectors
    outcomes: Floats
    models: tuple[str, ...]
    costs: dict[str, float] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # labelled requests per model
    ignored: int = 0  # feedback rows that were no reward (a score outside 0..1, a free-form label)

    def __len__(self) -> int:
        return len(self.embeddings)


def is_dsn(source: str) -> bool:
    return source.startswith(("postgresql://", "postgres://")) or "dbname=" in source or "host=" in source


def read_rows(source: str) -> list[tuple[Any, ...]]:
    """The joined rows from a SQLite ledger file or a PostgreSQL DSN."""
    if is_dsn(source):
        import psycopg

        from podium.ledger.postgres import connect_kwargs, unreachable

        try:
            with psycopg.connect(source, **connect_kwargs(source)) as conn:
                return [tuple(row) for row in conn.execute(QUERY)]
        except psycopg.errors.UndefinedTable:
            raise ConfigError("that PostgreSQL ledger has no request_embeddings table yet: run the gateway once "
                              "with ledger.store_embeddings: true") from None
        except psycopg.OperationalError as exc:
            raise unreachable(source, "ledger", exc) from None
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(f"no ledger at {path}: give --ledger a SQLite ledger file or a PostgreSQL DSN "
                          "(postgresql://user@host/db)")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return [tuple(row) for row in conn.execute(QUERY)]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is not a Podium ledger with stored embeddings ({exc}); point --ledger at the "
                          "ledger a gateway with ledger.store_embeddings: true wrote") from None


def labels_from_rows(rows: list[tuple[Any, ...]], models: tuple[str, ...] | None = None) -> LedgerLabels:
    """Rows (request id, model, embedding bytes, dims, score, label, cost) → one training row per request."""
    from podium.learned_runtime import reward_of

    rewards: dict[str, list[float]] = defaultdict(list)
    info: dict[str, tuple[str, bytes, float | None]] = {}
    ignored = 0
    for request_id, model, blob, dims, score, label, cost in rows:
        if int(dims) != DIMENSIONS or len(bytes(blob)) != 4 * DIMENSIONS:
            continue  # another embedder's vectors: not comparable with the router's
        reward = reward_of(None if score is None else float(score), label)
        if reward is None:
            ignored += 1
            continue
        rewards[request_id].append(reward)
        info[request_id] = (str(model), bytes(blob), None if cost is None else float(cost))
    chosen = models or tuple(sorted({info[r][0] for r in rewards}))
    column = {m: j for j, m in enumerate(chosen)}
    kept = [r for r in rewards if info[r][0] in column]
    x = np.zeros((len(kept), DIMENSIONS), dtype=np.float32)
    y = np.full((len(kept), len(chosen)), np.nan)
    spent: dict[str, list[float]] = defaultdict(list)
    for i, request_id in enumerate(kept):
        model, blob, cost = info[request_id]
        x[i] = np.frombuffer(blob, dtype="<f4")
        y[i, column[model]] = float(np.mean(rewards[request_id]))
        if cost is not None:
            spent[model].append(cost)
    counts = {m: int((~np.isnan(y[:, j])).sum()) for m, j in column.items()}
    costs = {m: float(np.mean(v)) for m, v in spent.items() if v}
    return LedgerLabels(x, y, chosen, costs, counts, ignored)


def train_from_ledger(source: str, kind: str, knob: float, *, models: tuple[str, ...] | None = None,
                      where: str | None = None) -> tuple[Learner, LedgerLabels]:
    """A ``kind`` router fitted on the ledger's labelled requests, and the rows it was fitted on."""
    from podium.routing.learned.training import fit_learner

    labels = labels_from_rows(read_rows(source), models)
    lacking = [m for m, n in labels.labels.items() if n == 0]
    if len(labels.models) < 2 or lacking:
        have = ", ".join(f"{m} {n}" for m, n in labels.labels.items()) or "none"
        raise ConfigError(f"a learned router needs labelled requests for two or more models; the ledger has "
                          f"{len(labels)} labelled requests with stored embeddings (per model: {have}). Store "
                          "embeddings (ledger.store_embeddings: true), send feedback to /v1/feedback, and let more "
                          "than one model answer (routing rules, explore, or named models)")
    router = fit_learner(kind, labels.embeddings, labels.outcomes, labels.models, None, knob=knob,
                         costs=labels.costs, params=_TEXT_OFF.get(kind))
    router.info["training"] = {"ledger": where or ("PostgreSQL" if is_dsn(source) else Path(source).name),
                               "prompts": len(labels), "labels": labels.labels, "ignored_feedback": labels.ignored}
    return router, labels
