"""Strategy labels (``podium.strategies.labels``): a vote or consensus with a strict majority labels each
replying member 1/0, a cascade's verifier labels the step it judged; written to the ledger's ``labels`` table
beside the prompt's embedding (``ledger.store_embeddings``) on SQLite and the real PostgreSQL, never
without it; and ``podium router train --ledger --labels agreement`` learns from them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from learned_fixtures import CHAT, MATH, NEW_CHAT, NEW_MATH
from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError
from podium.ledger import InvalidRow, SQLiteLedger
from podium.providers.scripted import ScriptedProvider, Step
from podium.routing.learned.ledger_labels import LedgerRows, labels_from_rows, parse_kinds
from podium.strategies.base import last_user_text
from podium.strategies.labels import groups_of, majority
from podium.types import ChatRequest
from test_strategies import CONFIG

PODIUM = Path(sys.executable).with_name("podium")
SECRET = "My passport number is X9912345; which option, A, B or C?"


def build(tmp_path: Path, *, store: bool = True, dsn: str | None = None, **extra: Any) -> Podium:
    ledger: dict[str, Any] = {"path": str(tmp_path / "ledger.sqlite3"), "store_embeddings": store}
    if dsn is not None:
        ledger["postgres_dsn"] = dsn
    config = {**CONFIG, **extra, "ledger": ledger}
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "podium.yaml").write_text(json.dumps(config))
    return Podium(load_settings(tmp_path / "podium.yaml"))


def script(podium: Podium, model: str, value: Any) -> None:
    provider = podium.registry.get_provider(podium.settings.catalogue.get(model).provider)
    assert isinstance(provider, ScriptedProvider)
    provider.set_script(podium.settings.catalogue.get(model).model_id, value)


def labels(path: Path) -> list[tuple[str, str, str, float]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT request_id, model, source, score FROM labels ORDER BY model, source").fetchall()


async def run(podium: Podium, model: str, prompt: str = SECRET) -> str:
    try:
        return (await podium.chat(prompt, model=model)).id
    finally:
        await podium.aclose()


# --- vote and consensus ---------------------------------------------------------------------------------
async def test_a_vote_of_three_labels_the_two_that_agree_1_and_the_odd_one_0(tmp_path: Path):
    podium = build(tmp_path)
    for model, text in (("a1", "B"), ("b1", "Answer: (B)"), ("g1", "C.")):  # B and Answer: (B) are one vote
        script(podium, model, text)
    request_id = await run(podium, "vote:a1,b1,g1")
    ledger = tmp_path / "ledger.sqlite3"
    assert labels(ledger) == [(request_id, "a1", "vote", 1.0), (request_id, "b1", "vote", 1.0),
                              (request_id, "g1", "vote", 0.0)]
    with sqlite3.connect(ledger) as conn:
        assert conn.execute("SELECT COUNT(*) FROM request_embeddings").fetchone() == (1,)
        dump = "\n".join(conn.iterdump())
    assert "X9912345" not in dump and "passport" not in dump  # labels carry no prompt text


@pytest.mark.parametrize(("answers", "why"), [
    ({"a1": "A", "b1": "B"}, "two voters that disagree"),
    ({"a1": "A", "b1": "B", "g1": "C"}, "all disagree"),
    ({"a1": "A", "b1": "A", "g1": "B", "big": "B"}, "a 2-2 tie"),
    ({"a1": "A", "b1": "A", "g1": "B", "big": "C", "a2": "D"}, "a plurality short of half"),
    ({"a1": "A", "b1": "", "g1": ""}, "one answer among empties"),
])
async def test_no_clear_majority_labels_nobody(tmp_path: Path, answers: dict[str, str], why: str):
    podium = build(tmp_path)
    for model, text in answers.items():
        script(podium, model, text)
    await run(podium, "vote:" + ",".join(answers))
    assert labels(tmp_path / "ledger.sqlite3") == [], why


async def test_a_failed_voter_is_not_labelled_and_an_empty_one_is_0(tmp_path: Path):
    podium = build(tmp_path)
    for model, value in (("a1", "42"), ("b1", "The answer is 42."), ("g1", Step(error=_unavailable())),
                         ("big", "   ")):
        script(podium, model, value)
    request_id = await run(podium, "vote:a1,b1,g1,big")
    assert labels(tmp_path / "ledger.sqlite3") == [(request_id, "a1", "vote", 1.0), (request_id, "b1", "vote", 1.0),
                                                   (request_id, "big", "vote", 0.0)]


def _unavailable() -> Exception:
    from podium.errors import ProviderUnavailableError

    return ProviderUnavailableError("down")


async def test_a_consensus_labels_its_members_and_a_nested_strategy_is_no_model(tmp_path: Path):
    podium = build(tmp_path)
    for model, text in (("a2", "Paris"), ("b1", "paris."), ("g1", "Lyon"), ("a1", "Paris")):
        script(podium, model, text)
    request_id = await run(podium, "vote:a1,panel")  # panel: consensus of a2, b1, g1
    assert labels(tmp_path / "ledger.sqlite3") == [
        (request_id, "a1", "vote", 1.0),  # the vote's other member, the panel, answers as "podium": skipped
        (request_id, "a2", "consensus", 1.0), (request_id, "b1", "consensus", 1.0),
        (request_id, "g1", "consensus", 0.0)]


# --- cascade ---------------------------------------------------------------------------------------------
CASCADES = {"checked": {"type": "cascade", "models": ["a1", "a2", "b2"], "accept": "verifier", "verifier": "big"}}


async def test_a_verifier_rejecting_then_accepting_labels_both_steps(tmp_path: Path):
    podium = build(tmp_path, strategies={**CONFIG["strategies"], **CASCADES})
    script(podium, "a1", "41")
    script(podium, "a2", "42")
    script(podium, "b2", "43")
    script(podium, "big", ["NO, it is 42.", "YES, correct."])
    request_id = await run(podium, "checked")
    assert labels(tmp_path / "ledger.sqlite3") == [(request_id, "a1", "verifier", 0.0),
                                                   (request_id, "a2", "verifier", 1.0)]  # big, b2: no label


async def test_a_verdict_that_is_neither_yes_nor_no_and_the_last_step_label_nothing(tmp_path: Path):
    podium = build(tmp_path, strategies={**CONFIG["strategies"], **CASCADES})
    for model in ("a1", "a2", "b2"):
        script(podium, model, "42")
    script(podium, "big", ["Not sure.", "Nope"])  # "Nope" is no NO either: escalates, unlabelled
    await run(podium, "checked")
    assert labels(tmp_path / "ledger.sqlite3") == []


async def test_confidence_and_agreement_cascades_label_nothing(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "42\nConfidence: 0.2")
    script(podium, "b2", "42")
    script(podium, "big", "42")
    await podium.chat("?", model="cascade:a1,b2,big")  # confidence, the default
    strategies = {**CONFIG["strategies"], "twice": {"type": "cascade", "models": ["a1", "big"], "accept": "agreement"}}
    await run(podium, "vote:a1,b2,big")  # a vote in the same ledger does label
    second = build(tmp_path / "two", strategies=strategies)
    script(second, "a1", ["41", "40"])
    script(second, "big", "42")
    await run(second, "twice")
    assert [(m, s) for _, m, s, _ in labels(tmp_path / "ledger.sqlite3")] == [("a1", "vote"), ("b2", "vote"),
                                                                              ("big", "vote")]
    assert labels(tmp_path / "two" / "ledger.sqlite3") == []


# --- only with store_embeddings; the ledger's own checks --------------------------------------------------
async def test_no_labels_without_store_embeddings(tmp_path: Path):
    podium = build(tmp_path, store=False)
    assert podium.learned is None  # nothing is embedded either
    for model, text in (("a1", "B"), ("b1", "B"), ("g1", "C")):
        script(podium, model, text)
    await run(podium, "vote:a1,b1,g1")
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (3,)
        assert conn.execute("SELECT COUNT(*) FROM labels").fetchone() == (0,)


async def test_the_ledger_refuses_a_label_that_is_not_a_score(tmp_path: Path):
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite3")
    try:
        for score in (1.5, -0.1, float("nan"), "1"):
            with pytest.raises(InvalidRow):
                await ledger.record_label("r", "a1", "vote", score)  # type: ignore[arg-type]
        await ledger.record_label("r", "a1", "vote", 1)
        await ledger.flush()
    finally:
        await ledger.aclose()
    assert labels(tmp_path / "ledger.sqlite3") == [("r", "a1", "vote", 1.0)]


def test_majority_is_strict_and_needs_two():
    assert majority([[0, 1], [2]], 3) == {0, 1}
    assert majority([[0, 1], [2, 3]], 4) is None
    assert majority([[0, 1], [2], [3]], 4) is None
    assert majority([[0, 1]], 3) == {0, 1}  # the third replied empty
    assert majority([[0]], 1) is None  # one reply agrees with nobody
    assert groups_of(4, lambda i, j: i % 2 == j % 2) == [[0, 2], [1, 3]]


# --- PostgreSQL -------------------------------------------------------------------------------------------
async def test_labels_are_written_on_postgres(dsn: str, tmp_path: Path):
    podium = build(tmp_path, dsn=dsn, strategies={**CONFIG["strategies"], **CASCADES})
    for model, text in (("a1", "B"), ("b1", "B"), ("g1", "C"), ("a2", "B")):
        script(podium, model, text)
    script(podium, "b2", "B")
    script(podium, "big", "NO")
    voted = (await podium.chat(SECRET, model="vote:a1,b1,g1")).id
    checked = (await podium.chat("?", model="checked")).id  # a1 NO, a2 NO, b2 last
    await podium.aclose()
    import psycopg

    with psycopg.connect(dsn) as conn:
        got = conn.execute("SELECT request_id, model, source, score FROM labels ORDER BY request_id = %s, model",
                           (checked,)).fetchall()
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert 8 in versions
    assert got == [(voted, "a1", "vote", 1.0), (voted, "b1", "vote", 1.0), (voted, "g1", "vote", 0.0),
                   (checked, "a1", "verifier", 0.0), (checked, "a2", "verifier", 0.0)]


# --- training ----------------------------------------------------------------------------------------------
def test_feedback_outranks_a_label_for_the_model_that_answered():
    blob = np.ones(384, dtype="<f4").tobytes()
    feedback = [("r1", "a1", blob, 384, None, "good", 0.01)]
    automatic = [("r1", "a1", "vote", 0.0, blob, 384, 0.002), ("r1", "b1", "vote", 1.0, blob, 384, 0.004),
                 ("r1", "b1", "verifier", 0.0, blob, 384, 0.004), ("r2", "a1", "consensus", 1.0, blob, 384, None),
                 ("r3", "a1", "vote", 1.0, np.ones(8, dtype="<f4").tobytes(), 8, None)]  # another embedder's
    rows = LedgerRows(feedback, automatic)
    everything = labels_from_rows(rows)
    assert everything.models == ("a1", "b1") and len(everything) == 2
    np.testing.assert_array_equal(everything.outcomes, [[1.0, 0.5], [1.0, np.nan]])
    assert everything.sources == {"feedback": 1, "vote": 1, "verifier": 1, "consensus": 1}
    assert everything.costs == {"a1": 0.01, "b1": 0.004}
    agreement = labels_from_rows(rows, kinds=("agreement",))  # no feedback asked for: the vote's 0 counts
    assert agreement.outcomes[0].tolist() == [0.0, 1.0] and agreement.sources == {"vote": 2, "consensus": 1}
    verifier = labels_from_rows(rows, kinds=("verifier",))
    assert verifier.models == ("b1",) and verifier.outcomes.tolist() == [[0.0]]
    assert parse_kinds(" agreement, verifier,agreement") == ("agreement", "verifier")
    for wrong in ("", "votes", "feedback,,judge"):
        with pytest.raises(ConfigError, match="--labels takes"):
            parse_kinds(wrong)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PODIUM_CONFIG"}
    env.update(XDG_DATA_HOME=str(cwd / "data"), XDG_CONFIG_HOME=str(cwd / "config"), COLUMNS="200")
    return subprocess.run([str(PODIUM), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _odd_on_math(request: ChatRequest) -> str:
    return "C" if last_user_text(request) in MATH else "B"


async def test_router_train_with_agreement_labels_learns_the_odd_voter(tmp_path: Path):
    """g1 (the cheapest) is outvoted on every math prompt and agrees on every chat prompt; a router trained on
    those labels alone (no feedback at all) sends new math to a model that agreed and new chat to g1."""
    cheap_g1 = {**CONFIG["models"], "g1": {**CONFIG["models"]["g1"], "input_price": 0.1, "output_price": 0.1}}
    podium = build(tmp_path, models=cheap_g1)
    script(podium, "a1", "B")
    script(podium, "b1", "B")
    script(podium, "g1", _odd_on_math)
    try:
        for prompt in MATH + CHAT:
            await podium.chat(prompt, model="vote:a1,b1,g1")
    finally:
        await podium.aclose()
    ledger = str(tmp_path / "ledger.sqlite3")
    assert len(labels(tmp_path / "ledger.sqlite3")) == 3 * len(MATH + CHAT)
    trained = _cli("router", "train", "--ledger", ledger, "--labels", "agreement", "--kind", "knn", "--knob", "0.5",
                   "--out", str(tmp_path / "voted.npz"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "16 labelled requests" in trained.stdout and "g1 16 (mean reward 0.50)" in trained.stdout
    assert "labels (agreement) used: vote 48" in trained.stdout
    only_feedback = _cli("router", "train", "--ledger", ledger, "--labels", "feedback", "--out",
                         str(tmp_path / "x.npz"), cwd=tmp_path)
    assert only_feedback.returncode == 2 and "two or more models" in only_feedback.stderr
    for args, fragment in ((("--ledger", ledger, "--labels", "judge"), "--labels takes"),
                           (("data.jsonl", "--labels", "agreement"), "use it with --ledger")):
        refused = _cli("router", "train", *args, "--out", str(tmp_path / "x.npz"), cwd=tmp_path)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert fragment in refused.stderr, refused.stderr
    served = build(tmp_path / "serve", models=cheap_g1,
                   routing={"router": "learned", "learned": {"file": str(tmp_path / "voted.npz")}})
    for model in ("a1", "b1", "g1"):
        script(served, model, "B")
    try:
        for prompt in NEW_MATH:
            assert (await served.chat(prompt)).model in {"a1", "b1"}, prompt
        for prompt in NEW_CHAT:
            assert (await served.chat(prompt)).model == "g1", prompt
    finally:
        await served.aclose()


async def test_the_stored_embedding_credits_the_member_whose_answer_was_served(tmp_path: Path):
    """A verifier cascade's last call is the verifier; feedback on the answer is about the step it
    accepted, so the embedding row (which /v1/feedback and router training read) names that step."""
    podium = build(tmp_path, strategies={**CONFIG["strategies"], **CASCADES})
    script(podium, "a1", "41")
    script(podium, "a2", "42")
    script(podium, "b2", "43")
    script(podium, "big", ["NO, it is 42.", "YES, correct."])
    request_id = await run(podium, "checked")
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        rows = conn.execute("SELECT request_id, model FROM request_embeddings").fetchall()
    assert rows == [(request_id, "a2")]
