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
PRIVATE_REGIONS = frozenset({"eu", "ch", "local"})  # where route_local may send personal data


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


def _decide(kinds: set[str], policy: GuardrailPolicy, notes: list[str]) -> tuple[list[str], set[str]]:
    """Raise for what is blocked; return the personal-data classes found and the classes to redact."""
    pii = sorted(kinds & PII)
    secrets = sorted(k.split(":", 1)[1] for k in kinds if k.startswith("secret:"))
    if "injection" in kinds and policy.injection == "block":
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
    return pii, scrub


def apply_to_texts(texts: list[str], policy: GuardrailPolicy, model: str, region: str) -> tuple[list[str], list[str]]:
    """Embedding inputs: the same blocking and redaction as for chat. ``route_local`` cannot re-route (an
    index needs vectors from one model), so personal data bound for a model outside the EU, Switzerland or
    this machine is refused with what to use instead. Injection does not apply (the text is not obeyed)."""
    findings = [[f for f in find(text) if f.kind != "injection"] for text in texts]
    kinds = {f.kind for found in findings for f in found}
    if not kinds:
        return texts, []
    notes: list[str] = []
    pii, scrub = _decide(kinds, policy, notes)
    if pii and policy.pii == "route_local" and region not in PRIVATE_REGIONS:
        raise ContentFilteredError(f"the input contains personal data ({', '.join(pii)}) and guardrails.pii is "
                                   f"route_local, but '{model}' is processed in region '{region}'; use an "
                                   "embedding model in the EU, Switzerland or on this machine (e.g. mistral-embed, "
                                   "nomic-embed-text, smollm2-135m-embed)", code="personal_data_outside_region")
    if scrub:
        texts = [redact(text, [f for f in found if _class(f.kind) in scrub]) for text, found in
                 zip(texts, findings, strict=True)]
    return texts, notes


def apply(request: ChatRequest, policy: GuardrailPolicy) -> tuple[ChatRequest, list[str]]:
    """The request to send on (maybe redacted or re-labelled) and what was done; raises when blocking."""
    findings = [f for m in request.messages for f in find(m.text)]
    if not findings:
        return request, []
    kinds = {f.kind for f in findings}
    injection = "injection" in kinds
    notes: list[str] = []
    pii, scrub = _decide(kinds, policy, notes)
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
