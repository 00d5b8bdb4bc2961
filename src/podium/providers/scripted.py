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
          default: {error: unavailable}     # models without a script fail as a provider that is down

A step written in the config is checked when the provider is built: an unknown key, a value of the
wrong type or an unknown error kind is a ``ConfigError`` naming its key path, so ``podium`` stops
with one line instead of failing on the first request (or with a traceback).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podium import errors
from podium.catalogue import ModelInfo, approximate_tokens
from podium.config import ProviderSpec
from podium.errors import ConfigError, NotFoundError, PodiumError
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


def _as_step(value: Step | str) -> Step:
    return value if isinstance(value, Step) else Step(text=value)


# The error kinds a step in the config may raise (the names ``resilience.fallbacks[].on`` uses).
ERRORS: dict[str, type[PodiumError]] = {
    "rate_limited": errors.RateLimitedError, "unavailable": errors.ProviderUnavailableError,
    "timeout": errors.TimeoutError, "provider_error": errors.ProviderError,
    "context_too_long": errors.ContextTooLongError, "content_filtered": errors.ContentFilteredError,
    "auth": errors.AuthenticationError, "permission": errors.PermissionDeniedError, "not_found": errors.NotFoundError,
}
_FINISH = ("stop", "length", "tool_calls", "content_filter")
_NUMBERS = {"latency": float, "chunk_latency": float, "input_tokens": int, "output_tokens": int,
            "fail_after_chunks": int}
STEP_KEYS = ("text", "error", "finish_reason", "chunks", *_NUMBERS)


def step_from_config(value: Any, key_path: str) -> Step:
    """One step as written in podium.yaml: a string (the answer) or a mapping of ``STEP_KEYS``."""
    if isinstance(value, str):
        return Step(text=value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"a step is an answer (a string) or a mapping of {', '.join(STEP_KEYS)}, "
                          f"not {type(value).__name__}", key_path=key_path)
    fields: dict[str, Any] = {}
    for key, item in value.items():
        where = f"{key_path}.{key}"
        if key == "text":
            if not isinstance(item, str):
                raise ConfigError(f"must be a string, not {type(item).__name__}", key_path=where)
            fields[key] = item
        elif key in _NUMBERS:
            kind = _NUMBERS[key]
            if isinstance(item, bool) or not isinstance(item, int | float) or item < 0 \
                    or (kind is int and not isinstance(item, int)):
                noun = "a whole number" if kind is int else "a number of seconds"
                raise ConfigError(f"must be {noun}, 0 or more (got {item!r})", key_path=where)
            fields[key] = kind(item)
        elif key == "error":
            if item not in ERRORS:
                raise ConfigError(f"unknown error kind {item!r} (one of: {', '.join(ERRORS)})", key_path=where)
            fields[key] = ERRORS[item](f"scripted {item}")
        elif key == "finish_reason":
            if item not in _FINISH:
                raise ConfigError(f"must be one of: {', '.join(_FINISH)} (got {item!r})", key_path=where)
            fields[key] = item
        elif key == "chunks":
            if not isinstance(item, list) or not all(isinstance(c, str) for c in item):
                raise ConfigError("must be a list of strings", key_path=where)
            fields[key] = item
        else:
            raise ConfigError(f"unknown key (expected one of: {', '.join(STEP_KEYS)})", key_path=where)
    return Step(**fields)


def _script_from_config(value: Any, key_path: str) -> Step | list[Step]:
    if isinstance(value, list):
        if not value:
            raise ConfigError("a list of steps needs at least one step", key_path=key_path)
        return [step_from_config(item, f"{key_path}[{i}]") for i, item in enumerate(value)]
    return step_from_config(value, key_path)


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
        where = f"providers.{spec.name}.options"
        unknown = sorted(set(spec.options) - {"answers", "default"})
        if unknown:
            raise ConfigError("unknown key (expected one of: answers, default)", key_path=f"{where}.{unknown[0]}")
        answers = spec.options.get("answers") or {}
        if not isinstance(answers, Mapping):
            raise ConfigError("must map model ids to steps, e.g. {my-model: Paris}", key_path=f"{where}.answers")
        scripts: dict[str, Script] = {str(model): _script_from_config(value, f"{where}.answers.{model}")
                                      for model, value in answers.items()}
        default = spec.options.get("default")
        return cls(spec.name, scripts, _script_from_config(default, f"{where}.default")
                   if default is not None else None)

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
