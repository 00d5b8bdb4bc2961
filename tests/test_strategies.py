"""Every strategy's logic with scripted models: answers, failures, timeouts, ties, malformed plans, budgets."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from podium import errors
from podium.client import Podium
from podium.config import load_settings
from podium.providers.scripted import ScriptedProvider, Step
from podium.strategies.text import agreement, lexical_similarity, most_central, normalize, similarity_matrix
from podium.types import ChatRequest, Message


def row(provider: str, tier: str = "fast", price: float = 1.0, region: str = "us") -> dict[str, Any]:
    return {"provider": provider, "context_window": 32_000, "input_price": price, "output_price": price,
            "tier": tier, "region": region, "capabilities": ["chat", "planning"]}


CONFIG: dict[str, Any] = {
    "providers": {**{name: {"kind": "scripted"} for name in ("alpha", "beta", "gamma")}, "local": {"enabled": False}},
    "models": {"a1": row("alpha"), "a2": row("alpha", price=2), "b1": row("beta"), "b2": row("beta", "standard", 3),
               "g1": row("gamma", region="eu"), "big": row("gamma", "advanced", 10)},
    "strategies": {
        "eu-panel": {"type": "consensus", "models": ["g1", "g1"]},
        "careful": {"type": "cascade", "models": ["a1", "panel"], "accept": "verifier", "verifier": "b1"},
        "panel": {"type": "consensus", "models": ["a2", "b1", "g1"]},
        "capped": {"type": "cascade", "models": ["a1", "b2", "big"], "budget": 0.0004},
        "capped-strict": {"type": "cascade", "models": ["b2", "big"], "budget": 0.0004,
                          "on_budget_exhausted": "fail"},
        "slow-panel": {"type": "consensus", "models": ["a1", "b1", "g1"], "timeout": 0.2},
        "plan": {"type": "pipeline", "conductor": "big", "max_revisions": 1},
    },
    "resilience": {"retries": {"max_attempts": 1}},
}


def build(tmp_path: Path, extra: dict[str, Any] | None = None) -> Podium:
    config = {**CONFIG, **(extra or {}), "ledger": {"path": str(tmp_path / "ledger.sqlite3")}}
    (tmp_path / "podium.yaml").write_text(json.dumps(config))
    return Podium(load_settings(tmp_path / "podium.yaml"))


def script(podium: Podium, model: str, value: Any) -> ScriptedProvider:
    info = podium.settings.catalogue.get(model)
    provider = podium.registry.get_provider(info.provider)
    assert isinstance(provider, ScriptedProvider)
    provider.set_script(info.model_id, value)
    return provider


def conversation(question: str) -> ChatRequest:
    return ChatRequest(messages=[Message.system("Be terse."), Message.user("Hi"),
                                 Message(role="assistant", content="Hello"), Message.user(question)])


# --- answer comparison --------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "key"), [
    ("The answer is 1,234.", "1234"), ("1234", "1234"), ("So the total = 12.50", "12.5"),
    ("(B) because the others are wrong", "B"), ("Answer: c", "C"), ("I think the answer is option D.", "D"),
    ("Yes, definitely.", "yes"), ("no", "no"), ("  Paris.  ", "paris"), ("", ""),
])
def test_normalize(raw: str, key: str):
    assert normalize(raw) == key


def test_similarity_agreement_and_centrality():
    texts = ["Paris is the capital of France", "The capital of France is Paris", "Berlin is in Germany"]
    matrix = similarity_matrix(texts)
    assert matrix[0][1] > 0.9 > matrix[0][2]
    assert most_central(matrix) in {0, 1}
    assert agreement([[1.0]]) == 1.0
    assert lexical_similarity("", "") == 1.0 and lexical_similarity("a", "") == 0.0


# --- vote -----------------------------------------------------------------------------------------
async def test_vote_normalises_and_takes_the_majority(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "The answer is 42.")
    script(podium, "b1", "42")
    script(podium, "g1", "41")
    response = await podium.chat("6*7?", model="vote:a1,b1,g1")
    assert response.text == "The answer is 42." and response.model == "vote:a1,b1,g1"
    assert any("'42' x2" in n and "(2/3 votes)" in n for n in response.trace.notes)
    assert response.trace.strategy == "vote" and len(response.trace.calls) == 3
    await podium.aclose()


async def test_vote_tie_is_broken_by_model_order_and_failures_are_tolerated(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "yes")
    script(podium, "b1", "no")
    script(podium, "g1", Step(error=errors.ProviderUnavailableError("down")))
    response = await podium.chat("?", model="vote:b1,a1,g1")
    assert response.text == "no"  # b1 is listed first
    assert any("tie among 2 broken by model order" in n for n in response.trace.notes)
    assert any("no vote from g1" in n for n in response.trace.notes)
    for model in ("a1", "b1"):
        script(podium, model, Step(error=errors.ProviderUnavailableError("down")))
    with pytest.raises(errors.ProviderUnavailableError, match="every call failed"):
        await podium.chat("?", model="vote:a1,b1,g1")
    await podium.aclose()


async def test_self_consistency_samples_one_model_k_times(tmp_path: Path):
    podium = build(tmp_path)
    provider = script(podium, "a1", ["7", "8", "7", "7", "9"])
    response = await podium.chat("?", model="vote:a1*5")
    assert response.text == "7" and len(provider.calls) == 5
    assert all(req.temperature == 0.7 for _, req in provider.calls)  # repeats are sampled
    await podium.aclose()


# --- consensus --------------------------------------------------------------------------------------
async def test_consensus_tolerates_timeouts_and_names_the_missing(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "Paris is the capital of France.")
    script(podium, "b1", "The capital of France is Paris.")
    script(podium, "g1", Step(text="Lyon", latency=5))
    response = await podium.chat("Capital of France?", model="slow-panel")
    assert "Paris" in response.text
    notes = " ".join(response.trace.notes)
    assert "no answer from g1" in notes and "took longer than 0.2s" in notes and "2/3 answered" in notes
    await podium.aclose()


async def test_consensus_calls_run_concurrently(tmp_path: Path):
    """Each member waits until all three have started: a sequential implementation would never finish."""
    podium = build(tmp_path)
    started = 0
    everyone = asyncio.Event()

    def barrier(_request: Any) -> Step:
        nonlocal started
        started += 1
        if started == 3:
            everyone.set()
        return Step(text="same answer")

    for name in ("alpha", "beta", "gamma"):
        provider = podium.registry.get_provider(name)
        original = provider.complete

        async def gated(request: Any, model: Any, original: Any = original) -> Any:
            response = await original(request, model)
            await asyncio.wait_for(everyone.wait(), 5)
            return response

        provider.complete = gated  # type: ignore[method-assign]
        provider._default = barrier  # type: ignore[attr-defined]
    response = await asyncio.wait_for(podium.chat("?", model="consensus:a1,b1,g1"), 10)
    assert response.text == "same answer" and started == 3
    assert any("agreement 1.00" in n for n in response.trace.notes)
    await podium.aclose()


async def test_consensus_with_a_synthesizer(tmp_path: Path):
    podium = build(tmp_path, {"strategies": {**CONFIG["strategies"], "merged": {
        "type": "consensus", "models": ["a1", "b1"], "synthesizer": "big"}}})
    script(podium, "a1", "Paris")
    script(podium, "b1", "It is Paris")
    synth = script(podium, "big", "Paris, the capital.")
    response = await podium.chat("Capital of France?", model="merged")
    assert response.text == "Paris, the capital."
    prompt = synth.calls[-1][1].messages[-1].text
    assert "Answer 1:\nParis" in prompt and "Answer 2:\nIt is Paris" in prompt
    assert [c.step for c in response.trace.calls] == ["member 1", "member 2", "synthesis"]
    await podium.aclose()


# --- cascade ----------------------------------------------------------------------------------------
async def test_cascade_stops_at_a_confident_answer(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "Paris\nConfidence: 0.9")
    expensive = script(podium, "big", "Paris")
    response = await podium.chat("Capital?", model="cascade:a1,big")
    assert response.text == "Paris" and expensive.calls == []
    assert any("a1: confidence 0.90 vs 0.70 → accept" in n for n in response.trace.notes)
    await podium.aclose()


async def test_cascade_escalates_on_low_confidence_and_on_failure(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "Maybe Lyon\nConfidence: 0.3")
    script(podium, "b2", Step(error=errors.ProviderUnavailableError("down")))
    script(podium, "big", "Paris")
    response = await podium.chat("Capital?", model="cascade:a1,b2,big")
    assert response.text == "Paris"
    notes = " ".join(response.trace.notes)
    assert "confidence 0.30 vs 0.70 → escalate" in notes and "b2 failed" in notes and "last step" in notes
    await podium.aclose()


async def test_cascade_verifier_and_nested_consensus(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "Lyon")
    script(podium, "b1", ["NO, it is Paris.", "Paris is right"])  # the verifier, then a panel member
    script(podium, "a2", "Paris")
    script(podium, "g1", "Paris")
    response = await podium.chat("Capital of France?", model="careful")
    assert "Paris" in response.text
    notes = " ".join(response.trace.notes)
    assert "verifier said NO" in notes and "nested strategy panel" in notes
    assert any(c.step and c.step.startswith("step 2:panel/member") for c in response.trace.calls)
    await podium.aclose()


# --- debate and mixture -------------------------------------------------------------------------------
async def test_debate_stops_early_when_agents_agree(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "Paris is the capital")
    script(podium, "b1", "Paris is the capital")
    response = await podium.chat("Capital?", model="debate:a1,b1")
    assert len(response.trace.calls) == 2  # round 1 only
    assert any("stop early" in n for n in response.trace.notes)
    await podium.aclose()


async def test_debate_agents_see_each_other_in_later_rounds(tmp_path: Path):
    podium = build(tmp_path)
    a = script(podium, "a1", ["Lyon", "Paris."])
    script(podium, "b1", ["Paris", "Paris"])
    response = await podium.chat(conversation("Capital?"), model="debate:a1,b1")
    assert len(response.trace.calls) == 4
    second = a.calls[1][1].messages  # the whole conversation, then its own answer, then the others'
    assert [(m.role, m.text) for m in second[:5]] == [("system", "Be terse."), ("user", "Hi"), ("assistant", "Hello"),
                                                       ("user", "Capital?"), ("assistant", "Lyon")]
    assert second[-1].role == "user" and "Other agents answered:\nAgent 1: Paris" in second[-1].text
    assert [n.split(":")[0] for n in response.trace.notes if n.startswith("round")] == ["round 1", "round 2"]
    await podium.aclose()


async def test_mixture_layers_feed_the_aggregator(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "Proposal A")
    script(podium, "b1", "Proposal B")
    aggregator = script(podium, "big", "Final")
    response = await podium.chat(conversation("Plan a trip"), model="mixture:a1,b1,big")
    assert response.text == "Final"
    messages = aggregator.calls[-1][1].messages  # references in the system prompt, the conversation kept
    assert messages[0].role == "system" and messages[0].text.startswith("Be terse.\n\n")
    assert "Response 1: Proposal A" in messages[0].text and "Response 2: Proposal B" in messages[0].text
    assert [(m.role, m.text) for m in messages[1:]] == [("user", "Hi"), ("assistant", "Hello"), ("user", "Plan a trip")]
    await podium.aclose()


# --- pipeline -----------------------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_step(self, step: str, event: str, detail: str) -> None:
        self.events.append(f"{event}:{step}")

    def on_call(self, step: str, model: str, response: Any, error: Any) -> None:
        self.events.append(f"call:{step}:{model}")

    def on_decision(self, step: str, decision: str) -> None:
        self.events.append(f"decision:{step}")


async def test_pipeline_plans_works_reviews_across_providers_and_assembles(tmp_path: Path):
    podium = build(tmp_path)
    plan = {"subtasks": [{"id": "api", "role": "implementer", "tier": "fast", "instructions": "Write the API"},
                         {"id": "tests", "role": "tester", "tier": "standard", "instructions": "Write tests"}]}
    # big (gamma) plans, reviews the standard work (no other standard provider: the tier above), assembles
    script(podium, "big", [json.dumps(plan), "CHANGES\nadd an edge case", "APPROVED\nok", "ASSEMBLED"])
    script(podium, "a1", "def api(): ...")  # fast worker (cheapest fast model: a1 on alpha)
    script(podium, "b2", ["tests v1", "tests v2"])  # standard worker (b2 on beta), revised once
    reviewer_alpha = script(podium, "b1", "APPROVED\nlooks fine")  # reviews a1's work: another provider
    recorder = Recorder()
    response = await podium.chat("Build a small service", model="plan", observer=recorder)
    assert response.text == "ASSEMBLED"
    notes = " ".join(response.trace.notes)
    assert "2 subtasks: api (implementer, fast), tests (tester, standard)" in notes
    assert "b1 (beta) reviewing a1 (alpha): approved" in notes
    assert "big (gamma) reviewing b2 (beta): changes requested: add an edge case" in notes
    assert "big (gamma) reviewing b2 (beta): approved" in notes
    review_of_api = [req for model_id, req in reviewer_alpha.calls if model_id == "b1"]
    assert len(review_of_api) == 1 and "def api(): ..." in review_of_api[0].messages[-1].text
    steps = [c.step for c in response.trace.calls]
    assert {"plan", "api/work", "api/review 1", "tests/work", "tests/review 1", "tests/revise 1",
            "tests/review 2", "assemble"} == set(steps)
    assert "start:plan" in recorder.events and "call:assemble:big" in recorder.events
    assert any(e.startswith("decision:tests/review 1") for e in recorder.events)
    await podium.aclose()


async def test_pipeline_survives_a_malformed_plan(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "big", ["Sure! Here is the plan: step one...", '{"subtasks": []}'])
    script(podium, "b2", "the whole answer")
    script(podium, "a2", "APPROVED")
    script(podium, "b1", "APPROVED")
    script(podium, "g1", "APPROVED")
    response = await podium.chat("Do the thing", model="plan")
    assert response.text == "the whole answer"
    notes = " ".join(response.trace.notes)
    assert "malformed plan (no JSON object in the reply)" in notes
    assert "plan still malformed (subtasks: List should have at least 1 item" in notes
    await podium.aclose()


async def test_pipeline_revision_rounds_are_bounded(tmp_path: Path):
    podium = build(tmp_path)
    plan = {"subtasks": [{"id": "x", "tier": "fast", "instructions": "Do x"}]}
    script(podium, "big", json.dumps(plan))
    worker = script(podium, "a1", ["v1", "v2", "v3"])
    script(podium, "b1", "CHANGES\nnot good")
    response = await podium.chat("Do x", model="plan")
    assert response.text == "v2" and len(worker.calls) == 2  # max_revisions: 1
    assert any("revision limit (1) reached" in n for n in response.trace.notes)
    await podium.aclose()


# --- budgets, privacy, specs, config ------------------------------------------------------------------
async def test_budget_exhaustion_returns_the_best_so_far_or_fails(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "Maybe\nConfidence: 0.1")
    expensive = script(podium, "big", "Certainly")
    response = await podium.chat("?", model="capped")
    assert response.text == "Maybe" and expensive.calls == []
    assert any("budget spent: returning a1's answer" in n for n in response.trace.notes)
    with pytest.raises(errors.BudgetExceededError, match="would cost up to"):
        await podium.chat("?", model="capped-strict")
    await podium.aclose()


async def test_strategy_members_obey_privacy(tmp_path: Path):
    podium = build(tmp_path)
    with pytest.raises(errors.BadRequestError, match="model 'a1' in the strategy cannot serve this request: region us"):
        await podium.chat("?", model="consensus:a1,g1", metadata={"sensitivity": "confidential"})
    script(podium, "g1", "ok")
    assert (await podium.chat("?", model="eu-panel", metadata={"sensitivity": "confidential"})).text == "ok"
    await podium.aclose()


async def test_bad_specs_are_clear(tmp_path: Path):
    podium = build(tmp_path)
    with pytest.raises(errors.BadRequestError, match="names no models"):
        await podium.chat("?", model="vote:")
    with pytest.raises(errors.BadRequestError, match="whole number"):
        await podium.chat("?", model="vote:a1*x")
    with pytest.raises(errors.BadRequestError, match="Did you mean: a2, a1"):
        await podium.chat("?", model="consensus:a1,a9")
    await podium.aclose()


def test_config_checks_strategy_names_and_cycles(tmp_path: Path):
    bad = {**CONFIG, "strategies": {"s": {"type": "consensus", "models": ["a1", "a9"]}}}
    (tmp_path / "podium.yaml").write_text(json.dumps(bad))
    with pytest.raises(errors.ConfigError, match=r"strategies\.s\.models\[1\]: Unknown model 'a9'"):
        load_settings(tmp_path / "podium.yaml")
    cyclic = {**CONFIG, "strategies": {"x": {"type": "cascade", "models": ["a1", "y"]},
                                       "y": {"type": "consensus", "models": ["x", "b1"]}}}
    (tmp_path / "podium.yaml").write_text(json.dumps(cyclic))
    with pytest.raises(errors.ConfigError, match="contains itself: x → y → x"):
        load_settings(tmp_path / "podium.yaml")


async def test_streaming_a_strategy_and_the_ledger(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "42")
    script(podium, "b1", "42")
    stream = podium.stream("?", model="consensus:a1,b1")
    chunks = [c async for c in stream]
    assert "".join(c.text for c in chunks) == "42" and chunks[-1].usage == stream.response.usage
    await podium.aclose()
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        assert conn.execute("SELECT strategy, calls, status FROM requests").fetchall() == [("consensus", 2, "ok")]
        assert sorted(s for (s,) in conn.execute("SELECT step FROM calls")) == ["member 1", "member 2"]
