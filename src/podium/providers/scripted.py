"""A provider whose answers, latencies, token counts and errors are written in advance.

For tests and demos of everything above the edge (routing, strategies, ledger) without a model.
Each model id has a script: one step, a list of steps played in order (the last one repeats), or
a function of the request. Every request it receives is kept in ``calls`` for assertions.

In podium.yaml::

    providers:
      canned:
        kind: scripted
        options:
          answers: {echo-model: "Paris", slow-model: {text: "Lyon", latency: 0.2}}
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium.catalogue import ModelInfo, approximate_tokens
from podium.config import ProviderSpec
from podium.errors import NotFoundError, PodiumError
from podium.providers.base import Health
from podium.types import ChatRequest, ChatResponse, FinishReason, StreamChunk, ToolCall, ToolCallDelta, Usage


@dataclass(frozen=True)
class Step:
    text: str = ""
    latency: float = 0.0
    error: PodiumError | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    tool_calls: Sequence[ToolCall] | None = None
    finish_reason: FinishReason = "stop"
    chunks: Sequence[str] | None = None
    chunk_latency: float = 0.0
    fail_after_chunks: int | None = None  # raise ``error`` mid-stream after this many chunks


Script = Step | str | Sequence[Step | str] | Callable[[ChatRequest], Step | str]


def _as_step(value: Step | str | Mapping[str, Any]) -> Step:
    if isinstance(value, Step):
        return value
    if isinstance(value, str):
        return Step(text=value)
    return Step(**value)


class ScriptedProvider:
    def __init__(self, name: str = "scripted", scripts: Mapping[str, Script] | None = None,
                 default: Script | None = None) -> None:
        self.name = name
        self._scripts: dict[str, Script] = dict(scripts or {})
        self._default = default
        self._positions: dict[str, int] = {}
        self.calls: list[tuple[str, ChatRequest]] = []
        self.closed = False

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> ScriptedProvider:
        answers = spec.options.get("answers", {})
        scripts: dict[str, Script] = {
            model: [_as_step(s) for s in value] if isinstance(value, list) else _as_step(value)
            for model, value in answers.items()
        }
        default = spec.options.get("default")
        return cls(spec.name, scripts, _as_step(default) if default is not None else None)

    def set_script(self, model_id: str, script: Script) -> None:
        self._scripts[model_id] = script
        self._positions.pop(model_id, None)

    def _next_step(self, request: ChatRequest, model: ModelInfo) -> Step:
        self.calls.append((model.model_id, request))
        script = self._scripts.get(model.model_id, self._default)
        if script is None:
            raise NotFoundError(f"scripted provider '{self.name}' has no script for model '{model.model_id}'",
                                provider=self.name, model=model.model_id)
        if callable(script):
            return _as_step(script(request))
        if isinstance(script, Step | str):
            return _as_step(script)
        position = self._positions.get(model.model_id, 0)
        self._positions[model.model_id] = position + 1
        return _as_step(script[min(position, len(script) - 1)])

    def _usage(self, step: Step, request: ChatRequest, text: str) -> Usage:
        return Usage(
            input_tokens=step.input_tokens if step.input_tokens is not None
            else approximate_tokens(request.prompt_text),
            output_tokens=step.output_tokens if step.output_tokens is not None else approximate_tokens(text),
        )

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        step = self._next_step(request, model)
        if step.latency:
            await asyncio.sleep(step.latency)
        if step.error is not None:
            raise step.error
        return ChatResponse(text=step.text, tool_calls=list(step.tool_calls) if step.tool_calls else None,
                            model=model.name, provider=self.name, usage=self._usage(step, request, step.text),
                            finish_reason=step.finish_reason)

    async def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        step = self._next_step(request, model)
        if step.latency:
            await asyncio.sleep(step.latency)
        if step.error is not None and step.fail_after_chunks is None:
            raise step.error
        chunks = list(step.chunks) if step.chunks is not None else _words(step.text)
        for index, chunk in enumerate(chunks):
            if step.fail_after_chunks is not None and index == step.fail_after_chunks and step.error:
                raise step.error
            if step.chunk_latency:
                await asyncio.sleep(step.chunk_latency)
            yield StreamChunk(text=chunk, model=model.name, provider=self.name)
        for i, call in enumerate(step.tool_calls or ()):
            yield StreamChunk(tool_calls=[ToolCallDelta(index=i, id=call.id, name=call.function.name,
                                                        arguments=call.function.arguments)])
        yield StreamChunk(finish_reason=step.finish_reason, usage=self._usage(step, request, "".join(chunks)),
                          model=model.name, provider=self.name)

    async def health(self) -> Health:
        return Health(True, "scripted")

    async def list_models(self) -> list[str]:
        return sorted(self._scripts)

    async def aclose(self) -> None:
        self.closed = True


def _words(text: str) -> list[str]:
    """Split into word chunks that join back to exactly ``text``."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]
