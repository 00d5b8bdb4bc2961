import sqlite3
from pathlib import Path

import pytest

from podium.client import Podium, SyncPodium
from podium.config import load_settings
from podium.errors import BadRequestError, NotFoundError, ProviderUnavailableError
from podium.providers.scripted import Step
from podium.types import ChatRequest, Message, RequestMetadata


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def canned(podium: Podium):
    return podium.registry.get_provider("canned")


async def test_default_route_answer_cost_and_trace(podium: Podium, tmp_path: Path):
    response = await podium.chat("What is the capital of France?")
    assert response.text == "Paris"
    assert response.model == "cheap" and response.provider == "canned"
    model = podium.settings.catalogue.get("cheap")
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.cost == pytest.approx(model.cost_of(response.usage))
    trace = response.trace
    assert trace.decision.model == "cheap" and "default" in trace.decision.rationale
    assert [c.model for c in trace.calls] == ["cheap"]
    assert trace.calls[0].cost == response.cost
    assert response.id == trace.request_id
    (status, model_name, cost, calls, rationale), = rows(
        tmp_path / "ledger.sqlite3", "SELECT status, model, cost, calls, rationale FROM requests")
    assert (status, model_name, calls) == ("ok", "cheap", 1)
    assert cost == pytest.approx(response.cost)
    assert "default" in rationale


async def test_task_type_rule_and_explicit_model(podium: Podium):
    planned = await podium.chat("Design the system", metadata=RequestMetadata(task_type="planning"))
    assert planned.model == "pricey" and "planning" in planned.trace.decision.rationale
    explicit = await podium.chat("hi", model="eu-model")
    assert explicit.model == "eu-model" and explicit.trace.decision.rationale == "requested explicitly"
    assert explicit.trace.decision.confidence == 1.0


async def test_estimated_cost_is_an_upper_bound_of_the_real_cost(podium: Podium):
    response = await podium.chat("hello there", max_tokens=50)
    assert response.trace.decision.estimated_cost >= response.cost


async def test_bad_input_fails_before_any_call(podium: Podium):
    with pytest.raises(BadRequestError, match="max_tokens"):
        await podium.chat("hi", max_tokens=0)
    with pytest.raises(BadRequestError, match="temperature"):
        await podium.chat("hi", temperature=3)
    with pytest.raises(BadRequestError, match="prompt is empty"):
        await podium.chat("  ")
    with pytest.raises(NotFoundError, match="Did you mean: cheap"):
        await podium.chat("hi", model="chep")
    with pytest.raises(NotFoundError, match="provider 'openai', which is not enabled"):
        await podium.chat("hi", model="gpt-4o")
    assert canned(podium).calls == []


async def test_provider_failure_is_raised_and_recorded(podium: Podium, tmp_path: Path):
    canned(podium).set_script("cheap-1", Step(error=ProviderUnavailableError("upstream overloaded")))
    with pytest.raises(ProviderUnavailableError):
        await podium.chat("hi")
    (status, error, retries, notes), = rows(tmp_path / "ledger.sqlite3",
                                           "SELECT status, error, retries, notes FROM requests")
    assert status == "error" and "overloaded" in error
    # transient: retried up to resilience.retries.max_attempts (3), every attempt its own call row
    assert rows(tmp_path / "ledger.sqlite3", "SELECT status FROM calls") == [("error",)] * 3
    assert retries == 2 and "attempt 3 on cheap@canned failed: unavailable" in notes


async def test_stream_yields_chunks_then_a_full_response(podium: Podium, tmp_path: Path):
    canned(podium).set_script("cheap-1", "The capital is Paris")
    stream = podium.stream("Capital of France?")
    chunks = [chunk async for chunk in stream]
    assert "".join(c.text for c in chunks) == "The capital is Paris"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None
    response = stream.response
    assert response.text == "The capital is Paris"
    assert response.usage == chunks[-1].usage
    assert response.cost == pytest.approx(podium.settings.catalogue.get("cheap").cost_of(response.usage))
    assert rows(tmp_path / "ledger.sqlite3", "SELECT status FROM requests") == [("ok",)]


async def test_abandoned_stream_is_recorded_as_cancelled(podium: Podium, tmp_path: Path):
    canned(podium).set_script("cheap-1", "one two three four five")
    stream = aiter(podium.stream("count"))
    first = await anext(stream)
    assert first.text == "one "
    await stream.aclose()
    assert rows(tmp_path / "ledger.sqlite3", "SELECT status FROM calls") == [("cancelled",)]


async def test_request_object_and_multimodal_pass_through(podium: Podium):
    request = ChatRequest(messages=[Message(role="user", content=[
        {"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}])])
    await podium.chat(request)
    _, seen = canned(podium).calls[-1]
    assert seen.messages[0].content[1].image_url.url == "https://x/y.png"
    assert seen.max_tokens == podium.settings.defaults.max_tokens  # defaults filled in


def test_sync_wrapper(scripted_config: Path):
    with SyncPodium(Podium(load_settings(scripted_config))) as podium:
        assert podium.chat("hi").text == "Paris"
        assert "".join(c.text for c in podium.stream("hi")) == "Paris"
