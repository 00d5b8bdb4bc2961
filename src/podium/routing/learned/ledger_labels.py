"""Training rows from the ledger: the stored prompt embeddings of requests that got feedback or labels.

With ``ledger.store_embeddings: true`` the ledger keeps each answered request's prompt embedding and
the model that answered (``request_embeddings``, never the text); ``/v1/feedback`` adds scores and
labels. Each such request becomes one row: its embedding, and for the model that answered its latest
usable reward (a score in [0, 1] as it is, a good/bad label as 1/0, anything else left out; see
``podium.learned_runtime.reward_of``) — the newest feedback row replaces earlier ones, so a request
told "bad" 300 times is one row with one outcome, exactly like a request told once. Every other
model's outcome is unknown (NaN) unless a strategy labelled it (below), which every learner fits
around. A model's overall chance of success is then the mean of its labels, as the learners' base
rates read it. Text features are off (the ledger has no text).

Strategies add automatic labels (``labels`` table, :mod:`podium.strategies.labels`): a vote's or
consensus's members scored 1/0 by agreement with a strict majority (``agreement``), a cascade step by its
verifier's YES/NO (``verifier``). These fill the row's other models too — a vote of three teaches about
all three on one prompt. Per request and model the outcome is the mean of that model's labels, with one
rule: **explicit feedback outranks automatic labels** — for the model that answered (the embedding row's
model), a request with usable feedback takes the mean of its feedback only; the automatic labels count
for it only when there is no feedback. ``--labels`` chooses the kinds (default all three); a ledger
written before the labels table existed simply has no automatic labels. Each model's cost is then the
mean of its requests' costs (feedback rows) and of its calls' costs (labelled members).

``podium router train --ledger LEDGER`` reads a SQLite file or a PostgreSQL DSN and hands the rows
to :func:`podium.routing.learned.training.fit_learner`, as a dataset's rows are.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from podium.errors import ConfigError
from podium.routing.learned.common import DIMENSIONS, Learner
from podium.routing.learned.contract import Floats, Vectors

QUERY = ("SELECT e.request_id, e.model, e.embedding, e.dims, f.score, f.label, r.cost"
         " FROM request_embeddings e JOIN feedback f ON f.request_id = e.request_id"
         " LEFT JOIN requests r ON r.request_id = e.request_id ORDER BY e.request_id, f.created_at")
# The automatic labels: per label row, the request's embedding and the labelled model's mean call cost.
LABEL_QUERY = ("SELECT l.request_id, l.model, l.source, l.score, e.embedding, e.dims,"
               " (SELECT AVG(c.cost) FROM calls c WHERE c.request_id = l.request_id AND c.model = l.model"
               " AND c.status = 'ok') FROM labels l JOIN request_embeddings e ON e.request_id = l.request_id"
               " ORDER BY l.request_id")
KINDS: dict[str, tuple[str, ...]] = {"feedback": (), "agreement": ("vote", "consensus"), "verifier": ("verifier",)}
DEFAULT_KINDS = tuple(KINDS)
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
    sources: dict[str, int] = field(default_factory=dict)  # label rows used per source (feedback: requests, …)

    def __len__(self) -> int:
        return len(self.embeddings)


def is_dsn(source: str) -> bool:
    return source.startswith(("postgresql://", "postgres://")) or "dbname=" in source or "host=" in source


def parse_kinds(raw: str) -> tuple[str, ...]:
    """``--labels feedback,agreement,verifier`` → the kinds, checked (a ``ConfigError`` names a wrong one)."""
    kinds = tuple(dict.fromkeys(k.strip() for k in raw.split(",") if k.strip()))
    wrong = [k for k in kinds if k not in KINDS]
    if wrong or not kinds:
        raise ConfigError(f"--labels takes a comma-separated list of {', '.join(KINDS)}, not {raw!r}")
    return kinds


@dataclass(frozen=True)
class LedgerRows:
    """What the ledger holds for training: feedback rows (``QUERY``) and automatic label rows (``LABEL_QUERY``)."""

    feedback: list[tuple[Any, ...]]
    automatic: list[tuple[Any, ...]] = field(default_factory=list)


def read_rows(source: str) -> LedgerRows:
    """The joined rows from a SQLite ledger file or a PostgreSQL DSN (no label rows from a ledger older
    than the labels table)."""
    if is_dsn(source):
        import psycopg

        from podium.ledger.postgres import connect_kwargs, unreachable

        try:
            with psycopg.connect(source, **connect_kwargs(source)) as conn:
                feedback = [tuple(row) for row in conn.execute(QUERY)]
                if conn.execute("SELECT to_regclass('labels')").fetchone() in (None, (None,)):
                    return LedgerRows(feedback)
                return LedgerRows(feedback, [tuple(row) for row in conn.execute(LABEL_QUERY)])
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
            feedback = [tuple(row) for row in conn.execute(QUERY)]
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'labels'").fetchone() is None:
                return LedgerRows(feedback)
            return LedgerRows(feedback, [tuple(row) for row in conn.execute(LABEL_QUERY)])
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is not a Podium ledger with stored embeddings ({exc}); point --ledger at the "
                          "ledger a gateway with ledger.store_embeddings: true wrote") from None


def _usable(dims: Any, blob: Any) -> bool:
    """Whether a stored vector is the router's embedder's (another embedder's vectors are not comparable)."""
    return int(dims) == DIMENSIONS and len(bytes(blob)) == 4 * DIMENSIONS


def labels_from_rows(rows: LedgerRows | list[tuple[Any, ...]], models: tuple[str, ...] | None = None,
                     kinds: tuple[str, ...] = DEFAULT_KINDS) -> LedgerLabels:
    """One training row per request from its feedback rows (request id, model, embedding bytes, dims, score,
    label, cost) and its automatic label rows (request id, model, source, score, embedding bytes, dims,
    cost), of the ``kinds`` asked for; explicit feedback outranks automatic labels (module docstring)."""
    from podium.learned_runtime import reward_of

    found = rows if isinstance(rows, LedgerRows) else LedgerRows(rows)
    feedback: dict[str, float] = {}  # request → the latest reward of the model that answered
    automatic: dict[tuple[str, str], list[float]] = defaultdict(list)  # (request, model) → label scores
    answered: dict[str, str] = {}
    vectors: dict[str, bytes] = {}
    costs_of: dict[tuple[str, str], float] = {}  # (request, model) → what that model cost there
    sources: Counter[str] = Counter()
    ignored = 0
    if "feedback" in kinds:
        for request_id, model, blob, dims, score, label, cost in found.feedback:
            if not _usable(dims, blob):
                continue
            reward = reward_of(None if score is None else float(score), label)
            if reward is None:
                ignored += 1
                continue
            if request_id not in feedback:
                sources["feedback"] += 1  # one per request: repeated feedback on it does not weigh more
            feedback[request_id] = reward  # rows come oldest first: the latest usable one wins
            answered[request_id], vectors[request_id] = str(model), bytes(blob)
            if cost is not None:
                costs_of[(request_id, str(model))] = float(cost)
    wanted = {source for kind in kinds for source in KINDS[kind]}
    for request_id, model, source, score, blob, dims, cost in found.automatic:
        if source not in wanted or not _usable(dims, blob):
            continue
        if answered.get(request_id) == model:
            continue  # this model's answer got explicit feedback: that is its outcome
        automatic[(request_id, str(model))].append(float(score))
        vectors.setdefault(request_id, bytes(blob))
        sources[str(source)] += 1
        if cost is not None:
            costs_of.setdefault((request_id, str(model)), float(cost))
    outcome: dict[str, dict[str, float]] = defaultdict(dict)
    for request_id, reward in feedback.items():
        outcome[request_id][answered[request_id]] = reward
    for (request_id, model), scores in automatic.items():
        outcome[request_id][model] = float(np.mean(scores))
    chosen = models or tuple(sorted({m for known in outcome.values() for m in known}))
    column = {m: j for j, m in enumerate(chosen)}
    kept = [r for r in sorted(outcome) if column.keys() & outcome[r].keys()]
    x = np.zeros((len(kept), DIMENSIONS), dtype=np.float32)
    y = np.full((len(kept), len(chosen)), np.nan)
    spent: dict[str, list[float]] = defaultdict(list)
    for i, request_id in enumerate(kept):
        x[i] = np.frombuffer(vectors[request_id], dtype="<f4")
        for model, value in outcome[request_id].items():
            if model in column:
                y[i, column[model]] = value
                if (cost := costs_of.get((request_id, model))) is not None:
                    spent[model].append(cost)
    counts = {m: int((~np.isnan(y[:, j])).sum()) for m, j in column.items()}
    costs = {m: float(np.mean(v)) for m, v in spent.items() if v}
    return LedgerLabels(x, y, chosen, costs, counts, ignored, dict(sources))


def train_from_ledger(source: str, kind: str, knob: float, *, models: tuple[str, ...] | None = None,
                      where: str | None = None, kinds: tuple[str, ...] = DEFAULT_KINDS) -> tuple[Learner, LedgerLabels]:
    """A ``kind`` router fitted on the ledger's labelled requests (labels of ``kinds``), and the rows it was
    fitted on."""
    from podium.routing.learned.training import fit_learner

    labels = labels_from_rows(read_rows(source), models, kinds)
    lacking = [m for m, n in labels.labels.items() if n == 0]
    if len(labels.models) < 2 or lacking:
        have = ", ".join(f"{m} {n}" for m, n in labels.labels.items()) or "none"
        raise ConfigError(f"a learned router needs labelled requests for two or more models; the ledger has "
                          f"{len(labels)} labelled requests with stored embeddings (per model: {have}). Store "
                          "embeddings (ledger.store_embeddings: true), send feedback to /v1/feedback or run votes, "
                          "consensus or verifier cascades, and let more than one model answer (routing rules, "
                          f"explore, or named models); labels used: {', '.join(kinds)}")
    router = fit_learner(kind, labels.embeddings, labels.outcomes, labels.models, None, knob=knob,
                         costs=labels.costs, params=_TEXT_OFF.get(kind))
    router.info["training"] = {"ledger": where or ("PostgreSQL" if is_dsn(source) else Path(source).name),
                               "prompts": len(labels), "labels": labels.labels, "ignored_feedback": labels.ignored,
                               "sources": labels.sources}
    return router, labels
