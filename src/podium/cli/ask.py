"""``podium ask``: one request through the whole stack, shown with its route, calls and cost."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from podium.cli.render import console, cost_line, trace_tree
from podium.cli.stores import check_stores
from podium.client import Podium
from podium.config import load_settings
from podium.errors import BadRequestError
from podium.types import ChatRequest, ChatResponse, Message, RequestMetadata


def strategy_model(strategy: str | None, models: str | None, model: str | None) -> str | None:
    """``--strategy consensus --models a,b,c`` is the model name ``consensus:a,b,c``."""
    if strategy is None:
        if models is not None:
            raise BadRequestError("--models needs --strategy (e.g. --strategy consensus --models a,b,c)")
        return model
    if model is not None:
        raise BadRequestError("give either --model or --strategy, not both")
    return f"{strategy}:{models}" if models else strategy


def _request(prompt: str, model: str | None, metadata: dict[str, Any], system: str | None,
             max_tokens: int | None, temperature: float | None, seed: int | None) -> ChatRequest:
    from pydantic import ValidationError

    from podium.types import describe_validation_error

    messages = ([Message.system(system)] if system else []) + [Message.user(prompt)]
    try:
        return ChatRequest(messages=messages, model=model, max_tokens=max_tokens, temperature=temperature,
                           seed=seed, metadata=RequestMetadata.model_validate(metadata))
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(exc)) from None


async def _ask(podium: Podium, request: ChatRequest, stream: bool, json_output: bool) -> ChatResponse:
    async with podium:
        if not stream:
            return await podium.chat(request)
        chat_stream = podium.stream(request)
        async for chunk in chat_stream:
            if not json_output:
                console.print(chunk.text, end="", markup=False, highlight=False, soft_wrap=True)
        if not json_output:
            console.print()
        assert chat_stream.response is not None
        return chat_stream.response


def run_ask(prompt: str, *, model: str | None, stream: bool, task_type: str | None, preset: str | None,
            sensitivity: str, tags: list[str], system: str | None, max_tokens: int | None,
            temperature: float | None, seed: int | None, show_trace: bool, json_output: bool,
            config: str | None) -> None:
    metadata: dict[str, Any] = {"task_type": task_type, "preset": preset, "sensitivity": sensitivity, "tags": tags}
    request = _request(prompt, model, metadata, system, max_tokens, temperature, seed)
    settings = load_settings(config)
    check_stores(settings)  # a ledger out of reach or unwritable: one line now, not failed rows mid-request
    podium = Podium(settings)
    baseline = podium.settings.catalogue.find(podium.settings.routing.baseline_model)
    response = asyncio.run(_ask(podium, request, stream, json_output))
    if json_output:
        print(json.dumps(response.model_dump(mode="json"), indent=2))
        return
    if not stream:
        console.print(response.text.strip() or "[dim](empty answer)[/]", markup=not response.text.strip(),
                      highlight=False)
    if show_trace and response.trace is not None:
        console.print(trace_tree(response.trace))
    console.print(cost_line(response, baseline), highlight=False)
