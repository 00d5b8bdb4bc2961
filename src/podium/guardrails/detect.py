"""Detectors for what should not leave the building: personal data, secrets, and prompt injection.

Each finding names its class and where it is, never the value itself (a finding is logged; a
value would leak). Validators cut false positives: card numbers must pass the Luhn check, IBANs
the ISO 13616 mod-97 check.

Every detector runs in time linear in its input (see ``pii``, ``credentials``, ``injection``):
this runs on every string of every request, so one pathological string must not hold the
gateway. ``find`` reads the text as given; ``scan`` normalises it first (``normalize``), which is
what the policy does, and returns the normalised text the offsets refer to.
"""

from __future__ import annotations

from collections.abc import Collection
from operator import itemgetter
from typing import NamedTuple

from podium.guardrails import credentials, injection, pii
from podium.guardrails.normalize import normalise
from podium.guardrails.pii import iban_ok, luhn_ok

__all__ = ["CLASSES", "Finding", "find", "iban_ok", "luhn_ok", "redact", "redact_spans", "scan"]

PII_KINDS = frozenset({"email", "phone", "iban", "card"})
CLASSES = frozenset({"pii", "secret", "injection"})


class Finding(NamedTuple):  # a tuple: a dense text can have 100,000 of them, and a dataclass costs 3 times more
    kind: str  # email, phone, card, iban, secret:<type>, injection
    start: int
    end: int


def find(text: str, classes: Collection[str] = CLASSES, work: injection.Work | None = None) -> list[Finding]:
    """Findings in ``text``, by start; ``classes`` limits the search to ``pii``, ``secret``, ``injection``.

    Overlaps are resolved: a finding inside an earlier, longer one of another kind is dropped (a
    JWT may hold digits that look like a phone number), so each value is reported once. ``work`` is
    the injection scan's budget and memory, shared by the texts of one request (``injection.Work``).
    """
    spans: list[tuple[int, int, str, int]] = []  # (start, start - end, kind, end): sorted, the longest first
    if "secret" in classes:
        spans += [(start, start - end, _SECRET[kind], end) for kind, start, end in credentials.scan(text)]
    if "pii" in classes:
        spans += [(start, start - end, "email", end) for start, end in pii.emails(text)]
        if _has_digit(text):
            spans += [(start, start - end, kind, end) for kind, start, end in pii.numbers(text)]
            spans += [(start, start - end, "iban", end) for start, end in pii.ibans(text)]
    found = _without_overlaps(spans) if len(spans) > 1 else [Finding(kind, s, e) for s, _, kind, e in spans]
    if "injection" in classes:
        span = injection.detect(text, work)
        if span is not None:
            found.append(Finding("injection", *span))
            found.sort(key=_START)
    return found


def scan(text: str, classes: Collection[str] = CLASSES) -> tuple[str, list[Finding]]:
    """The normalised text and the findings in it (their offsets refer to the normalised text)."""
    text = normalise(text)
    return text, find(text, classes)


def _has_digit(text: str) -> bool:
    return any(d in text for d in "0123456789")  # ten memchr calls: faster than a regex over the text


def _without_overlaps(spans: list[tuple[int, int, str, int]]) -> list[Finding]:
    spans.sort(key=_ORDER)  # stable: at the same start and length, the first found stays
    kept: list[Finding] = []
    end = -1
    for start, _, kind, stop in spans:
        if start >= end or stop > end:
            kept.append(Finding(kind, start, stop))
            end = stop
    return kept


class _Secret(dict[str, str]):
    def __missing__(self, kind: str) -> str:
        self[kind] = f"secret:{kind}"
        return self[kind]


_SECRET = _Secret()  # "openai_key" -> "secret:openai_key", built once per kind
_ORDER = itemgetter(0, 1)
_START = itemgetter(1)


def redact(text: str, findings: list[Finding]) -> str:
    """Each finding replaced by ``[KIND]`` (overlapping findings become one), injection left as it is."""
    return redact_spans(text, [(f.start, f.end, f"[{f.kind.split(':')[0].upper()}]")
                               for f in findings if f.kind != "injection"])


def redact_spans(text: str, spans: list[tuple[int, int, str]]) -> str:
    """Each (start, end, replacement) applied; overlapping spans merge into the first one's replacement."""
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end, token in sorted(spans):
        if start < pos:  # overlaps the previous one: extend it
            pos = max(pos, end)
            continue
        out += [text[pos:start], token]
        pos = end
    out.append(text[pos:])
    return "".join(out)
