"""The embedded local provider: GGUF models run in-process by llama.cpp (llama-cpp-python).

One ``Llama`` instance per model, loaded on first use and kept. A ``Llama`` is not safe to use
from two threads at once, so each model owns a single-thread executor: every load, generation and
tokenisation for that model runs there, in order, and never on the event loop. Streaming bridges
that thread to asyncio through a queue; closing the stream sets a flag the generator checks
between tokens, so an abandoned stream stops generating within one token.

Two prompt formats, as the catalogue says per model: ``chat`` uses the chat template stored in
the GGUF file; ``completion`` is for base models without one (Gemma 3 270M), which answer a
``Question: …\\nAnswer:`` prompt and stop at the end of the line.

An answer depends on the request only, not on the requests before it (``_PodiumLlama.generate``).
llama-cpp-python keeps the previous request's tokens and reuses the longest common prefix; for a
repeated prompt it keeps all but the last token and decodes that one alone. llama.cpp's numbers
depend on how tokens are batched (a token decoded alone gets slightly different logits than the
same token inside the prompt's batch), so the second greedy answer to the same question drifted
from the first after a few dozen tokens. A fresh context decodes a prompt in batches of
``n_batch`` tokens from its start; Podium reuses only whole such batches of an earlier prompt (the
cache then holds exactly what a fresh decode would compute) and decodes the rest of the prompt in
the same batches a fresh decode would. A prompt shorter than one batch (512 tokens) is decoded
whole each time; a long shared start (a system prompt, a conversation so far) is read once. Models
with a sliding-window or recurrent memory (Gemma 3) always start from an empty context.

The context each model is loaded with is its catalogue row's ``context_window``: the router sends a
local model only prompts that fit that window, so the two must be the same number (the provider
option ``n_ctx`` caps the rows when the config is resolved, ``podium.config.resolve``). Without
``max_tokens`` a model writes until it stops or its context is full, as llama.cpp's own default.
Stream usage counts the tokens generated (a character may take several), the number a
non-streamed answer reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.errors import BadRequestError, ConfigError, ContextTooLongError, DependencyMissingError
from podium.providers.base import Health
from podium.providers.local import minilm, weights
from podium.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    ImagePart,
    StreamChunk,
    Usage,
)

COMPLETION_STOP = ["\n", "Question:"]
_LOAD_LOCK = threading.Lock()


@dataclass
class _Slot:
    """One model: its dedicated thread and, once loaded, its llama.cpp instance."""

    executor: ThreadPoolExecutor
    llama: Any = None


_LLAMA_CLASS: Any = None


def _import_llama() -> Any:
    """``_PodiumLlama``, made once: a subclass of llama-cpp-python's ``Llama`` (imported lazily)."""
    global _LLAMA_CLASS
    if _LLAMA_CLASS is not None:
        return _LLAMA_CLASS
    try:
        import llama_cpp
    except ImportError:
        raise DependencyMissingError("llama-cpp-python (the local model runtime)",
                                     weights.LOCAL_EXTRA) from None

    class _PodiumLlama(llama_cpp.Llama):
        """``Llama`` whose generations do not depend on earlier ones, and that counts what it generates.

        ``create_completion`` (and ``create_chat_completion``, which calls it) draws tokens from
        ``generate`` and keeps each one except a final end-of-generation token: ``generated`` is
        that count, the ``completion_tokens`` a non-streamed call reports. ``reused``: the prompt
        tokens the last generation took from the cache (whole batches only, see the module docstring)."""

        generated = 0
        reused = 0
        _aligned = 0  # input_ids[:_aligned] were decoded as a prompt's whole batches from position 0

        def _reusable(self, tokens: Sequence[int]) -> int:
            """How many leading prompt tokens may be kept: whole batches of the last prompt shared with
            this one, and never the whole prompt (its last batch must be decoded to give the logits)."""
            if (self._is_recurrent or self._is_hybrid or llama_cpp.llama_model_n_swa(self.model) > 0
                    or self.context_params.n_ubatch != self.n_batch):
                return 0
            limit = min(self._aligned, self.n_tokens, len(tokens) - 1)
            common = 0
            while common < limit and self.input_ids[common] == tokens[common]:
                common += 1
            return common // self.n_batch * self.n_batch

        def generate(self, tokens: Sequence[int], *args: Any,
                     **kwargs: Any) -> Generator[int, Sequence[int] | None, None]:
            self.generated = 0
            self.reused = keep = self._reusable(tokens)
            if keep:  # llama-cpp-python's own prefix match then keeps exactly these and decodes the rest
                self.n_tokens = keep
                self._requires_eval = True
            else:
                self.reset()  # type: ignore[no-untyped-call]
                memory = llama_cpp.llama_get_memory(self.ctx)
                if memory is not None:
                    llama_cpp.llama_memory_clear(memory, False)  # the cells; their data is never read again
            self._aligned = keep + (len(tokens) - keep) // self.n_batch * self.n_batch
            vocab = llama_cpp.llama_model_get_vocab(self.model)
            for token in super().generate(tokens, *args, **kwargs):
                if not llama_cpp.llama_vocab_is_eog(vocab, token):
                    self.generated += 1
                yield token

    _LLAMA_CLASS = _PodiumLlama
    return _LLAMA_CLASS


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 while a model loads (the C library writes there directly).

    Errors still surface: llama-cpp-python raises a Python exception when loading fails.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr at all: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def completion_prompt(request: ChatRequest) -> str:
    """A base-model prompt: system text first, earlier turns as Q/A pairs, then the open question."""
    lines: list[str] = []
    for message in request.messages:
        if message.role == "system":
            lines.append(message.text)
        elif message.role == "user":
            lines.append(f"Question: {message.text}")
        elif message.role == "assistant":
            lines.append(f"Answer: {message.text}")
    lines.append("Answer:")
    return "\n".join(lines)


def _finish(reason: str | None) -> FinishReason:
    return "length" if reason == "length" else "stop"


class LocalProvider:
    wire_name = "local"  # its column in podium.request_fields

    def __init__(self, name: str = "local", *, n_threads: int | None = None,
                 weights_paths: Mapping[str, str] | None = None) -> None:
        """Each model is loaded with its catalogue row's ``context_window`` as llama.cpp's ``n_ctx``."""
        self.name = name
        self.n_threads = n_threads or os.cpu_count() or 1
        self._weights = dict(weights_paths or {})
        self._slots: dict[str, _Slot] = {}
        self._unavailable: dict[str, str | None] = {}

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> LocalProvider:
        options = dict(spec.options)
        unknown = set(options) - {"n_ctx", "n_threads", "weights"}
        if unknown:
            raise ConfigError("unknown key (expected one of: n_ctx, n_threads, weights)",
                              key_path=f"providers.{spec.name}.options.{sorted(unknown)[0]}")
        # n_ctx caps the catalogue rows of this provider's models (podium.config.resolve), which the
        # provider loads with: the router and llama.cpp see the same window
        return cls(spec.name, n_threads=options.get("n_threads"), weights_paths=options.get("weights"))

    # --- the model thread -------------------------------------------------------------------------
    def _slot(self, model_id: str) -> _Slot:
        slot = self._slots.get(model_id)
        if slot is None:
            slot = self._slots.setdefault(
                model_id, _Slot(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"podium-{model_id}")))
        return slot

    def _load(self, slot: _Slot, model: ModelInfo, *, embedding: bool = False) -> Any:
        """Runs on the model's thread. Loads once; later calls return the same instance.

        The context is the catalogue row's window (see the module docstring). An embedding instance
        is a second load of the same weights with mean pooling over the last hidden states (llama.cpp
        fixes the mode when the context is created)."""
        if slot.llama is None:
            llama_class = _import_llama()
            path = weights.weights_path(model.model_id, self._weights)
            extra: dict[str, Any] = {}
            if embedding:
                import llama_cpp

                extra = {"embedding": True, "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN}
            # One load at a time in the whole process: llama-cpp-python silences loading by swapping file
            # descriptors 1 and 2, which is not thread-safe; two models loading at once (a consensus of two
            # models) left stdout pointing at /dev/null for good.
            with _LOAD_LOCK, _quiet_stderr():  # the C loader also prints warnings with verbose=False
                slot.llama = llama_class(model_path=str(path), n_ctx=model.context_window,
                                         n_threads=self.n_threads, verbose=False, **extra)
        return slot.llama

    def _generation_args(self, request: ChatRequest, model: ModelInfo) -> dict[str, Any]:
        if request.tools:
            raise BadRequestError(f"local model '{model.name}' does not support tools; route tool calls to a "
                                  "model with the 'tools' capability", model=model.name)
        if request.n > 1:
            raise BadRequestError(f"local model '{model.name}' returns one answer per call (n=1); "
                                  "use the vote strategy for several samples", model=model.name)
        if any(isinstance(p, ImagePart) for m in request.messages if isinstance(m.content, list)
               for p in m.content):
            raise BadRequestError(f"local model '{model.name}' cannot read images", model=model.name)
        # None: until the model stops or its context is full (llama-cpp-python's create_completion
        # would otherwise stop at 16 tokens, its own default)
        args: dict[str, Any] = {"max_tokens": request.max_tokens}
        for key in ("temperature", "top_p", "seed"):
            value = getattr(request, key)
            if value is not None:
                args[key] = value
        if model.prompt_format == "completion":
            args["stop"] = request.stop or COMPLETION_STOP
        elif request.stop:
            args["stop"] = request.stop
        if request.response_format and model.prompt_format == "chat":
            args["response_format"] = request.response_format
        return args

    def _run(self, llama: Any, request: ChatRequest, model: ModelInfo, stream: bool) -> Any:
        args = self._generation_args(request, model)
        try:
            if model.prompt_format == "completion":
                return llama.create_completion(completion_prompt(request), stream=stream, **args)
            messages = [{"role": m.role, "content": m.text} for m in request.messages]
            return llama.create_chat_completion(messages=messages, stream=stream, **args)
        except ValueError as exc:  # llama-cpp-python raises ValueError when the prompt exceeds n_ctx
            if "context window" in str(exc) or "exceed" in str(exc):
                raise ContextTooLongError(str(exc), provider=self.name, model=model.name) from None
            raise

    # --- the Provider protocol --------------------------------------------------------------------
    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        """The stream, collected. Why not llama.cpp's own non-streaming call: a generation runs on the
        model's thread and only a stream can be stopped there. When the caller goes away (a client
        disconnects, a deadline passes, the gateway shuts down) this coroutine is cancelled, the
        stream's ``finally`` raises its cancel flag and the thread stops at the next token — a
        non-streaming call wrote on to the end of the context window (minutes on a small model that
        loops) and held the model's only thread, so every later request to it waited."""
        parts: list[str] = []
        finish: FinishReason = "stop"
        usage = Usage()
        async for chunk in self.stream(request, model):
            parts.append(chunk.text)
            finish = chunk.finish_reason or finish
            usage = chunk.usage or usage
        text = "".join(parts)
        return ChatResponse(text=text.strip() if model.prompt_format == "completion" else text, model=model.name,
                            provider=self.name, finish_reason=finish, usage=usage)

    async def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        self._generation_args(request, model)  # refuse bad requests before starting a thread
        slot = self._slot(model.model_id)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()

        def put(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:  # the loop is gone: the consumer will never read this
                cancelled.set()

        def produce() -> None:
            try:
                llama = self._load(slot, model)
                for kind, value in self._stream_sync(llama, request, model, cancelled):
                    put(kind, value)
                    if cancelled.is_set():
                        break
            except BaseException as exc:  # surfaced to the consumer, re-raised there
                put("error", exc)
            finally:
                put("end", None)

        future = loop.run_in_executor(slot.executor, produce)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "end":
                    break
                if kind == "error":
                    raise value
                yield value
        finally:
            cancelled.set()
            if not future.done():
                future.add_done_callback(lambda f: f.exception())  # never "exception never retrieved"

    def _stream_sync(self, llama: Any, request: ChatRequest, model: ModelInfo,
                     cancelled: threading.Event) -> Iterator[tuple[str, StreamChunk]]:
        """Runs on the model thread: yields chunks, then one final chunk with real token counts (the
        tokens generated, counted by ``_PodiumLlama.generate``, not the text chunks: a chunk holds
        as many tokens as its characters took)."""
        prompt_tokens = self._prompt_tokens(llama, request, model)
        if prompt_tokens >= model.context_window:  # llama.cpp would fail lazily, as a bare ValueError
            raise ContextTooLongError(f"the prompt is {prompt_tokens} tokens; {model.name} holds "
                                      f"{model.context_window}", provider=self.name, model=model.name)
        finish: FinishReason = "stop"
        leading = model.prompt_format == "completion"
        for part in self._parts(llama, request, model):
            if cancelled.is_set():
                return
            choice = part["choices"][0]
            text = choice.get("text") if "text" in choice else (choice.get("delta") or {}).get("content")
            if text:
                if leading:
                    text = text.lstrip()
                    leading = not text
                if text:
                    yield "chunk", StreamChunk(text=text, model=model.name, provider=self.name)
            if choice.get("finish_reason"):
                finish = _finish(choice["finish_reason"])
        yield "chunk", StreamChunk(finish_reason=finish, model=model.name, provider=self.name,
                                   usage=Usage(input_tokens=prompt_tokens, output_tokens=llama.generated))

    def _parts(self, llama: Any, request: ChatRequest, model: ModelInfo) -> Iterator[Any]:
        """llama.cpp's stream; its ValueError for a prompt and answer over n_ctx (raised at the first part, not
        when the stream is made) is a ContextTooLongError, so a context fallback can take the request."""
        try:
            yield from self._run(llama, request, model, stream=True)
        except ValueError as exc:
            if "context window" in str(exc) or "exceed" in str(exc):
                raise ContextTooLongError(str(exc), provider=self.name, model=model.name) from None
            raise

    @staticmethod
    def _prompt_tokens(llama: Any, request: ChatRequest, model: ModelInfo) -> int:
        """Exact prompt size for a stream (llama.cpp reports usage only without streaming).

        The prompt is rendered and tokenized the way llama-cpp-python does it internally: the raw
        completion prompt with BOS, or the GGUF's chat template with its special tokens.
        """
        if model.prompt_format == "completion":
            return len(llama.tokenize(completion_prompt(request).encode(), special=True))
        template = llama.metadata.get("tokenizer.chat_template")
        messages: Any = [{"role": m.role, "content": m.text} for m in request.messages]
        if template is None:  # no template in the file: llama-cpp-python falls back to a generic format
            return len(llama.tokenize("\n".join(m["content"] for m in messages).encode(), special=True))
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def text_of(token: int) -> str:
            return llama.detokenize([token], special=True).decode() if token >= 0 else ""

        formatter = Jinja2ChatFormatter(template=template, eos_token=text_of(llama.token_eos()),
                                        bos_token=text_of(llama.token_bos()))
        rendered = formatter(messages=messages)
        return len(llama.tokenize(rendered.prompt.encode(), add_bos=not rendered.added_special, special=True))

    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse:
        if request.dimensions is not None:
            raise BadRequestError(f"local model '{model.name}' has fixed-size vectors; leave out 'dimensions'",
                                  model=model.name)
        slot = self._slot(model.model_id + "#embed")
        if model.model_id == minilm.MODEL_ID:  # a sentence encoder run in numpy, not a GGUF (minilm.py)
            texts = list(request.input)

            def encode() -> EmbeddingResponse:
                vectors, tokens = minilm.load().embed(texts)
                return EmbeddingResponse(vectors=vectors.tolist(), model=model.name, provider=self.name,
                                         usage=Usage(input_tokens=tokens))

            return await asyncio.get_running_loop().run_in_executor(slot.executor, encode)

        def run() -> EmbeddingResponse:
            llama = self._load(slot, model, embedding=True)
            result = llama.create_embedding(request.input)
            vectors = [row["embedding"] for row in sorted(result["data"], key=lambda row: row["index"])]
            return EmbeddingResponse(vectors=vectors, model=model.name, provider=self.name,
                                     usage=Usage(input_tokens=int(result["usage"]["prompt_tokens"])))

        return await asyncio.get_running_loop().run_in_executor(slot.executor, run)

    def unavailable(self, model: ModelInfo) -> str | None:
        """Why ``model`` cannot run on this machine (no runtime, no weights), or None. Checked without
        importing or loading anything, so the router can ask for every model at start-up."""
        if model.model_id in self._unavailable:
            return self._unavailable[model.model_id]
        found: str | None = None
        if model.model_id == minilm.MODEL_ID:
            found = minilm.missing()
        elif importlib.util.find_spec("llama_cpp") is None:
            found = f"the local runtime llama-cpp-python is not installed ({weights.LOCAL_EXTRA})"
        elif not weights.installed(model.model_id, self._weights):
            source = weights.SOURCES.get(model.model_id)
            found = f"its weights are not installed ({source.install if source else 'no weights known'})"
        self._unavailable[model.model_id] = found
        return found

    async def health(self) -> Health:
        try:
            _import_llama()
        except DependencyMissingError as exc:
            return Health(False, exc.message)
        ready = [m for m in weights.SOURCES if weights.installed(m, self._weights)]
        ready += [m for m in self._weights if m not in weights.SOURCES and weights.installed(m, self._weights)]
        if not ready:
            return Health(False, f"no local weights installed: {weights.LOCAL_EXTRA}")
        return Health(True, f"llama.cpp ready; weights: {', '.join(ready)}")

    async def list_models(self) -> list[str]:
        found = [m for m in {*weights.SOURCES, *self._weights} if weights.installed(m, self._weights)]
        return found + ([minilm.MODEL_ID] if minilm.missing() is None else [])

    async def aclose(self) -> None:
        for slot in self._slots.values():
            slot.executor.shutdown(wait=False, cancel_futures=True)

    def count_tokens(self, model: ModelInfo, text: str) -> int:
        """Exact count with the model's own tokenizer (loads the model if needed; runs on its thread)."""
        slot = self._slot(model.model_id)
        future = slot.executor.submit(lambda: len(self._load(slot, model).tokenize(text.encode(), add_bos=False)))
        return int(future.result())

