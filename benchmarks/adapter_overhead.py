"""Per-call and per-chunk overhead of each wire adapter, without the network.

Per call: build the vendor request body from a ChatRequest and serialise it, then parse a typical
vendor response (bytes → JSON → ChatResponse). Per chunk: one streamed event's data (bytes → JSON →
StreamChunk). The bodies are the same ones the contract-suite servers send. Targets on this machine:
< 200 µs per call, < 20 µs per chunk.

    python benchmarks/adapter_overhead.py [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from podium.providers.anthropic import wire as anthropic
from podium.providers.gemini import wire as gemini
from podium.providers.ollama import wire as ollama
from podium.providers.openai import wire as openai
from podium.types import ChatRequest, Message
from servers.http_server import Request
from servers.wires import WIRES, Scenario

REQUEST = ChatRequest(messages=[Message.system("You are a concise assistant."),
                                Message.user("Summarise the plot of Hamlet in three sentences."),
                                Message(role="assistant", content="Prince Hamlet seeks revenge..."),
                                Message.user("Now in one sentence.")], max_tokens=256, temperature=0.2)


def _payloads(kind: str) -> tuple[bytes, list[bytes], list[str]]:
    """A whole response body and the stream's data payloads, as the test servers render them."""
    scenario = Scenario(text="Hamlet, prince of Denmark, feigns madness to avenge his father and dies doing so.",
                        input_tokens=60, output_tokens=20)
    paths = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages",
             "gemini": "/v1beta/models/m:generateContent", "ollama": "/api/chat"}
    body = {"model": "m", "messages": [], "stream": False}
    whole = WIRES[kind].handle(Request("POST", paths[kind], "", {}, json.dumps(body).encode()), scenario).body
    stream_path = paths[kind].replace(":generateContent", ":streamGenerateContent")
    reply = WIRES[kind].handle(Request("POST", stream_path, "alt=sse", {}, json.dumps({**body, "stream": True,
                                                                                      "stream_options": {
                                                                                          "include_usage": True}})
                                       .encode()), scenario)
    datas = []
    lines: list[str] = []
    for raw in reply.chunks or []:
        lines.extend(raw.decode().split("\n"))
        for line in raw.decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                datas.append(line[6:].encode())
            elif kind == "ollama" and line.strip():
                datas.append(line.encode())
    return whole, datas, lines


def per_call(kind: str, whole: bytes) -> Callable[[], object]:
    if kind == "openai":
        return lambda: (orjson.dumps(openai.request_body(REQUEST, "gpt-4o-mini", stream=False)),
                        openai.parse_response(orjson.loads(whole), model="m", provider="p"))
    if kind == "anthropic":
        return lambda: (orjson.dumps(anthropic.request_body(REQUEST, "claude", stream=False, default_max_tokens=1024)),
                        anthropic.parse_response(orjson.loads(whole), model="m", provider="p"))
    if kind == "gemini":
        return lambda: (orjson.dumps(gemini.request_body(REQUEST)),
                        gemini.parse_response(orjson.loads(whole), model="m", provider="p"))
    return lambda: (orjson.dumps(ollama.request_body(REQUEST, "llama3.2", stream=False)),
                    ollama.parse_response(orjson.loads(whole), model="m", provider="p"))


def sse_framing(raw_lines: list[str]) -> Callable[[], object]:
    """Podium's own SSE decoder over the same stream: the framing cost the adapters also pay."""
    import asyncio

    from podium.providers.http import sse_events

    async def lines() -> AsyncIterator[str]:
        for line in raw_lines:
            yield line

    async def decode() -> list[tuple[str, str]]:
        return [event async for event in sse_events(lines())]

    loop = asyncio.new_event_loop()
    return lambda: loop.run_until_complete(decode())


def per_chunk(kind: str, datas: list[bytes]) -> Callable[[], object]:
    if kind == "openai":
        return lambda: [openai.parse_chunk(orjson.loads(d), model="m", provider="p") for d in datas]
    if kind == "anthropic":
        def run() -> object:
            decoder = anthropic.StreamDecoder("m", "p")
            return [decoder.feed("", orjson.loads(d)) for d in datas]
        return run
    if kind == "gemini":
        def run_gemini() -> object:
            decoder = gemini.StreamDecoder("m", "p")
            return [decoder.feed("", orjson.loads(d)) for d in datas]
        return run_gemini

    def run_ollama() -> object:
        decoder = ollama.LineDecoder("m", "p")
        return [decoder.feed("", orjson.loads(d)) for d in datas]
    return run_ollama


def timed(fn: Callable[[], object], n: int) -> float:
    """Median over 5 batches of the time per call, in microseconds."""
    for _ in range(min(n, 1000)):
        fn()
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n // 5):
            fn()
        batches.append((time.perf_counter() - start) / (n // 5) * 1e6)
    return statistics.median(batches)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    print(f"{'wire':10s} {'per call (build+parse)':>24s} {'per chunk (JSON+map)':>22s} {'+ SSE framing':>15s}"
          f"   chunks/stream")
    for kind in ("openai", "anthropic", "gemini", "ollama"):
        whole, datas, lines = _payloads(kind)
        call_us = timed(per_call(kind, whole), args.n)
        chunk_us = timed(per_chunk(kind, datas), args.n // 4) / len(datas)
        framing = timed(sse_framing(lines), args.n // 4) / len(datas) if kind != "ollama" else 0.0
        print(f"{kind:10s} {call_us:21.1f} µs {chunk_us:19.1f} µs {chunk_us + framing:12.1f} µs   {len(datas)}")


if __name__ == "__main__":
    main()
