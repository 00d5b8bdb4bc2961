"""A real ``podium serve`` in front of the four outbound wires, for suites written against OpenAI itself.

Each wire has its own upstream: a ``WireServer`` speaking the vendor's format (``servers.wires``)
whose answers follow the request (``servers.answers``: tool calls, structured output, stop
sequences). The gateway's config names one model per wire (``<wire>-wire``) and a second one on
the same wire (``<wire>-wire-alt``, for model overrides); nothing falls back to another model,
so an answer always comes from the wire a test asked for (``x-podium-provider`` says which).
``<wire>-wire-errors`` is for the upstream's errors (``[[error:<kind>]]`` in a prompt), so no
other model's deployment is cooled down by them.
Like the APIs, the upstreams refuse what their vendors refuse: Gemini a function's ``parameters``
with JSON Schema fields outside its Schema type, empty parts, and function responses that do not
follow their calls; Anthropic ``temperature`` with ``top_p`` on the Claude models that do, and
message lists whose roles do not alternate, with empty text blocks or a tool_use without its
tool_result.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from servers.answers import scenario
from servers.http_server import Reply, Request, WireServer
from servers.wires import WIRES, AnthropicWire, GeminiWire, Scenario

WIRE_KINDS = ("openai", "anthropic", "gemini", "ollama")
# (model id, alt model id) per wire, as each vendor names its models
MODEL_IDS = {"openai": ("gpt-4o-mini", "gpt-4.1-mini"), "anthropic": ("claude-sonnet-4-5-20250929", "claude-haiku-4-5"),
             "gemini": ("gemini-2.5-flash", "gemini-2.5-flash-lite"), "ollama": ("llama3.2:3b", "qwen3:4b")}
PREFIX = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta", "ollama": ""}
UPSTREAM_KEY = "sk-upstream-0123456789abcdef"


def upstream_handler(kind: str) -> Callable[[Request], Reply]:
    """A vendor's server whose answers follow each request (``servers.answers``)."""
    strict = {"gemini": GeminiWire(check_parameters=True, check_contents=True),
              "anthropic": AnthropicWire(check_sampling=True, check_messages=True)}
    wire = strict.get(kind, WIRES[kind])

    def handle(request: Request) -> Reply:
        body = request.json if request.method == "POST" and request.body else None
        chat = isinstance(body, dict) and ("messages" in body or "contents" in body)
        return wire.handle(request, scenario(kind, body) if chat else Scenario())

    return handle


@dataclass
class Gateway:
    url: str
    upstreams: dict[str, WireServer]
    log: Path
    process: subprocess.Popen[bytes]

    def model(self, kind: str, alt: bool = False) -> str:
        return f"{kind}-wire-alt" if alt else f"{kind}-wire"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, upstreams: dict[str, WireServer]) -> Path:
    models: dict[str, dict[str, object]] = {}
    for kind in WIRE_KINDS:  # a model that only answers errors: its deployment's health is nobody else's
        models[f"{kind}-wire-errors"] = {"provider": f"up-{kind}", "model_id": MODEL_IDS[kind][0],
                                         "context_window": 128000, "input_price": 1.0, "output_price": 2.0,
                                         "tier": "fast", "region": "us"}
        for alt, model_id in zip((False, True), MODEL_IDS[kind], strict=True):
            # the alt models lack "json" (structured output): on Anthropic a JSON answer comes by a forced tool
            capabilities = ["chat", "tools", "vision"] + ([] if alt else ["json"])
            models[f"{kind}-wire-alt" if alt else f"{kind}-wire"] = {
                "provider": f"up-{kind}", "model_id": model_id, "context_window": 128000,
                "max_output_tokens": 8192, "input_price": 1.0, "output_price": 2.0, "tier": "fast",
                "region": "us", "capabilities": capabilities}
    config = {
        "providers": {**{f"up-{kind}": {"kind": kind, "base_url": upstreams[kind].url + PREFIX[kind],
                                        "api_key": UPSTREAM_KEY} for kind in WIRE_KINDS},
                      "local": {"enabled": False}},
        "models": models,
        "routing": {"default": "openai-wire"},
        "resilience": {"retries": {"max_attempts": 1}, "context_fallback": False, "filter_fallback": False,
                       "breaker": {"failures": 1000}},
        "gateway": {"auth": "optional", "keys_path": str(directory / "keys.sqlite3")},
        "ledger": {"path": str(directory / "ledger.sqlite3")},
    }
    path = directory / "podium.yaml"
    path.write_text(json.dumps(config))
    return path


def _clean_env() -> dict[str, str]:
    """The gateway sees no developer's keys, config or proxy."""
    return {k: v for k, v in os.environ.items()
            if not k.endswith(("_API_KEY", "_BASE_URL")) and k.lower() not in {"https_proxy", "http_proxy", "all_proxy"}
            and k not in {"PODIUM_CONFIG", "PODIUM_LEDGER", "OLLAMA_HOST"}}


@contextmanager
def running_gateway(directory: Path) -> Iterator[Gateway]:
    upstreams = {kind: WireServer(upstream_handler(kind)).start() for kind in WIRE_KINDS}
    config = write_config(directory, upstreams)
    port = free_port()
    log = directory / "gateway.log"
    process = subprocess.Popen([sys.executable, "-m", "podium.cli", "serve", "--port", str(port), "--config",
                                str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=directory,
                               env=_clean_env())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podium serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Gateway(url, upstreams, log, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        for server in upstreams.values():
            server.stop()
