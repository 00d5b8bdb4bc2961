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

import gc
from collections.abc import Collection
from functools import partial
from operator import itemgetter, le
from typing import NamedTuple

from podium.guardrails import credentials, injection, pii
from podium.guardrails.normalize import normalise
from podium.guardrails.pii import iban_ok, luhn_ok
from podium.guardrails.view import View

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
    if len(text) < _LONG:
        return _find(text, classes, work)
    collecting = gc.isenabled()
    gc.disable()  # a long text can have 100,000 findings: not worth a full collection every 25,000
    try:
        return _find(text, classes, work)
    finally:
        if collecting:
            gc.enable()


_LONG = 1 << 16


def _find(text: str, classes: Collection[str], work: injection.Work | None) -> list[Finding]:
    found: list[tuple[str, int, int]] = []  # (kind, start, end), as a Finding is
    view = View(text) if len(text) >= _LONG else None  # (a long text's bytes: worked out once, shared)
    if "secret" in classes:
        found += credentials.found(text, "secret:", view)
    if "pii" in classes:
        found += [("email", start, end) for start, end in pii.emails(text, view)]
        if _has_digit(text):
            found += pii.numbers(text, view)
            found += [("iban", start, end) for start, end in pii.ibans(text, view)]
    if len(found) > 1 and not _in_order(found):
        found.sort(key=_START)  # stable; then usually in order (each detector's findings are)
        if not _in_order(found):
            found = _without_overlaps(found)
    findings = list(map(_FINDING, found))
    if "injection" in classes:
        span = injection.detect(text, work, view)
        if span is not None:
            findings.append(Finding("injection", *span))
            findings.sort(key=_START)
    return findings


def scan(text: str, classes: Collection[str] = CLASSES) -> tuple[str, list[Finding]]:
    """The normalised text and the findings in it (their offsets refer to the normalised text)."""
    text = normalise(text)
    return text, find(text, classes)


def _has_digit(text: str) -> bool:
    return any(d in text for d in "0123456789")  # ten memchr calls: faster than a regex over the text


def _in_order(found: list[tuple[str, int, int]]) -> bool:
    """Each one ends before the next starts (one detector's findings usually do: then nothing to sort)."""
    return all(map(le, map(_END, found), map(_START, found[1:])))


def _without_overlaps(found: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    order = sorted((start, start - end, i) for i, (_, start, end) in enumerate(found))  # the longest first; at
    kept: list[tuple[str, int, int]] = []  # the same start and length, the one found first
    end = -1
    for _, _, i in order:
        f = found[i]
        if f[1] >= end or f[2] > end:
            kept.append(f)
            end = f[2]
    return kept


_START = itemgetter(1)
_END = itemgetter(2)
_FINDING = partial(tuple.__new__, Finding)  # a Finding from a (kind, start, end) tuple, at C speed


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
