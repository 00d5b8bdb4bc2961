"""The request policy holds wherever a call goes: strategies, fallbacks, retries, auto routing.

Each test is one of the ways the promises broke when tried from outside (issue 10), through the
whole client with scripted providers: a key's scope, the data's regions, the budget held per call,
the fan-out cap, and models that cannot run here.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from podium import errors
from podium.catalogue import worst_input_tokens
from podium.client import Podium
from podium.config import load_settings
from podium.policy import BudgetSlot, TokenLimit
from podium.providers.scripted import ScriptedProvider, Step
from podium.server.state import MemoryState
from podium.types import ChatRequest


def row(provider: str, model_id: str, **fields: Any) -> dict[str, Any]:
    return {"provider": provider, "model_id": model_id, "context_window": fields.pop("context_window", 8000),
            "input_price": fields.pop("input_price", 1.0), "output_price": fields.pop("output_price", 1.0),
            "tier": fields.pop("tier", "fast"), "region": fields.pop("region", "us"), **fields}


def make(tmp_path: Path, **config: Any) -> Podium:
    base: dict[str, Any] = {
        "providers": {"us": {"kind": "scripted", "region": "us", "options": {"default": "from us"}},
                      "eu": {"kind": "scripted", "region": "eu", "options": {"default": "from eu"}},
                      "local": {"enabled": False}},
        "models": {"cheap": row("us", "cheap", max_output_tokens=100),
                   "pricey": row("us", "pricey", input_price=100.0, output_price=100.0, max_output_tokens=100,
                                 tier="advanced"),
                   "roomy": row("us", "roomy", context_window=1_000_000, max_output_tokens=100),
                   "euro": row("eu", "euro", region="eu", max_output_tokens=100, capabilities=["chat", "planning"])},
        "resilience": {"retries": {"max_attempts": 1, "base_delay": 0.0}},
        "ledger": {"enabled": False},
    }
    for key, value in config.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(base))
    return Podium(load_settings(path))


def provider(podium: Podium, name: str) -> ScriptedProvider:
    found = podium.registry.get_provider(name)
    assert isinstance(found, ScriptedProvider)
    return found


def called(podium: Podium, name: str) -> list[str]:
    return [model_id for model_id, _ in provider(podium, name).calls]


# --- scope ----------------------------------------------------------------------------------------
async def test_a_scoped_key_is_never_served_by_a_configured_fallback_outside_its_scope(tmp_path: Path):
    podium = make(tmp_path, resilience={"fallbacks": [{"model": "cheap", "to": ["pricey"]}]})
    provider(podium, "us").set_script("cheap", Step(error=errors.ProviderUnavailableError("down")))
    policy = podium.policies.build(ChatRequest.from_prompt("hi"), key_id="key_1", key_name="ci", models=["cheap"])
    with pytest.raises(errors.ProviderUnavailableError):
        await podium.chat("hi", model="cheap", policy=policy)
    assert called(podium, "us") == ["cheap"]  # pricey was never asked
    await podium.aclose()


async def test_a_scoped_key_is_never_served_by_the_built_in_context_fallback(tmp_path: Path):
    podium = make(tmp_path)
    provider(podium, "us").set_script("cheap", Step(error=errors.ContextTooLongError("too long")))
    policy = podium.policies.build(ChatRequest.from_prompt("hi"), key_id="key_1", models=["cheap"])
    with pytest.raises(errors.ContextTooLongError):
        await podium.chat("hi", model="cheap", policy=policy)
    assert called(podium, "us") == ["cheap"]
    # without the scope the same request is saved by the larger window
    response = await podium.chat("hi", model="cheap")
    assert response.model == "roomy"
    await podium.aclose()


async def test_the_note_says_which_fallback_was_skipped_and_why(tmp_path: Path):
    podium = make(tmp_path, resilience={"fallbacks": [{"model": "cheap", "to": ["pricey", "euro"]}]})
    provider(podium, "us").set_script("cheap", Step(error=errors.ProviderUnavailableError("down")))
    policy = podium.policies.build(ChatRequest.from_prompt("hi"), key_id="key_1", key_name="ci",
                                   models=["cheap", "euro"])
    response = await podium.chat("hi", model="cheap", policy=policy)
    assert response.text == "from eu"
    assert any("fallback pricey skipped: 'pricey' is outside the scope of key 'ci'" in n
               for n in response.trace.notes)
    await podium.aclose()


async def test_auto_routing_stays_inside_the_scope(tmp_path: Path):
    podium = make(tmp_path)
    policy = podium.policies.build(ChatRequest.from_prompt("hi"), models=["auto", "pricey"])
    for _ in range(3):
        response = await podium.chat("What is the capital of France?", policy=podium.policies.build(
            ChatRequest.from_prompt("x"), models=["auto", "pricey"]))
        assert response.model == "pricey"
    assert policy.scope == frozenset({"pricey"})
    await podium.aclose()


async def test_a_strategy_in_scope_reaches_its_members_but_not_their_fallbacks(tmp_path: Path):
    podium = make(tmp_path, strategies={"panel": {"type": "consensus", "models": ["cheap", "euro"]}},
                  resilience={"fallbacks": [{"model": "*", "to": ["pricey"]}]})
    provider(podium, "eu").set_script("euro", Step(error=errors.ProviderUnavailableError("down")))
    policy = podium.policies.build(ChatRequest.from_prompt("hi"), models=["panel"])
    assert policy.scope == frozenset({"cheap", "euro"})
    response = await podium.chat("hi", model="panel", policy=policy)
    assert response.text == "from us"
    assert "pricey" not in called(podium, "us")
    await podium.aclose()


async def test_a_strategy_naming_a_model_outside_the_scope_is_refused(tmp_path: Path):
    podium = make(tmp_path)
    policy = podium.policies.build(ChatRequest.from_prompt("hi"), models=["cheap", "consensus:cheap,pricey"])
    assert policy.scope == frozenset({"cheap", "pricey"})  # the inline strategy names pricey: in scope
    narrow = podium.policies.build(ChatRequest.from_prompt("hi"), models=["cheap"])
    with pytest.raises(errors.ScopeError):
        await podium.chat("hi", model="consensus:cheap,pricey", policy=narrow)
    assert called(podium, "us") == []
    await podium.aclose()


# --- regions ---------------------------------------------------------------------------------------
async def test_a_confidential_request_never_reaches_a_deployment_outside_its_regions(tmp_path: Path):
    """An EU model with a second deployment on a US provider, round robin: the US one is skipped."""
    podium = make(tmp_path, deployments={"euro": [{"provider": "eu"}, {"provider": "us"}]},
                  resilience={"balancing": "round_robin"})
    confidential = {"sensitivity": "confidential"}
    for _ in range(6):
        response = await podium.chat("hi", model="euro", metadata=confidential)
        assert response.text == "from eu"
        assert any("euro@us (euro on us runs in region 'us'" in n for n in response.trace.notes)
    assert called(podium, "us") == []
    for _ in range(4):  # public data may go to either
        await podium.chat("hi", model="euro")
    assert called(podium, "us") == ["euro", "euro"]
    await podium.aclose()


async def test_a_deployment_row_sets_its_own_region(tmp_path: Path):
    podium = make(tmp_path, deployments={"cheap": [{"provider": "us", "region": "eu"}]})
    response = await podium.chat("hi", model="cheap", metadata={"sensitivity": "public"})
    assert response.trace.deployment == "cheap@us"
    assert podium.deployments(podium.settings.catalogue.get("cheap"))[0].model.region == "eu"
    await podium.aclose()


async def test_choose_planner_applies_the_preset_it_claims(tmp_path: Path):
    podium = make(tmp_path)
    decision = podium.router.choose_planner("high", "core", "large", preset="privacy-first")
    model = podium.settings.catalogue.get(decision.model)
    assert model.region in {"eu", "ch", "local"}
    assert "privacy-first preset → regions ch, eu, local" in decision.rationale
    plain = podium.router.choose_planner("high", "core", "large")
    assert "preset" not in plain.rationale and "regions" not in plain.rationale  # claims nothing it did not apply
    await podium.aclose()


# --- budgets, held per call --------------------------------------------------------------------------
def budget_policy(podium: Podium, request: ChatRequest, limit: float, state: MemoryState):
    return podium.policies.build(request, key_id="key_b", key_name="b",
                                 budgets=[BudgetSlot("key_b", limit, label="key 'b'")], counters=state)


async def test_a_strategy_holds_every_calls_worst_case(tmp_path: Path):
    """A consensus of three on a budget for two calls' worst case, all three in flight at once: the third
    call is refused before it is sent."""
    podium = make(tmp_path, strategies={"panel": {"type": "consensus", "models": ["cheap", "cheap", "cheap"]}})
    provider(podium, "us").set_script("cheap", Step(text="from us", latency=0.05))  # none ends before all began
    state = MemoryState()
    request = ChatRequest.from_prompt("hi", model="panel", max_tokens=100)
    worst = podium.settings.catalogue.get("cheap").estimated_cost(20, 100)
    policy = budget_policy(podium, request, 2.2 * worst, state)
    response = await podium.chat(request, policy=policy)
    assert len(called(podium, "us")) == 2
    assert await state.spent("key_b") <= 2.2 * worst
    assert await state.spent("key_b") == pytest.approx(response.cost)
    assert any("no answer from" in n for n in response.trace.notes)
    await podium.aclose()


async def test_a_fallback_to_a_pricier_model_is_refused_when_the_budget_cannot_hold_it(tmp_path: Path):
    podium = make(tmp_path, resilience={"fallbacks": [{"model": "cheap", "to": ["pricey"]}]})
    provider(podium, "us").set_script("cheap", Step(error=errors.ProviderUnavailableError("down")))
    state = MemoryState()
    request = ChatRequest.from_prompt("hi", model="cheap", max_tokens=50)
    policy = budget_policy(podium, request, 0.001, state)
    with pytest.raises(errors.ProviderUnavailableError):
        await podium.chat(request, policy=policy)
    assert called(podium, "us") == ["cheap"]
    assert await state.spent("key_b") == 0.0


async def test_failed_requests_spend_nothing_and_the_key_can_still_send(tmp_path: Path):
    podium = make(tmp_path)
    state = MemoryState()
    request = ChatRequest.from_prompt("hi", model="cheap", max_tokens=100)
    worst = podium.settings.catalogue.get("cheap").estimated_cost(20, 100)
    provider(podium, "us").set_script("cheap", Step(error=errors.ProviderUnavailableError("down")))
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailableError):
            await podium.chat(request, policy=budget_policy(podium, request, 1.5 * worst, state))
    assert await state.spent("key_b") == 0.0
    provider(podium, "us").set_script("cheap", "back")
    response = await podium.chat(request, policy=budget_policy(podium, request, 1.5 * worst, state))
    assert response.text == "back" and await state.spent("key_b") == pytest.approx(response.cost)
    await podium.aclose()


async def test_a_cancelled_stream_releases_its_hold(tmp_path: Path):
    podium = make(tmp_path)
    provider(podium, "us").set_script("cheap", Step(text="one two three four", chunk_latency=0.05,
                                                    input_tokens=10, output_tokens=4))
    state = MemoryState()
    request = ChatRequest.from_prompt("hi", model="cheap", max_tokens=100)
    policy = budget_policy(podium, request, 1.0, state)
    stream = podium.stream(request, policy=policy)
    chunks = aiter(stream)
    await anext(chunks)
    assert await state.spent("key_b") > 0.0  # held while it runs
    await chunks.aclose()  # type: ignore[attr-defined]
    spent = await state.spent("key_b")  # what the cut stream used (estimated: a few tokens), not its worst case
    worst = podium.settings.catalogue.get("cheap").estimated_cost(9, 100)
    assert 0 < spent < worst / 5
    await podium.aclose()


async def test_a_token_limit_is_held_per_call_and_given_back(tmp_path: Path):
    podium = make(tmp_path)
    provider(podium, "us").set_script("cheap", Step(text="ok", input_tokens=10, output_tokens=2))
    state = MemoryState()
    request = ChatRequest.from_prompt("hi", model="cheap", max_tokens=100)
    held = worst_input_tokens(request) + 100  # what each call holds; it uses 12 and gives back the rest
    limit = TokenLimit("key_t:tpm", 200, "key 't'")
    fits = (200 - held) // 12 + 1  # calls before the bucket is below one call's hold (refill aside)
    assert fits > 1  # without the give-back only one call would fit in the minute
    for _ in range(fits):
        await podium.chat(request, policy=podium.policies.build(request, token_limits=[limit], counters=state))
    with pytest.raises(errors.LimitExceededError, match="200 tokens per minute"):
        await podium.chat(request, policy=podium.policies.build(request, token_limits=[limit], counters=state))
    await podium.aclose()


# --- fan-out and budgets inside strategies ------------------------------------------------------------
@pytest.mark.parametrize("spec", ["consensus:cheap*400", "vote:cheap*99999999999999999999", "vote:cheap*33"])
async def test_a_fan_out_past_the_cap_is_a_400_naming_it(tmp_path: Path, spec: str):
    podium = make(tmp_path)
    with pytest.raises(errors.BadRequestError, match=r"max_calls_per_request|far too large"):
        await podium.chat("hi", model=spec)
    assert called(podium, "us") == []
    await podium.aclose()


async def test_the_cap_also_holds_for_calls_a_strategy_makes_at_run_time(tmp_path: Path):
    podium = make(tmp_path, routing={"max_calls_per_request": 3},
                  strategies={"chat": {"type": "debate", "models": ["cheap", "cheap"], "rounds": 3,
                                       "threshold": 1.0}})
    provider(podium, "us").set_script("cheap", ["alpha", "beta gamma", "delta", "epsilon zeta", "eta", "theta"])
    with pytest.raises(errors.BadRequestError, match="cap is 3 calls"):
        await podium.chat("hi", model="chat")
    assert len(called(podium, "us")) <= 3
    await podium.aclose()


async def test_on_budget_exhausted_fail_holds_for_consensus(tmp_path: Path):
    podium = make(tmp_path, strategies={"strict": {"type": "consensus", "models": ["cheap"] * 5, "budget": 0.0015,
                                                   "on_budget_exhausted": "fail"},
                                        "lenient": {"type": "consensus", "models": ["cheap"] * 5, "budget": 0.0015}})
    request = ChatRequest.from_prompt("hi", max_tokens=100)
    provider(podium, "us").set_script("cheap", Step(text="from us", latency=0.05))  # the five run at once
    state = MemoryState()
    # the strategy budget is enforced through the request's budget here: one call's worst case fits
    with pytest.raises(errors.BudgetExceededError):
        await podium.chat(request.model_copy(update={"model": "strict"}),
                          policy=budget_policy(podium, request, 0.00015, state))
    response = await podium.chat(request.model_copy(update={"model": "lenient"}),
                                 policy=budget_policy(podium, request, 0.00015, MemoryState()))
    assert response.text == "from us"
    await podium.aclose()


# --- models that cannot run here ------------------------------------------------------------------------
class Unrunnable(ScriptedProvider):
    def unavailable(self, model: Any) -> str | None:
        return "the runtime is not installed (pip install it)" if model.model_id == "cheap" else None


async def test_auto_and_strategies_never_pick_a_model_that_cannot_run_here(tmp_path: Path):
    base = make(tmp_path)
    settings = base.settings
    await base.aclose()
    podium = Podium(settings, providers=[Unrunnable("us", default="from us"), ScriptedProvider("eu", default="eu")],
                    ledger=None)
    for _ in range(3):
        assert (await podium.chat("What is 2+2?")).model != "cheap"
    assert (await podium.chat("Is 91 prime?", model="fast-vote")).text
    with pytest.raises(errors.NotFoundError, match="cannot run here: the runtime is not installed"):
        await podium.chat("hi", model="cheap")
    assert "cheap" not in [m for m, _ in podium.registry.get_provider("us").calls]  # type: ignore[attr-defined]
    await podium.aclose()


@pytest.mark.parametrize("shape", ["tools", "cjk", "image"])
async def test_the_hold_is_a_true_worst_case_whatever_the_request_carries(tmp_path: Path, shape: str):
    """Tool schemas, response formats, images and non-Latin text are billed too: concurrent requests that
    are each billed far more than their message text's estimate never take a budget past its limit."""
    podium = make(tmp_path, models={"cheap": row("us", "cheap", max_output_tokens=10, capabilities=["chat", "tools",
                                                                                                  "vision"])})
    tool = {"type": "function", "function": {"name": "lookup", "description": "x" * 900,
                                             "parameters": {"type": "object", "properties": {}}}}
    prompt = "请告诉我法国的首都是哪里" * 10 if shape == "cjk" else "hi"
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
    content: Any = prompt if shape != "image" else [{"type": "text", "text": "what is this"}, image]
    request = ChatRequest.model_validate({"messages": [{"role": "user", "content": content}], "model": "cheap",
                                          "max_tokens": 10, "tools": [tool] * 40 if shape == "tools" else None})

    def billed(req: ChatRequest) -> Step:  # what a vendor bills for it: close to the most the request can cost
        return Step(text="Paris", input_tokens=int(worst_input_tokens(req) * 0.9), output_tokens=10)

    provider(podium, "us").set_script("cheap", billed)
    state = MemoryState()
    limit = 3.5 * podium.settings.catalogue.get("cheap").estimated_cost(worst_input_tokens(request), 10)
    results = await asyncio.gather(*(podium.chat(request, policy=budget_policy(podium, request, limit, state))
                                     for _ in range(10)), return_exceptions=True)
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert len(answered) == 3 and all(isinstance(r, errors.BudgetExceededError) for r in results
                                      if isinstance(r, BaseException))
    assert await state.spent("key_b") <= limit
    await podium.aclose()


async def test_a_scope_naming_nothing_podium_knows_fails_closed(tmp_path: Path):
    """A typo ("chepa") must not turn a scoped key into an unscoped one."""
    podium = make(tmp_path)
    typo = podium.policies.build(ChatRequest.from_prompt("x"), models=["auto", "chepa"])
    assert typo.scope == frozenset()
    with pytest.raises(errors.BadRequestError, match="no enabled model"):
        await podium.chat("Design a secure distributed payment architecture", policy=typo)
    assert called(podium, "us") == []
    assert podium.policies.build(ChatRequest.from_prompt("x"), models=["auto"]).scope is None  # routing, any model
    problems = podium.policies.unknown_names(["cheap", "auto", "chepa", "consensus:cheap,nope", "vote:cheap*2"])
    assert len(problems) == 2
    assert problems[0].startswith("Unknown model 'chepa'. Did you mean: cheap")
    assert problems[1].startswith("'consensus:cheap,nope': Unknown model 'nope'")
    await podium.aclose()
