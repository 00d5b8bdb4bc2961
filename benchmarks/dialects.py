"""CPU per request of each inbound dialect's own work: parse the JSON body into a ChatRequest, render the
answer (and a stream's events), in process, without the network or the middleware.

The issue's target: ``/v1/messages`` and ``/v1/responses`` cost at most 10 % more CPU per request than
``/v1/chat/completions``. The requests are the same conversation in each API's shape (system prompt,
three turns, a tool definition, sampling fields), the answers the same ChatResponse; bodies arrive as
bytes, so JSON decoding and encoding are counted too. Also printed: the whole gateway round trip (ASGI,
scripted model, every default middleware, no ledger) for each route, which is what a client pays.

    python benchmarks/dialects.py [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from podium.server.anthropic_messages_api import ANTHROPIC_MESSAGES
from podium.server.openai_schema import CHAT_COMPLETIONS
from podium.server.responses_api import RESPONSES
from podium.types import ChatResponse, StreamChunk, Trace, Usage

SYSTEM = "You are a concise assistant."
TURNS = [("user", "Summarise the plot of Hamlet in three sentences."),
         ("assistant", "Prince Hamlet seeks revenge for his father's murder..."), ("user", "Now in one sentence.")]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

CHAT = orjson.dumps({
    "model": "m", "max_tokens": 256, "temperature": 0.2, "stop": ["END"],
    "messages": [{"role": "system", "content": SYSTEM}, *({"role": r, "content": t} for r, t in TURNS)],
    "tools": [{"type": "function",
               "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA}}],
})
MESSAGES = orjson.dumps({
    "model": "m", "max_tokens": 256, "temperature": 0.2, "stop_sequences": ["END"], "system": SYSTEM,
    "messages": [{"role": r, "content": t} for r, t in TURNS],
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}],
})
RESPONSES_BODY = orjson.dumps({
    "model": "m", "max_output_tokens": 256, "temperature": 0.2, "instructions": SYSTEM,
    "input": [{"role": r, "content": t} for r, t in TURNS],
    "tools": [{"type": "function", "name": "get_weather", "description": "Weather", "parameters": SCHEMA,
               "strict": False}],
})
ANSWER = ChatResponse(text="Hamlet avenges his father and dies doing it.", model="m", provider="p",
                      usage=Usage(input_tokens=60, output_tokens=12), trace=Trace(request_id="req_1"))
CHUNKS = [StreamChunk(text=w + " ", model="m") for w in ANSWER.text.split()] + [
    StreamChunk(finish_reason="stop", usage=ANSWER.usage)]
HEADERS: dict[str, str] = {}


def per_call(fn: Callable[[], Any], n: int) -> float:
    """Median µs per call over five rounds of ``n``."""
    rounds = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(n):
            fn()
        rounds.append((time.process_time() - start) / n * 1e6)
    return statistics.median(rounds)


def interleaved(fns: dict[str, Callable[[], Any]], n: int, rounds: int = 7) -> dict[str, float]:
    """Median µs per call of each function, the functions taking turns round by round, so that drift (other
    processes on the machine, the collector) hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            for _ in range(n):
                fn()
            samples[name].append((time.process_time() - start) / n * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


async def _stream_bytes(dialect: Any, exchange: Any) -> int:
    async def chunks() -> AsyncIterator[StreamChunk]:
        for chunk in CHUNKS[1:]:
            yield chunk

    total = 0
    async for data in dialect.events(exchange, "req_1", CHUNKS[0], chunks(), lambda: ANSWER):
        total += len(data)
    return total


def stream_per_call(dialect: Any, body: bytes, n: int) -> float:
    loop = asyncio.new_event_loop()
    exchange = dialect.parse(orjson.loads(body), HEADERS)
    try:
        return per_call(lambda: loop.run_until_complete(_stream_bytes(dialect, exchange)), n)
    finally:
        loop.close()


async def round_trips(n: int) -> dict[str, float]:
    """CPU µs per request through the whole app, per route."""
    from podium.client import Podium
    from podium.config import load_settings
    from podium.server.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "podium.yaml"
        path.write_text(json.dumps({
            "providers": {"canned": {"kind": "scripted", "options": {"default": ANSWER.text}},
                          "local": {"enabled": False}},
            "models": {"m": {"provider": "canned", "model_id": "m-1", "context_window": 8000, "input_price": 1.0,
                             "output_price": 2.0, "tier": "fast", "region": "us", "capabilities": ["chat", "tools"]}},
            "gateway": {"auth": "optional", "keys_path": str(Path(tmp) / "keys.sqlite3")},
            "ledger": {"enabled": False}}))
        settings = load_settings(path)
        podium = Podium(settings)
        app = create_app(settings, podium=podium)
        routes = (("/v1/chat/completions", CHAT), ("/v1/messages", MESSAGES), ("/v1/responses", RESPONSES_BODY))
        rounds: dict[str, list[float]] = {route: [] for route, _ in routes}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
            for route, body in routes:
                for _ in range(200):  # warm up
                    assert (await http.post(route, content=body)).status_code == 200
            for _ in range(7):  # the routes take turns, so drift (caches, the collector) hits both alike
                for route, body in routes:
                    start = time.process_time()
                    for _ in range(n):
                        await http.post(route, content=body)
                    rounds[route].append((time.process_time() - start) / n * 1e6)
        await podium.aclose()
        return {route: statistics.median(values) for route, values in rounds.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    n = args.n
    dialects = (("chat.completions", CHAT_COMPLETIONS, CHAT), ("anthropic.messages", ANTHROPIC_MESSAGES, MESSAGES),
                ("responses", RESPONSES, RESPONSES_BODY))
    fns: dict[str, Callable[[], Any]] = {}
    for name, dialect, body in dialects:
        fns[f"{name} parse"] = lambda d=dialect, b=body: d.parse(orjson.loads(b), HEADERS)
        exchange = dialect.parse(orjson.loads(body), HEADERS)
        fns[f"{name} answer"] = lambda d=dialect, x=exchange: orjson.dumps(d.answer(x, ANSWER))
    timed = interleaved(fns, n // 4)
    rows = [(name, timed[f"{name} parse"], timed[f"{name} answer"], stream_per_call(dialect, body, max(n // 10, 100)))
            for name, dialect, body in dialects]
    print(f"{'dialect':20} {'parse µs':>9} {'answer µs':>10} {'parse+answer':>13} {'stream µs':>10}")
    for name, parse, answer, stream in rows:
        print(f"{name:20} {parse:9.1f} {answer:10.1f} {parse + answer:13.1f} {stream:10.1f}")
    base = rows[0][1] + rows[0][2]
    for (_, parse, answer, _), route in zip(rows[1:], ("/v1/messages", "/v1/responses"), strict=True):
        mine = parse + answer
        print(f"parse+answer: {route} {mine - base:+.1f} µs ({(mine / base - 1) * 100:+.1f} %) against chat "
              "completions")
    trips = asyncio.run(round_trips(max(n // 20, 200)))
    chat = trips["/v1/chat/completions"]
    print(f"whole request (ASGI, scripted model, default middleware): chat completions {chat:.0f} µs, " + ", ".join(
        f"{route} {trips[route]:.0f} µs ({(trips[route] / chat - 1) * 100:+.1f} %)"
        for route in ("/v1/messages", "/v1/responses")))


if __name__ == "__main__":
    main()
