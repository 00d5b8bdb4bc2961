"""What to do about what the detectors found, per data class (``gateway.guardrails``).

    pii:       allow | redact | block | route_local   (emails, phones, IBANs, card numbers)
    secrets:   allow | redact | block                 (API keys, tokens, private keys)
    injection: allow | flag | block                   (instruction-override attempts)

``route_local`` is privacy routing by detected data: the request is marked confidential, so the
router sends it only to EU, Swiss or local models, and the caller does not have to remember to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from podium.errors import ContentFilteredError
from podium.guardrails.detect import find, redact
from podium.types import ChatRequest, Message, TextPart

PII = frozenset({"email", "phone", "iban", "card"})


@dataclass(frozen=True)
class GuardrailPolicy:
    pii: Literal["allow", "redact", "block", "route_local"] = "allow"
    secrets: Literal["allow", "redact", "block"] = "redact"
    injection: Literal["allow", "flag", "block"] = "flag"


def _class(kind: str) -> str:
    """``secret:openai_key`` → ``secret``; other kinds are their own class."""
    return kind.split(":", 1)[0]


def _clean(message: Message, kinds: set[str]) -> Message:
    def scrub(text: str) -> str:
        return redact(text, [f for f in find(text) if _class(f.kind) in kinds])

    if isinstance(message.content, str):
        return message.model_copy(update={"content": scrub(message.content)})
    if isinstance(message.content, list):
        parts = [p.model_copy(update={"text": scrub(p.text)}) if isinstance(p, TextPart) else p
                 for p in message.content]
        return message.model_copy(update={"content": parts})
    return message


def apply(request: ChatRequest, policy: GuardrailPolicy) -> tuple[ChatRequest, list[str]]:
    """The request to send on (maybe redacted or re-labelled) and what was done; raises when blocking."""
    findings = [f for m in request.messages for f in find(m.text)]
    if not findings:
        return request, []
    kinds = {f.kind for f in findings}
    pii = sorted(kinds & PII)
    secrets = sorted(k.split(":", 1)[1] for k in kinds if k.startswith("secret:"))
    injection = "injection" in kinds
    notes: list[str] = []
    if injection and policy.injection == "block":
        raise ContentFilteredError("the request looks like a prompt-injection attempt (guardrails.injection: block)")
    if secrets and policy.secrets == "block":
        raise ContentFilteredError(f"the request contains secrets ({', '.join(secrets)}); remove them "
                                   "(guardrails.secrets: block)")
    if pii and policy.pii == "block":
        raise ContentFilteredError(f"the request contains personal data ({', '.join(pii)}) (guardrails.pii: block)")
    scrub: set[str] = set()
    if secrets and policy.secrets == "redact":
        scrub.add("secret")
        notes.append(f"guardrails: redacted secrets ({', '.join(secrets)})")
    if pii and policy.pii == "redact":
        scrub |= set(pii)
        notes.append(f"guardrails: redacted personal data ({', '.join(pii)})")
    if scrub:
        request = request.model_copy(update={"messages": [_clean(m, scrub) for m in request.messages]})
    if pii and policy.pii == "route_local" and request.metadata.sensitivity != "confidential":
        request = request.model_copy(update={"metadata": request.metadata.model_copy(
            update={"sensitivity": "confidential"})})
        notes.append(f"guardrails: personal data ({', '.join(pii)}) → confidential: EU, Swiss or local models only")
    if injection and policy.injection == "flag":
        tags = [*request.metadata.tags, "guardrail:injection"]
        request = request.model_copy(update={"metadata": request.metadata.model_copy(update={"tags": tags})})
        notes.append("guardrails: possible prompt injection (flagged)")
    return request, notes
