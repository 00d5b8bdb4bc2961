"""Detectors for what should not leave the building: personal data, secrets, and prompt injection.

Each finding names its class and where it is, never the value itself (a finding is logged; a
value would leak). Validators cut false positives: card numbers must pass the Luhn check, IBANs
the ISO 13616 mod-97 check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}(?![\w])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?$")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_SECRETS = (
    ("openai_key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}")),
    ("anthropic_key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("google_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("private_key", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |)PRIVATE KEY-----")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b")),
)
_INJECTION = re.compile(
    r"(ignore|disregard|forget) (all |any )?(the |your )?(previous|prior|above|earlier) (instructions|prompts|rules)"
    r"|you are now (?:in )?(?:developer|dan|jailbreak) mode|reveal (?:your |the )?(?:system|hidden) prompt"
    r"|print (?:your |the )?(?:system|initial) (?:prompt|instructions)|act as if you have no (?:rules|restrictions)",
    re.I)


@dataclass(frozen=True)
class Finding:
    kind: str  # email, phone, card, iban, secret:<type>, injection
    start: int
    end: int


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(raw: str) -> bool:
    iban = raw.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


_SECRET_MARKS = ("sk-", "AIza", "AKIA", "ASIA", "gh", "-----BEGIN", "eyJ")
_DIGIT = re.compile(r"\d")


def find(text: str) -> list[Finding]:
    found: list[Finding] = []
    # Cheap gates first (this runs on every message of every request): no secret prefix, no "@", no
    # digit means the expensive patterns cannot match, and most prompts have none of them.
    if any(mark in text for mark in _SECRET_MARKS):
        for kind, pattern in _SECRETS:
            found += [Finding(f"secret:{kind}", m.start(), m.end()) for m in pattern.finditer(text)]
    if "@" in text:
        found += [Finding("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    if _DIGIT.search(text) is None:
        found += [Finding("injection", m.start(), m.end()) for m in _INJECTION.finditer(text)]
        return sorted(found, key=lambda f: f.start)
    for m in _IBAN.finditer(text):
        if iban_ok(m.group(0)):
            found.append(Finding("iban", m.start(), m.end()))
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found.append(Finding("card", m.start(), m.end()))
    taken = [(f.start, f.end) for f in found]
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 9 <= len(digits) <= 15 and not _DATE.match(m.group(0).strip()) \
                and not any(s <= m.start() < e for s, e in taken):
            found.append(Finding("phone", m.start(), m.end()))
    found += [Finding("injection", m.start(), m.end()) for m in _INJECTION.finditer(text)]
    return sorted(found, key=lambda f: f.start)


def redact(text: str, findings: list[Finding]) -> str:
    """Each finding replaced by ``[KIND]``, right to left so offsets stay valid."""
    for f in sorted((f for f in findings if f.kind != "injection"), key=lambda f: f.start, reverse=True):
        text = text[: f.start] + f"[{f.kind.split(':')[0].upper()}]" + text[f.end:]
    return text
