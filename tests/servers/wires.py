"""Four providers' wire formats, rendered from one neutral ``Scenario``.

Each personality answers the way its vendor's API reference documents: the JSON bodies, the
streaming events (OpenAI SSE with ``[DONE]``, Anthropic typed SSE events, Gemini ``alt=sse``
objects, Ollama NDJSON), the error bodies and the rate-limit headers. The shapes are copied from the
vendors' published examples, not from Podium's adapters.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from servers.http_server import Fault, Reply, Request

KEY_ECHO = "Incorrect API key provided: {key}."


@dataclass
class Scenario:
    text: str = "Hello from the wire."
    tool: tuple[str, str, str] | None = None  # (id, name, JSON arguments)
    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    error: str | None = None  # context, auth, permission, not_found, rate_limit, server, unavailable, filtered
    fault: Fault = None
    fault_after_chunks: int = 1
    truncate: bool = False  # stream ends without its terminator
    truncate_after: int | None = None  # stream ends cleanly after this many events, terminator never sent
    malformed: bool = False
    chunk_delay: float = 0.0
    repeat: int = 1  # the text pieces are sent this many times (long streams for cancellation)
    status: int | None = None  # any HTTP status, with a generic error body of the wire's shape
    retry_after: str | None = None
    finish: str | None = None  # the vendor's own finish/stop reason (SAFETY, refusal, content_filter …)
    thinking: str | None = None  # reasoning the vendor sends apart from the answer (never part of its text)
    json_answer: str = '{"answer": 42}'  # what a forced JSON tool or structured output answers

    def pieces(self) -> list[str]:
        words = self.text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] * self.repeat


def _sse(events: list[tuple[str | None, Any]]) -> list[bytes]:
    out = []
    for event, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append(((f"event: {event}\n" if event else "") + f"data: {payload}\n\n").encode())
    return out


def _reply(scenario: Scenario, body: Any = None, chunks: list[bytes] | None = None,
           content_type: str = "application/json") -> Reply:
    if scenario.malformed:
        return Reply(200, {"content-type": content_type}, b'{"id": "x", "choices": [', None)
    if chunks is not None and scenario.truncate:
        chunks = chunks[:-2] if len(chunks) > 2 else chunks[:1]
    if chunks is not None and scenario.truncate_after is not None:
        chunks = chunks[:scenario.truncate_after]
    return Reply(200, {"content-type": content_type}, json.dumps(body).encode() if body is not None else b"",
                 chunks, scenario.chunk_delay, scenario.fault, scenario.fault_after_chunks)


def word_vector(text: str, dims: int = 64) -> list[float]:
    """A deterministic embedding: words hashed into ``dims`` buckets, L2-normalised. Texts with the
    same words point the same way, so similarity is predictable in tests."""
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dims] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


# --------------------------------------------------------------------------------------------------
class OpenAIWire:
    kind = "openai"

    def error(self, kind: str, request: Request) -> Reply:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        table: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
            "context": (400, {"message": "This model's maximum context length is 128000 tokens. However, your "
                              "messages resulted in 130412 tokens. Please reduce the length of the messages.",
                              "type": "invalid_request_error", "param": "messages",
                              "code": "context_length_exceeded"}, {}),
            "auth": (401, {"message": KEY_ECHO.format(key=key) + " You can find your API key at "
                           "https://platform.openai.com/account/api-keys.", "type": "invalid_request_error",
                           "param": None, "code": "invalid_api_key"}, {}),
            "permission": (403, {"message": "You are not allowed to sample from this model", "type":
                                 "invalid_request_error", "param": None, "code": None}, {}),
            "not_found": (404, {"message": "The model `gpt-9` does not exist or you do not have access to it.",
                                "type": "invalid_request_error", "param": None, "code": "model_not_found"}, {}),
            "rate_limit": (429, {"message": "Rate limit reached for gpt-4o-mini in organization org-x on requests "
                                 "per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                                 "type": "requests", "param": None, "code": "rate_limit_exceeded"},
                           {"retry-after": "20", "x-ratelimit-limit-requests": "3",
                            "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s"}),
            "server": (500, {"message": "The server had an error while processing your request. Sorry about that!",
                             "type": "server_error", "param": None, "code": None}, {}),
            "unavailable": (503, {"message": "The engine is currently overloaded, please try again later.",
                                  "type": "server_error", "param": None, "code": None}, {}),
            "filtered": (400, {"message": "Your request was rejected as a result of our safety system.",
                               "type": "invalid_request_error", "param": None, "code": "content_policy_violation"}, {}),
            "safety_words": (400, {"message": "Invalid value for 'safety_identifier': the content policy allows "
                                              "at most 64 characters.", "type": "invalid_request_error",
                                   "param": "safety_identifier", "code": "invalid_value"}, {}),
        }
        status, error, headers = table[kind]
        return Reply.json({"error": error}, status, headers)

    def usage(self, s: Scenario) -> dict[str, Any]:
        return {"prompt_tokens": s.input_tokens, "completion_tokens": s.output_tokens,
                "total_tokens": s.input_tokens + s.output_tokens,
                "prompt_tokens_details": {"cached_tokens": s.cached_tokens, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": s.reasoning_tokens, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}

    def handle(self, request: Request, s: Scenario) -> Reply:
        if request.method == "GET" and request.path.endswith("/models"):
            return Reply.json({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model",
                                                           "created": 1686935002, "owned_by": "openai"}]})
        if s.status:
            headers = {"retry-after": s.retry_after} if s.retry_after else {}
            return Reply.json({"error": {"message": f"injected HTTP {s.status}", "type": "server_error",
                                         "param": None, "code": None}}, s.status, headers)
        if s.error:
            return self.error(s.error, request)
        body = request.json
        if request.path.endswith("/embeddings"):  # platform.openai.com/docs/api-reference/embeddings/create
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            dims = body.get("dimensions") or 64
            tokens = sum(len(t.split()) for t in texts)
            return _reply(s, {"object": "list", "model": body["model"], "usage": {"prompt_tokens": tokens,
                                                                                  "total_tokens": tokens},
                              "data": [{"object": "embedding", "index": i, "embedding": word_vector(t, dims)}
                                       for i, t in enumerate(texts)]})
        model = body["model"]
        head = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "created": 1741569952, "model": model,
                "system_fingerprint": "fp_44709d6fcb", "service_tier": "default"}
        count = 1 if s.tool else int(body.get("n") or 1)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if s.tool else s.text, "refusal": None,
                                       "annotations": []}
            if s.tool:
                message["tool_calls"] = [{"id": s.tool[0], "type": "function",
                                          "function": {"name": s.tool[1], "arguments": s.tool[2]}}]
            choices = [{"index": 0, "message": message, "logprobs": None,
                        "finish_reason": s.finish or ("tool_calls" if s.tool else "stop")}]
            for i in range(1, count):  # n > 1: each further choice is a different answer, with its own index
                choices.append({**choices[0], "index": i,
                                "message": {**message, "content": f"{s.text} (take {i + 1})"}})
            return _reply(s, {**head, "object": "chat.completion", "choices": choices, "usage": self.usage(s)})
        chunk = {**head, "object": "chat.completion.chunk"}
        events: list[tuple[str | None, Any]] = [(None, {**chunk, "choices": [{
            "index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
            "finish_reason": None}]})]
        if s.tool:
            tool_id, name, arguments = s.tool
            events.append((None, {**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [{
                "index": 0, "id": tool_id, "type": "function", "function": {"name": name, "arguments": ""}}]},
                "logprobs": None, "finish_reason": None}]}))
            for i in range(0, len(arguments), 5):
                events.append((None, {**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [{
                    "index": 0, "function": {"arguments": arguments[i:i + 5]}}]}, "logprobs": None,
                    "finish_reason": None}]}))
        elif s.text:
            for piece in s.pieces():
                events.append((None, {**chunk, "choices": [{"index": 0, "delta": {"content": piece},
                                                            "logprobs": None, "finish_reason": None}]}))
        for i in range(1, count):  # n > 1: the further choices, each piece under its own index
            events.append((None, {**chunk, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                        "logprobs": None, "finish_reason": None}]}))
            for piece in Scenario(text=f"{s.text} (take {i + 1})", repeat=s.repeat).pieces():
                events.append((None, {**chunk, "choices": [{"index": i, "delta": {"content": piece},
                                                            "logprobs": None, "finish_reason": None}]}))
        finish = s.finish or ("tool_calls" if s.tool else "stop")
        for i in range(count):
            events.append((None, {**chunk, "choices": [{"index": i, "delta": {}, "logprobs": None,
                                                        "finish_reason": finish}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append((None, {**chunk, "choices": [], "usage": self.usage(s)}))
        events.append((None, "[DONE]"))
        return _reply(s, chunks=_sse(events), content_type="text/event-stream")


# --------------------------------------------------------------------------------------------------
# Claude models from Opus 4.1 and the 4.5 generation on refuse temperature and top_p together
_ONE_SAMPLER = re.compile(r"claude-(opus-4-1|(opus|sonnet|haiku)-4-[5-9]|(opus|sonnet|haiku)-[5-9])(?!\d)")


class AnthropicWire:
    kind = "anthropic"

    def __init__(self, check_sampling: bool = False, check_messages: bool = False) -> None:
        # refuse temperature with top_p on the models that do, and malformed message lists, as the API
        # does (opt-in: the shared WIRES instance stays lenient)
        self.check_sampling = check_sampling
        self.check_messages = check_messages

    @staticmethod
    def message_problem(messages: list[dict[str, Any]]) -> str | None:
        """The API's complaint about a message list, or None: roles alternate, no empty content or
        empty text block, each tool_use answered by a tool_result in the next message and no
        tool_result without its tool_use (docs.anthropic.com/en/api/messages, tool use)."""
        for i, message in enumerate(messages):
            if i and messages[i - 1]["role"] == message["role"]:
                return 'messages: roles must alternate between "user" and "assistant", but found multiple ' \
                       f'"{message["role"]}" roles in a row'
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            if not blocks and i != len(messages) - 1:
                return f"messages.{i}: all messages must have non-empty content except for the optional final " \
                       "assistant message"
            for block in blocks:
                if block.get("type") == "text" and not block.get("text"):
                    return "messages: text content blocks must be non-empty"
            previous = messages[i - 1].get("content") if i else None
            used = {b["id"] for b in previous or [] if isinstance(b, dict) and b.get("type") == "tool_use"} \
                if isinstance(previous, list) else set()
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if results - used:
                return f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: " \
                       f"{sorted(results - used)[0]}. Each `tool_result` block must have a corresponding " \
                       "`tool_use` block in the previous message."
            if used and not used <= results and message["role"] == "user":
                return f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately " \
                       f"after: {sorted(used - results)[0]}. Each `tool_use` block must have a corresponding " \
                       "`tool_result` block in the next message."
        return None

    def error(self, kind: str, request: Request) -> Reply:
        key = request.headers.get("x-api-key", "")
        table: dict[str, tuple[int, str, str, dict[str, str]]] = {
            "context": (400, "invalid_request_error", "prompt is too long: 208917 tokens > 200000 maximum", {}),
            "auth": (401, "authentication_error", f"invalid x-api-key {key}", {}),
            "permission": (403, "permission_error", "Your API key does not have permission to use the specified "
                                                    "resource.", {}),
            "not_found": (404, "not_found_error", "model: claude-9", {}),
            "rate_limit": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate "
                                                    "limit", {"retry-after": "20",
                                                              "anthropic-ratelimit-requests-limit": "50",
                                                              "anthropic-ratelimit-requests-remaining": "0"}),
            "server": (500, "api_error", "Internal server error", {}),
            "unavailable": (529, "overloaded_error", "Overloaded", {}),
            # a bad request that merely mentions filtering: no structured sign of a content filter
            "safety_words": (400, "invalid_request_error", "Output blocked by content filtering policy", {}),
        }
        status, error_type, message, headers = table[kind]
        return Reply.json({"type": "error", "error": {"type": error_type, "message": message},
                           "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}, status, headers)

    def handle(self, request: Request, s: Scenario) -> Reply:
        if request.method == "GET" and request.path == "/v1/models":
            return Reply.json({"data": [{"type": "model", "id": "claude-sonnet-4-5-20250929",
                                         "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}],
                               "has_more": False, "first_id": "claude-sonnet-4-5-20250929",
                               "last_id": "claude-sonnet-4-5-20250929"})
        sent = request.json if request.method == "POST" and request.body else {}
        if self.check_sampling and isinstance(sent, dict) and _ONE_SAMPLER.match(str(sent.get("model"))) \
                and sent.get("temperature") is not None and sent.get("top_p") is not None:
            return Reply.json({"type": "error", "error": {
                "type": "invalid_request_error",
                "message": "`temperature` and `top_p` cannot both be specified for this model. Please use only one."},
                "request_id": "req_011CTfrnTsra8hsUuM24BzEC"}, 400)
        problem = self.message_problem(sent.get("messages") or []) \
            if self.check_messages and isinstance(sent, dict) else None
        if problem:
            return Reply.json({"type": "error", "error": {"type": "invalid_request_error", "message": problem},
                               "request_id": "req_011CTfrnTsra8hsUuM24BzEC"}, 400)
        if s.error == "filtered":  # the streaming classifiers stopped the answer: a 200 with stop_reason refusal
            s = Scenario(**{**s.__dict__, "error": None, "finish": "refusal", "text": ""})
        if s.error:
            return self.error(s.error, request)
        body = request.json
        usage_in = {"input_tokens": s.input_tokens - s.cached_tokens, "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": s.cached_tokens}
        tool = s.tool
        text = s.text
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool" and not tool:  # a forced tool: its input is the answer
            tool, text = ("toolu_01A09q90qw90lq917835lq9", choice["name"], s.json_answer), ""
        elif (body.get("output_config") or {}).get("format"):  # structured output: the text is the JSON
            text = s.json_answer
        stop = s.finish or ("tool_use" if tool else "end_turn")
        blocks: list[dict[str, Any]] = []
        if s.thinking:  # docs.anthropic.com/en/docs/build-with-claude/extended-thinking
            blocks.append({"type": "thinking", "thinking": s.thinking, "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"})
        if tool:
            # a forced tool (any, tool) is prefilled: no text before it (docs.anthropic.com tool-use, tool_choice)
            if choice.get("type") not in ("tool", "any"):
                blocks.append({"type": "text", "text": "Let me check."})
            blocks.append({"type": "tool_use", "id": tool[0], "name": tool[1], "input": json.loads(tool[2])})
        elif text:
            blocks.append({"type": "text", "text": text})
        if not body.get("stream"):
            return _reply(s, {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                              "model": body["model"], "content": blocks, "stop_reason": stop,
                              "stop_sequence": None, "usage": {**usage_in, "output_tokens": s.output_tokens,
                                                               "service_tier": "standard"}})
        events: list[tuple[str | None, Any]] = [("message_start", {"type": "message_start", "message": {
            "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [],
            "model": body["model"], "stop_reason": None, "stop_sequence": None,
            "usage": {**usage_in, "output_tokens": 1, "service_tier": "standard"}}}), ("ping", {"type": "ping"})]
        for index, block in enumerate(blocks):
            kind = block["type"]
            if kind == "thinking":
                start: dict[str, Any] = {"type": "thinking", "thinking": ""}
                deltas = [{"type": "thinking_delta", "thinking": block["thinking"]},
                          {"type": "signature_delta", "signature": block["signature"]}]
            elif kind == "tool_use":
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                raw = tool[2] if tool else "{}"
                deltas = [{"type": "input_json_delta", "partial_json": raw[i:i + 5]} for i in range(0, len(raw), 5)]
            else:
                start = {"type": "text", "text": ""}
                pieces = [block["text"]] if block["text"] == "Let me check." or text != s.text else s.pieces()
                deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
            events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": start}))
            events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                       for d in deltas]
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        # the counts in message_delta are cumulative: input and cache counts again, and all the output so far
        events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {**usage_in, "output_tokens": s.output_tokens}}))
        events.append(("message_stop", {"type": "message_stop"}))
        return _reply(s, chunks=_sse(events), content_type="text/event-stream")


# FunctionDeclaration.parameters is Gemini's Schema (an OpenAPI 3.0 subset, ai.google.dev/api/caching#Schema),
# not JSON Schema: a field outside it is refused. JSON Schema goes in parametersJsonSchema instead.
_GEMINI_SCHEMA_FIELDS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
    "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering",
    "default", "items", "minimum", "maximum"})


def _gemini_schema_problem(body: dict[str, Any]) -> str | None:
    """The API's complaint about the first function's ``parameters`` field its Schema type lacks, or None."""
    def walk(schema: Any, where: str) -> str | None:
        if not isinstance(schema, dict):
            return None
        for key, value in schema.items():
            if key not in _GEMINI_SCHEMA_FIELDS:
                return f'Unknown name "{key}" at \'{where}\': Cannot find field.'
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    if (found := walk(sub, f"{where}.properties[{name}].value")) is not None:
                        return found
            elif key == "items" and (found := walk(value, f"{where}.items")) is not None:
                return found
            elif key == "anyOf" and isinstance(value, list):
                for i, sub in enumerate(value):
                    if (found := walk(sub, f"{where}.any_of[{i}]")) is not None:
                        return found
        return None

    for t, group in enumerate(body.get("tools") or []):
        for f, declaration in enumerate(group.get("functionDeclarations") or []):
            found = walk(declaration.get("parameters"), f"tools[{t}].function_declarations[{f}].parameters")
            if found is not None:
                return found
    return None


# --------------------------------------------------------------------------------------------------
class GeminiWire:
    kind = "gemini"

    def __init__(self, check_parameters: bool = False, check_contents: bool = False) -> None:
        # refuse a function's `parameters` with fields Gemini's Schema lacks, and malformed contents, as the
        # API does (opt-in: the shared WIRES instance stays lenient)
        self.check_parameters = check_parameters
        self.check_contents = check_contents

    @staticmethod
    def contents_problem(contents: list[dict[str, Any]]) -> str | None:
        """The API's complaint about ``contents``, or None: no content without parts, no empty text part,
        and a turn of function responses only right after the model's function calls, one per call."""
        for i, content in enumerate(contents):
            parts = content.get("parts") or []
            if not parts:
                return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            if any("text" in p and not p["text"] and len(p) == 1 for p in parts):
                return "Unable to submit request because it has an empty text parameter. Add a value to the " \
                       "parameter and try again."
            responses = [p for p in parts if "functionResponse" in p]
            if responses:
                calls = [p for p in (contents[i - 1].get("parts") or []) if "functionCall" in p] if i else []
                if not calls or contents[i - 1].get("role") != "model":
                    return "Please ensure that function response turn comes immediately after a function call turn."
                if len(responses) != len(calls):
                    return "Please ensure that the number of function response parts is equal to the number of " \
                           "function call parts of the function call turn."
        return None

    def error(self, kind: str, request: Request) -> Reply:
        key = request.headers.get("x-goog-api-key", "")
        table: dict[str, tuple[int, str, str, list[dict[str, Any]]]] = {
            "context": (400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of "
                                                 "tokens allowed (1048576).", []),
            "auth": (400, "INVALID_ARGUMENT", f"API key not valid. Please pass a valid API key. ({key})", [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com"}]),
            "permission": (403, "PERMISSION_DENIED", "You do not have permission to access the requested resource.",
                           []),
            "not_found": (404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta, or is not "
                                            "supported for generateContent.", []),
            "rate_limit": (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and "
                                                      "billing details.", [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"}]),
            "server": (500, "INTERNAL", "An internal error has occurred.", []),
            "unavailable": (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", []),
            "safety_words": (400, "INVALID_ARGUMENT", "Invalid value at 'safety_settings[0].category' "
                                                      "(type.googleapis.com/google.ai.generativelanguage.v1beta."
                                                      "HarmCategory), \"HARM_CATEGORY_BLOCKED\"", [
                {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
                    {"field": "safety_settings[0].category", "description": "Invalid value"}]}]),
        }
        if kind == "filtered":  # a 200 whose prompt was blocked, as JSON or as the stream's one event
            blocked = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
                "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": "gemini-2.5-flash"}
            if "streamGenerateContent" in request.path:
                return Reply(200, {"content-type": "text/event-stream"}, b"", _sse([(None, blocked)]))
            return Reply.json(blocked)
        status, code, message, details = table[kind]  # the wait is in the body's RetryInfo, not in a header
        return Reply.json({"error": {"code": status, "message": message, "status": code, "details": details}},
                          status)

    def usage(self, s: Scenario) -> dict[str, Any]:
        out = {"promptTokenCount": s.input_tokens, "candidatesTokenCount": s.output_tokens - s.reasoning_tokens,
               "totalTokenCount": s.input_tokens + s.output_tokens}
        if s.cached_tokens:
            out["cachedContentTokenCount"] = s.cached_tokens
        if s.reasoning_tokens:
            out["thoughtsTokenCount"] = s.reasoning_tokens
        return out

    def handle(self, request: Request, s: Scenario) -> Reply:
        if request.method == "GET" and request.path.endswith("/models"):
            return Reply.json({"models": [{"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
                                           "supportedGenerationMethods": ["generateContent"]}]})
        if s.error:
            return self.error(s.error, request)
        unknown = _gemini_schema_problem(request.json or {}) if self.check_parameters else None
        if self.check_contents and unknown is None and isinstance(request.json, dict) and "contents" in request.json:
            problem = self.contents_problem(request.json["contents"])
            if problem:
                return Reply.json({"error": {"code": 400, "message": problem, "status": "INVALID_ARGUMENT"}}, 400)
        if unknown:  # what the API answers when `parameters` holds a field its Schema type lacks
            return Reply.json({"error": {"code": 400, "message": f"Invalid JSON payload received. {unknown}",
                                         "status": "INVALID_ARGUMENT", "details": [
                                             {"@type": "type.googleapis.com/google.rpc.BadRequest"}]}}, 400)
        if request.path.endswith(":batchEmbedContents"):  # ai.google.dev/api/embeddings
            rows = request.json["requests"]
            return _reply(s, {"embeddings": [
                {"values": word_vector(r["content"]["parts"][0]["text"], r.get("outputDimensionality") or 64)}
                for r in rows]})
        config = request.json.get("generationConfig") or {}
        count = int(config.get("candidateCount") or 1)
        text = s.json_answer if config.get("responseMimeType") == "application/json" else s.text

        def answer(i: int) -> str:  # candidate i's text: each candidate is a different answer
            return text if i == 0 else f"{text} (take {i + 1})"

        thought = [{"text": s.thinking, "thought": True}] if s.thinking else []
        if s.tool:
            parts: list[dict[str, Any]] = [{"functionCall": {"name": s.tool[1], "args": json.loads(s.tool[2])}}]
        else:
            parts = [{"text": text}]
        finish = s.finish or "STOP"
        final: dict[str, Any] = {"candidates": [{"content": {
            "parts": thought + (parts if i == 0 or s.tool else [{"text": answer(i)}]), "role": "model"},
            "finishReason": finish, "index": i} for i in range(count)],
                 "usageMetadata": self.usage(s), "modelVersion": "gemini-2.5-flash",
                 "responseId": "mDXmaJ2OKdLnz7IP5q7mqAk"}
        if request.path.endswith(":generateContent"):
            return _reply(s, final)
        events: list[tuple[str | None, Any]] = []
        if thought:
            events.append((None, {"candidates": [{"content": {"parts": thought, "role": "model"}, "index": i}
                                                 for i in range(count)],
                                  "usageMetadata": {"promptTokenCount": s.input_tokens},
                                  "modelVersion": "gemini-2.5-flash"}))
        if not s.tool:
            pieces = [Scenario(text=answer(i), repeat=s.repeat).pieces() for i in range(count)]
            for step in range(max(len(p) for p in pieces) - 1):
                events.append((None, {"candidates": [{"content": {"parts": [{"text": p[step]}], "role": "model"},
                                                      "index": i} for i, p in enumerate(pieces) if step < len(p) - 1],
                                      "usageMetadata": {"promptTokenCount": s.input_tokens},
                                      "modelVersion": "gemini-2.5-flash"}))
            for i, p in enumerate(pieces):
                final["candidates"][i]["content"]["parts"] = [{"text": p[-1]}]
        events.append((None, final))
        chunks = _sse(events)
        if s.truncate:  # Gemini has no end marker: a truncated stream simply lacks the finishReason object
            return Reply(200, {"content-type": "text/event-stream"}, b"", chunks[:-1], s.chunk_delay)
        return _reply(s, chunks=chunks, content_type="text/event-stream")


# --------------------------------------------------------------------------------------------------
class OllamaWire:
    kind = "ollama"

    def error(self, kind: str, request: Request) -> Reply:
        table = {"context": (400, "input length exceeds maximum context length"),
                 "auth": (401, "unauthorized"), "permission": (403, "forbidden"),
                 "not_found": (404, 'model "llama9" not found, try pulling it first'),
                 "rate_limit": (429, "too many requests"), "server": (500, "llama runner process has terminated"),
                 "unavailable": (503, "server busy, please try again.  maximum pending requests exceeded"),
                 # Ollama has no content filter: a 400 that mentions safety is just a bad request
                 "safety_words": (400, 'invalid format: "safety" is not a JSON schema')}
        status, message = table[kind]
        return Reply.json({"error": message}, status, {"retry-after": "20"} if status == 429 else {})

    def handle(self, request: Request, s: Scenario) -> Reply:
        if request.path == "/api/tags":
            return Reply.json({"models": [{"name": "llama3.2:3b", "model": "llama3.2:3b", "size": 2019393189,
                                           "digest": "a80c4f17acd5", "details": {"family": "llama"}}]})
        if s.error:
            return self.error(s.error, request)
        body = request.json
        if request.path == "/api/embed":  # github.com/ollama/ollama/blob/main/docs/api.md#generate-embeddings
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            return _reply(s, {"model": body["model"], "embeddings": [word_vector(t) for t in texts],
                              "total_duration": 14143917, "load_duration": 1019500,
                              "prompt_eval_count": sum(len(t.split()) for t in texts)})
        created = "2025-10-20T12:00:00.000000Z"
        done = {"model": body["model"], "created_at": created, "done": True, "done_reason": "stop",
                "total_duration": 4883583458, "load_duration": 1334875, "prompt_eval_count": s.input_tokens,
                "prompt_eval_duration": 342546000, "eval_count": s.output_tokens, "eval_duration": 4535599000}
        message: dict[str, Any] = {"role": "assistant", "content": "" if s.tool else s.text}
        if s.thinking:  # docs.ollama.com/capabilities/thinking: message.thinking, apart from the content
            message["thinking"] = s.thinking
        if s.tool:
            message["tool_calls"] = [{"function": {"name": s.tool[1], "arguments": json.loads(s.tool[2])}}]
        if not body.get("stream", True):
            return _reply(s, {**done, "message": message})
        lines = []
        if s.thinking:
            lines.append({"model": body["model"], "created_at": created, "done": False,
                          "message": {"role": "assistant", "content": "", "thinking": s.thinking}})
        if s.tool:
            lines.append({"model": body["model"], "created_at": created, "message": message, "done": False})
        else:
            for piece in s.pieces():
                lines.append({"model": body["model"], "created_at": created,
                              "message": {"role": "assistant", "content": piece}, "done": False})
        lines.append({**done, "message": {"role": "assistant", "content": ""}})
        chunks = [(json.dumps(line) + "\n").encode() for line in lines]
        if s.truncate:
            return Reply(200, {"content-type": "application/x-ndjson"}, b"", chunks[:-1], s.chunk_delay)
        return _reply(s, chunks=chunks, content_type="application/x-ndjson")


WIRES = {"openai": OpenAIWire(), "anthropic": AnthropicWire(), "gemini": GeminiWire(), "ollama": OllamaWire()}
