"""The ledger's tables, as ordered migrations. The same statements serve SQLite and PostgreSQL
(types are kept to the common subset), so a report reads either store the same way."""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE IF NOT EXISTS requests (
    request_id      TEXT PRIMARY KEY,
    started_at      DOUBLE PRECISION NOT NULL,
    finished_at     DOUBLE PRECISION,
    requested_model TEXT,
    model           TEXT,
    provider        TEXT,
    task_type       TEXT,
    strategy        TEXT NOT NULL,
    user_id         TEXT,
    tags            TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL,
    error           TEXT,
    rationale       TEXT,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost            DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms      DOUBLE PRECISION,
    calls           INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS calls (
    request_id          TEXT NOT NULL,
    seq                 INTEGER NOT NULL,
    started_at          DOUBLE PRECISION NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    step                TEXT,
    status              TEXT NOT NULL,
    error               TEXT,
    input_tokens        INTEGER NOT NULL DEFAULT 0,
    output_tokens       INTEGER NOT NULL DEFAULT 0,
    cached_input_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens    INTEGER NOT NULL DEFAULT 0,
    cost                DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms          DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (request_id, seq)
);
CREATE INDEX IF NOT EXISTS calls_model ON calls (model);
CREATE INDEX IF NOT EXISTS requests_started ON requests (started_at);
"""),
    (2, """
ALTER TABLE requests ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN fallbacks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN deployment TEXT;
ALTER TABLE requests ADD COLUMN notes TEXT;
"""),
    (3, """
CREATE TABLE IF NOT EXISTS feedback (
    request_id  TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    score       DOUBLE PRECISION,
    label       TEXT,
    comment     TEXT
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
"""),
    # Who made a request and who gave feedback: the virtual key's id (never the key) and its team.
    (4, """
ALTER TABLE requests ADD COLUMN key_id TEXT;
ALTER TABLE requests ADD COLUMN team TEXT;
CREATE INDEX IF NOT EXISTS requests_key ON requests (key_id);
ALTER TABLE feedback ADD COLUMN key_id TEXT;
"""),
    # Opt-in (ledger.store_embeddings): each request's prompt embedding, never its text, and the model that
    # answered, for training a learned router from feedback. BYTEA is PostgreSQL's bytes type; SQLite stores
    # a bytes value as a BLOB whatever the declared type.
    (5, """
CREATE TABLE IF NOT EXISTS request_embeddings (
    request_id  TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    embedding   BYTEA NOT NULL,
    dims        INTEGER NOT NULL
);
"""),
    # A/B experiments: the experiment and arm that served a request (podium.experiments.assignment); and
    # shadow trials: a served request also sent to a candidate in the background, compared and priced
    # (podium.experiments.shadow). The shadow's own calls are call rows under ``shadow_id``, which has no
    # request row: they count in what each model cost, never in a key's or team's budget.
    (6, """
ALTER TABLE requests ADD COLUMN experiment TEXT;
ALTER TABLE requests ADD COLUMN arm TEXT;
CREATE INDEX IF NOT EXISTS requests_experiment ON requests (experiment, arm);
CREATE TABLE IF NOT EXISTS shadow_trials (
    request_id        TEXT NOT NULL,
    trial             TEXT NOT NULL,
    created_at        DOUBLE PRECISION NOT NULL,
    task_type         TEXT,
    candidate         TEXT NOT NULL,
    status            TEXT NOT NULL,
    agreed            INTEGER,
    score             DOUBLE PRECISION,
    served_model      TEXT,
    served_cost       DOUBLE PRECISION NOT NULL DEFAULT 0,
    served_latency_ms DOUBLE PRECISION,
    candidate_cost    DOUBLE PRECISION NOT NULL DEFAULT 0,
    judge_cost        DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms        DOUBLE PRECISION,
    shadow_id         TEXT,
    error             TEXT
);
CREATE INDEX IF NOT EXISTS shadow_trials_trial ON shadow_trials (trial, created_at);
"""),
    # The dashboard (podium.dashboard.queries): covering indexes that answer its time-range pages from the
    # index alone — the overview of 1,000,000 requests read 575 MB of rows, and calls had no time index at
    # all. requests_overview starts with started_at, so it replaces requests_started (one index per row
    # written, as before, on requests; calls rows are appended in time order, at the index's right edge).
    (7, """
CREATE INDEX IF NOT EXISTS requests_overview ON requests (started_at, status, strategy, cost, retries, fallbacks,
    input_tokens, output_tokens);
DROP INDEX IF EXISTS requests_started;
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at, status, model, provider, latency_ms, input_tokens,
    output_tokens, cost);
"""),
    # Automatic labels for learned routers (podium.strategies.labels), written with ledger.store_embeddings
    # beside the request's embedding: per member model of a vote or consensus whether it agreed with a strict
    # majority, per cascade step whether the verifier accepted it. Explicit feedback stays in ``feedback``.
    (8, """
CREATE TABLE IF NOT EXISTS labels (
    request_id  TEXT NOT NULL,
    model       TEXT NOT NULL,
    source      TEXT NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_request ON labels (request_id);
"""),
    # Time to first token of a streamed call (podium.invoke: from the call's start to its first chunk), for the
    # dashboard's models page; NULL for a call that was not streamed or ended before its first chunk. A partial
    # index, so only streamed calls pay for it and the page's percentiles read the index alone.
    (9, """
ALTER TABLE calls ADD COLUMN ttft_ms DOUBLE PRECISION;
CREATE INDEX IF NOT EXISTS calls_ttft ON calls (started_at, model, provider, ttft_ms) WHERE ttft_ms IS NOT NULL;
"""),
)

LATEST = MIGRATIONS[-1][0]

# The statements every store runs, with ``?`` placeholders (PostgreSQL's store converts them).
INSERT_REQUEST = ("INSERT INTO requests (request_id, started_at, requested_model, task_type, strategy, user_id, tags,"
                  " key_id, team, experiment, arm, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')")
INSERT_CALL = ("INSERT INTO calls (request_id, started_at, provider, model, status, latency_ms, input_tokens,"
               " output_tokens, cached_input_tokens, reasoning_tokens, cost, error, step, ttft_ms, seq)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
FINISH_REQUEST = ("UPDATE requests SET finished_at = ?, status = ?, model = ?, provider = ?, input_tokens = ?,"
                  " output_tokens = ?, cost = ?, latency_ms = ?, calls = ?, error = ?, rationale = ?, retries = ?,"
                  " fallbacks = ?, deployment = ?, notes = ? WHERE request_id = ?")
INSERT_FEEDBACK = ("INSERT INTO feedback (request_id, created_at, score, label, comment, key_id)"
                   " VALUES (?, ?, ?, ?, ?, ?)")
INSERT_EMBEDDING = "INSERT INTO request_embeddings (request_id, model, embedding, dims) VALUES (?, ?, ?, ?)"
INSERT_LABEL = "INSERT INTO labels (request_id, model, source, score, created_at) VALUES (?, ?, ?, ?, ?)"
REQUEST_EMBEDDING = "SELECT model, embedding, dims FROM request_embeddings WHERE request_id = ?"
INSERT_SHADOW = ("INSERT INTO shadow_trials (request_id, trial, created_at, task_type, candidate, status, agreed,"
                 " score, served_model, served_cost, served_latency_ms, candidate_cost, judge_cost, latency_ms,"
                 " shadow_id, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
REQUEST_OWNER = "SELECT key_id FROM requests WHERE request_id = ?"
SPENT_BY_KEY = ("SELECT SUM(c.cost) FROM calls c JOIN requests r ON r.request_id = c.request_id"
                " WHERE r.key_id = ? AND r.started_at >= ?")
SPENT_BY_TEAM = ("SELECT SUM(c.cost) FROM calls c JOIN requests r ON r.request_id = c.request_id"
                 " WHERE r.team = ? AND r.started_at >= ?")
USAGE_BY_KEY = ("SELECT COUNT(*), SUM(c.cost), SUM(c.input_tokens), SUM(c.output_tokens), SUM(c.latency_ms)"
                " FROM calls c JOIN requests r ON r.request_id = c.request_id WHERE r.key_id = ? AND r.started_at >= ?")
