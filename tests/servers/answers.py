"""A small deterministic "model" behind the wire servers: it reads what a request asks and answers it.

The wire servers (``servers.wires``) render a ``Scenario`` in each vendor's format; a fixed scenario
answers every request alike. Suites written for real models (the OpenAI SDK's, LangChain's standard
chat-model tests) need answers that follow the request: a tool call when a tool is asked for, with
arguments taken from the prompt (``magic_function(3)`` → ``{"input": 3}``); a JSON object with the
keys of the requested schema; text that stops at a stop sequence; usage that grows with the prompt.

``scenario(kind, body)`` reads a request body in the vendor's own shape (OpenAI Chat Completions,
Anthropic Messages, Gemini generateContent, Ollama /api/chat) into one neutral ``Ask`` and answers
it with a ``Scenario`` for that wire. The rules are simple and documented, so a test can predict
every answer:

- a request with tools calls one when it is forced (``required``/``any``, or a named tool) or when
  the last user turn names the tool or shares a content word with its name or description, unless
  the last turn is a tool's result (then the result is acknowledged in text);
- arguments follow the tool's JSON schema: integers are the prompt's numbers in order, strings the
  prompt's quoted texts, else its capitalised words (not the first), else ``"<key> about <topic>"``;
- a structured-output request answers a JSON object of its schema the same way; JSON mode without a
  schema uses the keys the prompt quotes (``'setup' and 'punchline'``);
- text is ``Hello, you wrote: <last user text>.`` (``The tool answered: <result>.`` after a tool
  result), then ``I see N images.`` when the request holds images, cut at the first stop sequence;
- usage counts words: the input's and the answer's;
- ``[[error:<kind>]]`` in the last user turn answers with that error in the wire's own shape.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from servers.wires import Scenario

_STOPWORDS = frozenset({"what", "value", "tool", "tools", "that", "this", "with", "from", "your", "give", "tell",
                        "about", "using", "please", "function", "there", "which", "would", "could", "should",
                        "have", "will", "when", "where", "into", "only", "include", "return", "answer", "input"})


@dataclass
class ToolSpec:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass
class Ask:
    """A request, whatever its wire: the turns as text, the tools, and what the answer must be."""

    turns: list[tuple[str, str]] = field(default_factory=list)  # (user | assistant | tool | system, text)
    tools: list[ToolSpec] = field(default_factory=list)
    forced: str | None = None  # "any", or the one tool's name
    no_tools: bool = False  # tool_choice none
    json_schema: dict[str, Any] | None = None  # {} for JSON mode without a schema
    stop: list[str] = field(default_factory=list)
    images: int = 0


# --- reading each vendor's request ------------------------------------------------------------------
def _text_of(content: Any) -> tuple[str, int]:
    """The text of OpenAI/Anthropic-style content (a string or typed parts) and how many images it has."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    texts, images = [], 0
    for part in content:
        kind = part.get("type")
        if kind == "text":
            texts.append(part.get("text") or "")
        elif kind in ("image_url", "image"):
            images += 1
        elif kind == "tool_result":
            text, inner = _text_of(part.get("content"))
            texts.append(text)
            images += inner
    return "".join(texts), images


def _openai(body: dict[str, Any]) -> Ask:
    ask = Ask()
    for m in body.get("messages") or []:
        text, images = _text_of(m.get("content"))
        ask.images += images
        role = "system" if m["role"] in ("system", "developer") else m["role"]
        ask.turns.append((role, text))
    ask.tools = [ToolSpec(t["function"]["name"], t["function"].get("description") or "",
                          t["function"].get("parameters") or {}) for t in body.get("tools") or []
                 if t.get("type") == "function"]
    choice = body.get("tool_choice")
    if choice == "required":
        ask.forced = "any"
    elif choice == "none":
        ask.no_tools = True
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        ask.forced = choice["function"]["name"]
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = {(t.get("function") or {}).get("name") for t in allowed.get("tools") or []}
        ask.tools = [t for t in ask.tools if t.name in names]
        ask.forced = "any" if allowed.get("mode") == "required" else None
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        ask.json_schema = fmt["json_schema"].get("schema") or {}
    elif fmt.get("type") == "json_object":
        ask.json_schema = {}
    stop = body.get("stop")
    ask.stop = [stop] if isinstance(stop, str) else list(stop or [])
    return ask


def _anthropic(body: dict[str, Any]) -> Ask:
    ask = Ask()
    system = body.get("system")
    if system:
        ask.turns.append(("system", system if isinstance(system, str) else _text_of(system)[0]))
    for m in body.get("messages") or []:
        content = m.get("content")
        if isinstance(content, list) and content and all(b.get("type") == "tool_result" for b in content):
            text, images = _text_of(content)
            ask.images += images
            ask.turns.append(("tool", text))
            continue
        text, images = _text_of(content)
        ask.images += images
        ask.turns.append((m["role"], text))
    ask.tools = [ToolSpec(t["name"], t.get("description") or "", t.get("input_schema") or {})
                 for t in body.get("tools") or []]
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "any":
        ask.forced = "any"
    elif choice.get("type") == "tool":
        ask.forced = choice["name"]
    elif choice.get("type") == "none":
        ask.no_tools = True
    fmt = (body.get("output_config") or {}).get("format")
    if fmt:
        ask.json_schema = fmt.get("schema") or {}
    ask.stop = list(body.get("stop_sequences") or [])
    return ask


def _gemini(body: dict[str, Any]) -> Ask:
    ask = Ask()
    system = body.get("systemInstruction")
    if system:
        ask.turns.append(("system", "".join(p.get("text", "") for p in system.get("parts") or [])))
    for c in body.get("contents") or []:
        parts = c.get("parts") or []
        if parts and all("functionResponse" in p for p in parts):
            ask.images += sum(1 for p in parts for inner in p["functionResponse"].get("parts") or []
                              if "inlineData" in inner or "fileData" in inner)  # multimodal function responses
            responses = [p["functionResponse"].get("response") or {} for p in parts]
            ask.turns.append(("tool", "".join(r["content"] if isinstance(r.get("content"), str) else json.dumps(r)
                                              for r in responses)))
            continue
        ask.images += sum(1 for p in parts if "inlineData" in p or "fileData" in p)
        ask.turns.append(("assistant" if c.get("role") == "model" else "user",
                          "".join(p.get("text", "") for p in parts)))
    for group in body.get("tools") or []:
        for d in group.get("functionDeclarations") or []:
            ask.tools.append(ToolSpec(d["name"], d.get("description") or "",
                                      d.get("parametersJsonSchema") or d.get("parameters") or {}))
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if calling.get("mode") == "ANY":
        names = calling.get("allowedFunctionNames") or []
        ask.forced = names[0] if len(names) == 1 else "any"
    elif calling.get("mode") == "NONE":
        ask.no_tools = True
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        ask.json_schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
    ask.stop = list(config.get("stopSequences") or [])
    return ask


def _ollama(body: dict[str, Any]) -> Ask:
    ask = Ask()
    for m in body.get("messages") or []:
        ask.images += len(m.get("images") or [])
        ask.turns.append((m["role"], m.get("content") or ""))
    ask.tools = [ToolSpec(t["function"]["name"], t["function"].get("description") or "",
                          t["function"].get("parameters") or {}) for t in body.get("tools") or []]
    fmt = body.get("format")
    if fmt == "json":
        ask.json_schema = {}
    elif isinstance(fmt, dict):
        ask.json_schema = fmt
    stop = (body.get("options") or {}).get("stop")
    ask.stop = [stop] if isinstance(stop, str) else list(stop or [])
    return ask


READERS = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini, "ollama": _ollama}


# --- answering -------------------------------------------------------------------------------------
def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 4 and w not in _STOPWORDS}


def _pick_tool(ask: Ask, prompt: str) -> ToolSpec | None:
    if not ask.tools or ask.no_tools:
        return None
    if ask.forced not in (None, "any"):
        return next((t for t in ask.tools if t.name == ask.forced), None)

    def score(tool: ToolSpec) -> int:
        named = 3 if tool.name.lower() in prompt.lower() else 0
        return named + len(_words(prompt) & (_words(tool.name.replace("_", " ")) | _words(tool.description)))

    best = max(ask.tools, key=score)
    if score(best) > 0 or ask.forced == "any":
        return best
    return None


class _Filler:
    """Values for a JSON schema, taken from the prompt in order."""

    def __init__(self, prompt: str, root: dict[str, Any]) -> None:
        self.numbers = [int(n) for n in re.findall(r"(?<![\w.])-?\d+(?![\w.])", prompt)]
        self.quoted = [a or b for a, b in re.findall(r"'([^']+)'|\"([^\"]+)\"", prompt)]
        words = prompt.split()
        caps: list[str] = []
        for word in words[1:]:
            if word[:1].isupper():
                caps.append(word)
            elif caps:
                break
        self.capitalised = " ".join(caps).strip("?.!,") if caps else ""
        topic = re.findall(r"[A-Za-z]+", prompt)
        self.topic = topic[-1] if topic else "it"
        self.root = root

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node[part]
            return dict(node)
        return schema

    def value(self, key: str, schema: dict[str, Any]) -> Any:
        schema = self._resolve(schema)
        for union in ("anyOf", "oneOf"):
            if union in schema:
                options = [self._resolve(s) for s in schema[union]]
                chosen = next((s for s in options if s.get("type") != "null"), options[0])
                return self.value(key, chosen)
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if kind == "object" or "properties" in schema:
            return self.object(schema)
        if kind == "array":
            return [self.value(key, schema.get("items") or {"type": "string"})]
        if kind in ("integer", "number"):
            return self.numbers.pop(0) if self.numbers else 0
        if kind == "boolean":
            return True
        if self.quoted:
            return self.quoted.pop(0)
        if self.capitalised:
            found, self.capitalised = self.capitalised, ""
            return found
        return f"{key} about {self.topic}"

    def object(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema = self._resolve(schema)
        properties = schema.get("properties")
        if properties is None:  # JSON mode (no schema at all): the keys the prompt quotes
            keys, self.quoted = self.quoted, []
            return {key: f"{key} about {self.topic}" for key in keys} or {"answer": f"about {self.topic}"}
        return {key: self.value(key, sub) for key, sub in properties.items()}


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def answer(kind: str, ask: Ask) -> Scenario:
    """The Scenario that answers ``ask`` on wire ``kind``."""
    last_role, last = ask.turns[-1] if ask.turns else ("user", "")
    prompt = next((text for role, text in reversed(ask.turns) if role == "user"), "")
    input_tokens = sum(_tokens(text) for _, text in ask.turns) + 85 * ask.images
    tool = _pick_tool(ask, prompt) if last_role == "user" else None
    if tool is not None:
        arguments = json.dumps(_Filler(prompt, tool.schema).object(tool.schema), ensure_ascii=False)
        digest = hashlib.sha256(f"{tool.name}{arguments}{prompt}".encode()).hexdigest()[:24]
        call_id = ("toolu_" if kind == "anthropic" else "call_") + digest
        return Scenario(tool=(call_id, tool.name, arguments), input_tokens=input_tokens,
                        output_tokens=_tokens(arguments), json_answer=arguments)
    if ask.json_schema is not None:
        text = json.dumps(_Filler(prompt, ask.json_schema).object(ask.json_schema), ensure_ascii=False)
    else:
        seen = f" I see {ask.images} image{'s' if ask.images != 1 else ''}." if ask.images else ""
        said = (last if last_role == "tool" else prompt).rstrip(".")
        text = f"The tool answered: {said}.{seen}" if last_role == "tool" else f"Hello, you wrote: {said}.{seen}"
    for stop in ask.stop:
        if stop and stop in text:
            text = text[:text.index(stop)]
    return Scenario(text=text, input_tokens=input_tokens, output_tokens=_tokens(text), json_answer=text)


_ERROR = re.compile(r"\[\[error:(\w+)\]\]")


def scenario(kind: str, body: dict[str, Any]) -> Scenario:
    """Read a request body of wire ``kind`` and answer it. A last user turn holding ``[[error:<kind>]]``
    is answered with that error of the wire (``Scenario.error``: rate_limit, context, server, …)."""
    ask = READERS[kind](body)
    prompt = next((text for role, text in reversed(ask.turns) if role == "user"), "")
    failure = _ERROR.search(prompt)
    if failure:
        return Scenario(error=failure[1])
    return answer(kind, ask)
