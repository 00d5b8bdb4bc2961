"""``n > 1`` on a wire that returns one answer per call: ``n`` parallel calls, each answer kept as its own choice.

OpenAI and Gemini return several choices themselves; Anthropic, Ollama and the local models do
not, so a client's ``n=3`` becomes three calls with ``n=1``. Their answers are never spliced into
one text: the first is the response, the others are ``more_choices`` with indexes 1..n-1, and a
stream tags every piece with the index of the call it came from. Usage is the sum of the calls'
(the provider billed each); if one call fails the others are cancelled and the error is raised,
as for a single call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from podium.catalogue import ModelInfo
from podium.types import ChatRequest, ChatResponse, Choice, StreamChunk, Usage


async def complete(provider: Any, request: ChatRequest, model: ModelInfo) -> ChatResponse:
    single = request.model_copy(update={"n": 1})
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(provider.complete(single, model)) for _ in range(request.n)]
    answers: list[ChatResponse] = [task.result() for task in tasks]
    usage = Usage()
    for answer in answers:
        usage = usage + answer.usage
    more = [Choice(index=i, text=a.text, tool_calls=a.tool_calls, finish_reason=a.finish_reason, logprobs=a.logprobs,
                   message_extras=a.message_extras) for i, a in enumerate(answers[1:], start=1)]
    return answers[0].model_copy(update={"usage": usage, "more_choices": more})


_DONE = object()


async def stream(provider: Any, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
    """The calls' chunks as they arrive, each with its call's index; one usage chunk at the end (the sum),
    or none if a call reported none (the caller then estimates, as for any stream without usage)."""
    single = request.model_copy(update={"n": 1})
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    usages: dict[int, Usage] = {}

    async def pump(index: int) -> None:
        chunks = provider.stream(single, model)
        try:
            async for chunk in chunks:
                await queue.put((index, chunk))
            await queue.put((index, _DONE))
        except BaseException as exc:
            await queue.put((index, exc))
            raise
        finally:
            await chunks.aclose()

    tasks = [asyncio.create_task(pump(i)) for i in range(request.n)]
    running = len(tasks)
    last: StreamChunk | None = None
    try:
        while running:
            index, item = await queue.get()
            if item is _DONE:
                running -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            chunk: StreamChunk = item
            if chunk.usage is not None:
                usages[index] = chunk.usage
            last = chunk
            if chunk.text or chunk.tool_calls or chunk.finish_reason or chunk.logprobs:
                yield chunk.model_copy(update={"index": index, "usage": None})
        if len(usages) == request.n:
            total = Usage()
            for usage in usages.values():
                total = total + usage
            yield StreamChunk(usage=total, model=last.model if last else None,
                              provider=last.provider if last else None)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
