"""What to do about what the detectors found, per data class (``gateway.guardrails``).

    pii:       allow | redact | block | route_local   (emails, phones, IBANs, card numbers)
    secrets:   allow | redact | block                 (API keys, tokens, private keys)
    injection: allow | flag | block                   (instruction-override attempts)

``route_local`` is privacy routing by detected data: the request is marked confidential, so the
router sends it only to EU, Swiss or local models, and the caller does not have to remember to.

Every string that leaves for a provider or lands in the ledger is read (``places``): message
text (parts joined), names, tool calls and results, tool definitions, ``response_format``, stop
sequences, ``metadata.user`` and ``metadata.tags``. Detection runs on the normalised text
(``normalize``); a string that has something redacted is sent normalised, so the offsets hold.
A refusal says which class was found and where, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from podium.errors import ContentFilteredError
from podium.guardrails.detect import Finding, find, redact_spans
from podium.guardrails.injection import Work
from podium.guardrails.normalize import normalise
from podium.guardrails.places import BLOCKED, Visit, Where, label, rewrite
from podium.types import ChatRequest

PII = frozenset({"email", "phone", "iban", "card"})
PRIVATE_REGIONS = frozenset({"eu", "ch", "local"})  # where route_local may send personal data


@dataclass(frozen=True)
class GuardrailPolicy:
    pii: Literal["allow", "redact", "block", "route_local"] = "allow"
    secrets: Literal["allow", "redact", "block"] = "redact"
    injection: Literal["allow", "flag", "block"] = "flag"

    def classes(self) -> frozenset[str]:
        """The detector classes worth running: nothing is looked for that nothing would be done about."""
        wanted = set()
        if self.pii != "allow":
            wanted.add("pii")
        if self.secrets != "allow":
            wanted.add("secret")
        if self.injection != "allow":
            wanted.add("injection")
        return frozenset(wanted)


def _class(kind: str) -> str:
    """``secret:openai_key`` → ``secret``; other kinds are their own class."""
    return kind.split(":", 1)[0]


@dataclass
class _Scanned:
    """One place as the detectors saw it: its strings normalised and joined, and what was found in it."""

    where: Where
    pieces: list[str]  # normalised
    joiner: str
    findings: list[Finding]


def _scan(where: Where, strings: list[str], joiner: str, classes: frozenset[str],
          work: Work | None = None) -> _Scanned | None:
    pieces = [normalise(s) for s in strings]
    text = pieces[0] if len(pieces) == 1 else joiner.join(pieces)
    found = find(text, classes, work)
    return _Scanned(where, pieces, joiner, found) if found else None


def _write_back(scanned: _Scanned, originals: list[str], kinds: set[str]) -> list[str] | None:
    """The strings of a place with the findings of ``kinds`` redacted; untouched strings stay as they came."""
    spans = [(f.start, f.end, f"[{_class(f.kind).upper()}]") for f in scanned.findings if _class(f.kind) in kinds]
    if not spans:
        return None
    out = list(originals)
    offset = 0
    for i, piece in enumerate(scanned.pieces):
        end = offset + len(piece)
        local: list[tuple[int, int, str]] = []
        for start, stop, token in spans:
            if start < end and stop > offset:  # overlaps this piece: the token goes where the value starts
                local.append((max(start, offset) - offset, min(stop, end) - offset, token if start >= offset else ""))
        if local:
            out[i] = redact_spans(piece, local)
        offset = end + len(scanned.joiner)
    return out


@dataclass
class _Found:
    """What a request holds, by class, and where."""

    pii: dict[str, list[str]]  # kind → places
    secrets: dict[str, list[str]]
    injection: list[str]

    @classmethod
    def of(cls, scanned: list[_Scanned]) -> _Found:
        found = cls({}, {}, [])
        for s in scanned:
            where = label(s.where)
            for f in s.findings:
                if f.kind == "injection":
                    _add(found.injection, where)
                elif f.kind.startswith("secret:"):
                    _add(found.secrets.setdefault(f.kind.split(":", 1)[1], []), where)
                else:
                    _add(found.pii.setdefault(f.kind, []), where)
        return found


def _add(places: list[str], where: str) -> None:
    if where not in places:
        places.append(where)


def _where(places: list[str]) -> str:
    if len(places) == 1:
        return f"in {places[0]}"
    return f"in {', '.join(places[:-1])} and {places[-1]}"


def _places_of(by_kind: dict[str, list[str]]) -> list[str]:
    places: list[str] = []
    for where in by_kind.values():
        for place in where:
            _add(places, place)
    return places


def _decide(found: _Found, policy: GuardrailPolicy, notes: list[str], located: bool = True) -> set[str]:
    """Raise for what is blocked; return the classes to redact (and note what is redacted)."""
    pii, secrets = sorted(found.pii), sorted(found.secrets)
    pii_at = f" {_where(_places_of(found.pii))}" if located and pii else ""
    secrets_at = f" {_where(_places_of(found.secrets))}" if located and secrets else ""
    if found.injection and policy.injection == "block":
        raise ContentFilteredError(f"the request looks like a prompt-injection attempt {_where(found.injection)} "
                                   "(guardrails.injection: block)", code=BLOCKED)
    if secrets and policy.secrets == "block":
        raise ContentFilteredError(f"the request contains secrets ({', '.join(secrets)}){secrets_at}; remove them "
                                   "(guardrails.secrets: block)", code=BLOCKED)
    if pii and policy.pii == "block":
        raise ContentFilteredError(f"the request contains personal data ({', '.join(pii)}){pii_at} "
                                   "(guardrails.pii: block)", code=BLOCKED)
    scrub: set[str] = set()
    if secrets and policy.secrets == "redact":
        scrub.add("secret")
        notes.append(f"guardrails: redacted secrets ({', '.join(secrets)}){secrets_at}")
    if pii and policy.pii == "redact":
        scrub |= set(pii)
        notes.append(f"guardrails: redacted personal data ({', '.join(pii)}){pii_at}")
    return scrub


def apply_to_texts(texts: list[str], policy: GuardrailPolicy, model: str, region: str) -> tuple[list[str], list[str]]:
    """Embedding inputs: the same normalisation, blocking and redaction as for chat. ``route_local`` cannot
    re-route (an index needs vectors from one model), so personal data bound for a model outside the EU,
    Switzerland or this machine is refused with what to use instead. Injection does not apply (the text
    is not obeyed)."""
    classes = policy.classes() - {"injection"}
    if policy.pii == "route_local" and region in PRIVATE_REGIONS:
        classes -= {"pii"}  # allowed where it goes, and nothing else is done about it
    if not classes:
        return texts, []
    scanned = [s for i, text in enumerate(texts) if (s := _scan(("input", i), [text], "", classes)) is not None]
    if not scanned:
        return texts, []
    found = _Found.of(scanned)
    notes: list[str] = []
    scrub = _decide(found, policy, notes, located=False)
    pii = sorted(found.pii)
    if pii and policy.pii == "route_local" and region not in PRIVATE_REGIONS:
        raise ContentFilteredError(f"the input contains personal data ({', '.join(pii)}) and guardrails.pii is "
                                   f"route_local, but '{model}' is processed in region '{region}'; use an "
                                   "embedding model in the EU, Switzerland or on this machine (e.g. mistral-embed, "
                                   "nomic-embed-text, smollm2-135m-embed)", code=BLOCKED)
    if scrub:
        texts = list(texts)
        for s in scanned:
            out = _write_back(s, [texts[s.where[1]]], scrub)
            if out is not None:
                texts[s.where[1]] = out[0]
    return texts, notes


def apply(request: ChatRequest, policy: GuardrailPolicy) -> tuple[ChatRequest, list[str]]:
    """The request to send on (maybe redacted or re-labelled) and what was done; raises when blocking."""
    classes = policy.classes()
    if not classes:
        return request, []
    without_injection = classes - {"injection"}
    scanned: list[_Scanned] = []
    work = Work() if "injection" in classes else None  # one budget for the whole request

    def read(where: Where, strings: list[str], joiner: str, injection: bool) -> None:
        s = _scan(where, strings, joiner, classes if injection else without_injection, work)
        if s is not None:
            scanned.append(s)

    rewrite(request, read)
    if not scanned:
        return request, []
    found = _Found.of(scanned)
    notes: list[str] = []
    scrub = _decide(found, policy, notes)
    if scrub:
        request = rewrite(request, _writer(scanned, scrub))
    pii = sorted(found.pii)
    if pii and policy.pii == "route_local" and request.metadata.sensitivity != "confidential":
        request = request.model_copy(update={"metadata": request.metadata.model_copy(
            update={"sensitivity": "confidential"})})
        notes.append(f"guardrails: personal data ({', '.join(pii)}) → confidential: EU, Swiss or local models only")
    if found.injection and policy.injection == "flag":
        tags = [*request.metadata.tags, "guardrail:injection"]
        request = request.model_copy(update={"metadata": request.metadata.model_copy(update={"tags": tags})})
        notes.append(f"guardrails: possible prompt injection {_where(found.injection)} (flagged)")
    return request, notes


def _writer(scanned: list[_Scanned], scrub: set[str]) -> Visit:
    """A visit that writes the redactions back into the places that have them (the walk is the same as the
    read's, so the places come in the same order)."""
    by_where = {s.where: s for s in scanned}

    def write(where: Where, strings: list[str], joiner: str, injection: bool) -> list[str] | None:
        s = by_where.get(where)
        return _write_back(s, strings, scrub) if s is not None else None

    return write
