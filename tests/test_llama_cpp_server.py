"""The OpenAI adapter against a real OpenAI-compatible server nobody here wrote: llama-cpp-python's own
``llama_cpp.server`` over the local SmolLM2 weights, started by the test on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import needs_local
from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.providers.openai.provider import OpenAIProvider
from podium.types import ChatRequest, Message

pytestmark = needs_local


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server] (the dev extra)")
    from podium.providers.local.weights import weights_path

    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")  # a file, not a pipe: a full pipe would stall the chatty server
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(weights_path("smollm2-135m-instruct")),
         "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
         "--verbose", "False"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # wait until it answers, or fail with its own output
        try:
            if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"llama_cpp.server did not start: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(10)
    log.close()


MODEL = ModelInfo(name="llamacpp-smollm2", provider="llamacpp", model_id="smollm2", display_name="SmolLM2 via server",
                  context_window=2048, input_price=0.1, output_price=0.2, tier="fast", region="local", local=True)


def request(**fields: object) -> ChatRequest:
    return ChatRequest(messages=[Message.system("You are a helpful assistant. Answer briefly."),
                                 Message.user("What is the capital of France?")],
                       max_tokens=16, temperature=0, seed=1, **fields)  # type: ignore[arg-type]


async def test_complete_and_stream_against_llama_cpp_server(llama_server: str):
    provider = OpenAIProvider(ProviderSpec(name="llamacpp", kind="openai", enabled=True, reason="t",
                                           base_url=f"{llama_server}/v1"))
    response = await provider.complete(request(), MODEL)
    assert "Paris" in response.text
    assert response.usage.input_tokens > 10 and 0 < response.usage.output_tokens <= 16
    chunks = [c async for c in provider.stream(request(), MODEL)]
    assert len([c for c in chunks if c.text]) > 2
    assert "Paris" in "".join(c.text for c in chunks)
    assert chunks[-1].finish_reason in {"stop", "length"}
    assert await provider.list_models() == ["smollm2"]
    assert (await provider.health()).ok
    await provider.aclose()


def test_podium_ask_through_the_llamacpp_row(llama_server: str, tmp_path: Path):
    """The `llamacpp` host row pointed at the server by its base-URL variable, streaming and not."""
    config = tmp_path / "podium.yaml"
    config.write_text(json.dumps({
        "models": {"smollm2-server": {"provider": "llamacpp", "model_id": "smollm2", "context_window": 2048,
                                      "input_price": 0.1, "output_price": 0.2, "tier": "fast", "region": "local",
                                      "local": True}},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")}}))
    env = {**os.environ, "LLAMACPP_BASE_URL": f"{llama_server}/v1", "PODIUM_CONFIG": str(config), "COLUMNS": "200"}
    for extra in ([], ["--stream"]):
        result = subprocess.run([sys.executable, "-m", "podium.cli", "ask", "--model", "smollm2-server", "--system",
                                 "Answer briefly.", "--temperature", "0", "--max-tokens", "16", *extra,
                                 "What is the capital of France?"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        assert "Paris" in result.stdout
        assert "call smollm2-server (llamacpp) ok" in result.stdout
    # the streamed answer came without usage (this server ignores include_usage): it is estimated and says so
    assert "usage estimated" in result.stdout
