"""Token counts before a call, for cost estimates and context-window checks.

Exact where Podium can be exact without the network: OpenAI models through tiktoken when its
encoding file is already on disk (tiktoken downloads encodings on first use, which an offline
machine cannot), local models through their own tokenizer (the local provider reports real
counts after a call). Everywhere else the documented approximation is used:

    tokens(text)      ≈ ceil(len(text) / 4)      (OpenAI's "about four characters per token")
    tokens(messages)  ≈ Σ (tokens(content) + 4) + 3   (role/separator overhead per message, reply priming)

The approximation is meant for routing, never for billing: billed cost always comes from the
usage the provider reports. Budget holds need more than an estimate — an upper bound, or a request in
Chinese or one carrying eighty tool schemas outspends its hold many times over — so
``worst_input_tokens`` counts what a provider could bill at most: one token per UTF-8 byte of
everything it reads (no byte-level BPE or SentencePiece tokenizer makes more tokens than bytes),
tool definitions and response schemas included, plus each vendor's largest per-message, per-image and
tool-prompt overheads.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import orjson

from podium.catalogue.model_info import ModelInfo
from podium.types import ChatRequest, ImagePart, Message, TextPart

PER_MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
# Upper bounds for what a provider adds around the text (chat-template tokens per message; an image at
# its largest — OpenAI ~1,100 high-detail tiles, Anthropic ~1,600 at 1.15 MP; Anthropic's tool-use
# system prompt ~350-500): never less than the vendors publish.
WORST_PER_MESSAGE = 16
WORST_PER_IMAGE = 2_000
WORST_TOOL_PROMPT = 1_000

_ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


def approximate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def _tiktoken_cache_dir() -> Path:
    configured = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "data-gym-cache"


@lru_cache(maxsize=4)
def _tiktoken_counter(encoding_name: str) -> Callable[[str], int] | None:
    """A tiktoken counter if the encoding is cached locally; None rather than a network fetch."""
    url = _ENCODING_URLS.get(encoding_name)
    if url is None:
        return None
    cached = _tiktoken_cache_dir() / hashlib.sha1(url.encode()).hexdigest()
    if not cached.exists():
        return None
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(encoding_name)
    except Exception:  # a corrupt cache must not break routing; fall back to the estimate
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def _encoding_for(model: ModelInfo | None) -> str | None:
    if model is None or model.provider != "openai":
        return None
    return "cl100k_base" if model.model_id.startswith(("gpt-3.5", "gpt-4-", "text-embedding")) else "o200k_base"


def count_tokens(text: str, model: ModelInfo | None = None) -> int:
    encoding = _encoding_for(model)
    counter = _tiktoken_counter(encoding) if encoding else None
    return counter(text) if counter else approximate_tokens(text)


def count_message_tokens(messages: Sequence[Message], model: ModelInfo | None = None) -> int:
    return sum(count_tokens(m.text, model) + PER_MESSAGE_OVERHEAD for m in messages) + REPLY_PRIMING


def worst_input_tokens(request: ChatRequest) -> int:
    """The most input tokens any vendor could bill for ``request`` (see the module docstring)."""
    total = REPLY_PRIMING
    for message in request.messages:
        total += WORST_PER_MESSAGE
        content = message.content
        if isinstance(content, str):
            total += len(content.encode())
        elif content:
            for part in content:
                if isinstance(part, TextPart):
                    total += len(part.text.encode())
                elif isinstance(part, ImagePart):
                    total += WORST_PER_IMAGE
                else:  # audio, a file: at most a token per byte of what is sent
                    total += len(part.model_dump_json())
        if message.name:
            total += len(message.name.encode())
        for call in message.tool_calls or ():
            total += len(call.function.name.encode()) + len(call.function.arguments.encode()) + WORST_PER_MESSAGE
    if request.tools:
        total += WORST_TOOL_PROMPT + len(orjson.dumps([tool.model_dump(exclude_none=True) for tool in request.tools]))
    if request.response_format:
        total += len(orjson.dumps(request.response_format))
    return total
