"""Router decisions, table-tested against the seeds' examples."""

from __future__ import annotations

import pytest

from podium.catalogue import bundled_catalogue
from podium.errors import BadRequestError, RegionError
from podium.routing import HeuristicEstimator, Router, tier_for
from podium.routing.complexity import Estimate
from podium.types import ChatRequest, Message

ALL = ["openai", "anthropic", "gemini", "mistral", "deepseek", "openrouter", "publicai", "local"]
CAT = bundled_catalogue()


def router(**kwargs) -> Router:
    return Router(CAT, kwargs.pop("enabled", ALL), **kwargs)


def req(text: str, **meta) -> ChatRequest:
    fields = {k: meta.pop(k) for k in ("max_tokens", "tools", "model") if k in meta}
    return ChatRequest(messages=[Message.user(text)], metadata=meta, max_tokens=fields.pop("max_tokens", 256),
                       **fields)


@pytest.mark.parametrize(("text", "tags", "tier", "risk"), [
    ("Design the architecture for migrating our core billing service to event sourcing", ["area:core"],
     "advanced", "high"),
    ("What is the capital of France?", [], "fast", "low"),
    ("Translate 'good morning' to German", [], "fast", "low"),
    ("Write a Python function that parses ISO dates and add unit tests.\n```python\ndef parse(s): ...\n```", [],
     "standard", "low"),
    ("Fix the typo in the docs page", ["area:docs"], "fast", "low"),
    ("Rotate the production database credentials", [], "advanced", "high"),
])
def test_tiers_follow_complexity_and_risk(text, tags, tier, risk):
    estimate = HeuristicEstimator().estimate(req(text, tags=tags))
    assert estimate.risk == risk, estimate
    assert tier_for(estimate) == tier, estimate
    decision = router().decide(req(text, tags=tags))
    assert CAT.get(decision.model).tier == tier, decision
    assert f"tier {tier}" in decision.rationale


def test_choose_planner_seeds_example():
    """The seeds: choose_planner(HIGH, 'core', LARGE) → an advanced model with a rationale and a cost."""
    decision = router().choose_planner("high", "core", "large")
    model = CAT.get(decision.model)
    assert model.tier == "advanced" and model.has("planning")
    assert "risk high" in decision.rationale and decision.estimated_cost > 0
    assert 0 < decision.confidence <= 1
    low = router().choose_planner("low", "docs", "small")
    # no fast model in the catalogue plans, so the nearest tier that does is taken, and said so
    tier = CAT.get(low.model).tier
    assert tier != "fast" and f"no eligible fast model, took {tier}" in low.rationale


@pytest.mark.parametrize("text", ["What is the capital of France?",
                                  "Design a secure architecture for our payment system"])
def test_confidential_data_goes_only_to_eu_ch_or_local(text):
    decision = router().decide(req(text, sensitivity="confidential"))
    assert CAT.get(decision.model).region in {"eu", "ch", "local"}
    assert "confidential data → regions ch, eu, local" in decision.rationale


def test_confidential_with_an_explicit_us_model_is_refused():
    with pytest.raises(RegionError, match=r"region us not in \['ch', 'eu', 'local'\]"):
        router().decide(req("hi", sensitivity="confidential", model="gpt-4o"))


def test_over_budget_goes_cheaper():
    text = "Design the architecture for migrating our core billing service to event sourcing"
    free = router().decide(req(text))
    assert CAT.get(free.model).tier == "advanced"
    capped = router(max_cost=0.0005).decide(req(text, max_tokens=1000))
    assert capped.estimated_cost <= 0.0005
    assert "max $0.0005 per request" in capped.rationale
    assert CAT.get(capped.model).tier_rank < 3 or capped.estimated_cost < free.estimated_cost


def test_presets_by_name():
    text = "Write a function to merge two sorted lists.\n```python\ndef merge(a, b): ...\n```"
    production = router(preset="production").decide(req(text))
    budget = router(preset="budget").decide(req(text))
    privacy = router(preset="privacy-first").decide(req(text))
    assert CAT.get(budget.model).tier_rank < CAT.get(production.model).tier_rank
    assert CAT.get(privacy.model).region in {"eu", "ch", "local"}  # the seeds' privacy-first: Apertus (CH)
    assert "privacy-first preset" in privacy.rationale
    per_request = router().decide(req(text, preset="privacy-first"))
    assert per_request.model == privacy.model


def test_capabilities_and_context_fit_are_hard_constraints():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    decision = router().decide(req("What is the weather in Paris?", tools=tools))
    assert CAT.get(decision.model).has("tools")
    long_prompt = "word " * 200_000  # ~250k tokens: only million-token windows fit
    decision = router().decide(req(long_prompt))
    assert CAT.get(decision.model).context_window >= 250_000


def test_rules_win_over_tiers_and_fall_through_when_they_cannot_serve():
    r = router(rules={"code": "codestral"})
    assert r.decide(req("anything", task_type="code")).model == "codestral"
    fallthrough = r.decide(req("anything", task_type="code", sensitivity="confidential", tags=[]))
    assert fallthrough.model == "codestral"  # EU: allowed
    r2 = router(rules={"code": "gpt-4o"})
    other = r2.decide(req("anything", task_type="code", sensitivity="confidential"))
    assert other.model != "gpt-4o" and CAT.get(other.model).region in {"eu", "ch", "local"}


def test_cross_provider_review():
    r = router()
    author = r.route(req("Implement the feature", tags=["area:core"]))
    review = r.review_route(req("Review this diff for bugs", tags=["area:core"]), author.model.provider)
    assert review.model.provider != author.model.provider


def test_only_local_models_enabled_still_routes_with_a_reason():
    decision = router(enabled=["local"]).decide(req("Design a distributed cache architecture"))
    assert decision.model == "smollm2-135m"  # the chat-format local model, not the base model
    assert "no eligible advanced model, took fast" in decision.rationale and decision.confidence < 0.85


def test_nothing_eligible_is_a_clear_error():
    with pytest.raises(BadRequestError, match="no enabled model satisfies this request"):
        router(enabled=["openai"]).decide(req("hi", sensitivity="confidential"))


def test_estimate_describe_lists_signals():
    estimate = Estimate("large", "high", ("design: 'architecture'",))
    assert estimate.describe() == "complexity large, risk high (design: 'architecture')"
