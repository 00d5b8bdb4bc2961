"""Personal data: e-mail addresses, phone numbers, card numbers (Luhn) and IBANs (ISO 13616 mod-97).

Why these shapes: the old patterns let the engine backtrack, so one 100 KB request of
``a.a.a.a…`` held the gateway for seconds. Here no attempt can cost more than a constant:

* e-mail: the pattern starts at the rare ``@`` (the engine jumps from one ``@`` to the next); the
  domain is matched forwards with bounded, possessive labels, and the local part is read backwards
  from the ``@`` for at most 64 characters.
* numbers (phones and cards in one pass): the first character is a digit, ``+`` or ``(``; a
  look-behind right after it rejects every position inside a longer run of digits, so only the
  start of a run is ever tried, and the run is matched by possessive groups of bounded length.
  The digit count (9 to 19) is checked by bounded look-aheads, and ISO dates, times, versions and
  long dash-separated digit strings (Slack tokens, ids) can not end a match.
* IBAN: two capitals and two digits at the start of a word, then bounded possessive groups.

A finding still has to pass its check (Luhn, mod-97, digit count) before it is reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_DOMAIN = re.compile(
    r"@(?<=[A-Za-z0-9_%+-]@)"  # the local part ends in a letter, digit or one of _%+- (not a dot)
    r"[A-Za-z0-9-]{1,63}+(?:\.[A-Za-z0-9-]{1,63}+){1,8}+"  # labels: bounded and possessive, never re-tried
    r"(?<=\.[A-Za-z]{2}|[A-Za-z]{3})"  # a top-level domain of letters
    r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])",  # and nothing glued to it
    re.ASCII)
_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_LOCAL_MAX = 64


def emails(text: str) -> Iterator[tuple[int, int]]:
    if "@" not in text:
        return
    for m in _DOMAIN.finditer(text):
        at = m.start()
        start = at
        floor = max(0, at - _LOCAL_MAX)
        while start > floor and text[start - 1] in _LOCAL:
            start -= 1
        while start < at and text[start] in "._%+-":  # a local part starts with a letter or digit
            start += 1
        if start < at:
            yield start, m.end()


_SEP = r"[ .\-]"
_NUMBER = re.compile(
    r"[0-9]"  # the engine skips to the next digit before trying anything
    # Cheapest and most selective first, and no alternation before them (trying alternatives costs more
    # than all the rest): a digit inside a word, a number, a version, a path or a time never starts a
    # number; nor does a run of fewer than nine digits, nor the second group of a longer run.
    r"(?<![A-Za-z0-9_.,\-/@#$%&=:\\)][0-9])"
    r"(?=[0-9 .()\-]{8})"  # a cheap first cut: eight more characters a number could have
    r"(?<![0-9][ .\-][0-9])(?<![0-9]\)[ .\-][0-9])"
    r"(?<![A-Za-z0-9_+(.,\-/@#$%&=:\\)][+(][0-9])"  # a + or ( before it belongs to the number: and before that?
    r"(?=(?:[ .()\-]{0,2}+[0-9]){8})"
    r"(?:"
    r"(?=(?:[ .()\-]{0,2}+[0-9]){19})[0-9 .()\-]*+"  # 20 or more: consumed whole, so no position inside
    r"|(?:"  # it is tried again
    # international: +49 30 1234 5678, +1 (555) 123-4567, +44 7911 123456, +4930123456
    rf"(?<=\+[0-9])[0-9]{{0,2}}+(?:{_SEP}?+\(0\))?+{_SEP}?+(?:\([0-9]{{1,5}}+\){_SEP}?+)?+"
    rf"[0-9]{{1,12}}+(?:{_SEP}[0-9]{{1,8}}+){{0,6}}+"
    # area code in parentheses: (555) 123-4567, (030) 1234 5678
    rf"|(?<=\([0-9])[0-9]{{0,4}}+\){_SEP}?+[0-9]{{2,8}}+(?:{_SEP}[0-9]{{2,8}}+){{1,5}}+"
    # groups: 030 1234 5678, 555-123-4567, 06 12 34 56 78, 4111 1111 1111 1111, 3782 822463 10005;
    # unseparated: 4111111111111111 (a card, if Luhn agrees), 01711234567 (a national number)
    r"|(?<![+(][0-9])"
    r"(?![0-9]{3}-[0-9]{2}-[0-9]{2}(?![0-9]))"  # 2024-05-01 (and 2024-05-01 10:30:00) is a date
    r"(?![0-9]?[./][0-9]{1,2}[./][0-9]{2,4}(?![0-9]))"  # 01.05.2024, 1/5/24
    rf"[0-9]{{0,18}}+(?:{_SEP}[0-9]{{2,8}}+){{0,6}}+"
    r")"
    r"(?![A-Za-z0-9_@]|[.,:/\-+][0-9]|\)[0-9])(?P<number>)"  # the run ends here, not glued to more
    r")",
    re.ASCII)
_DIGITS = re.compile(r"[0-9]")
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")  # an IPv4 address, not a phone


def numbers(text: str) -> Iterator[tuple[str, int, int]]:
    """("card" | "phone", start, end) for runs of digits that pass their check."""
    for m in _NUMBER.finditer(text):
        if m.lastgroup != "number":
            continue
        start = m.start()
        if start and text[start - 1] in "+(":
            start -= 1
        raw = text[start:m.end()]
        digits = "".join(_DIGITS.findall(raw))
        n = len(digits)
        if 13 <= n <= 19 and digits[0] in "23456" and "(" not in raw and "+" not in raw and luhn_ok(digits):
            yield "card", start, m.end()
        elif n <= 15 and _phone_shaped(raw, digits):
            yield "phone", start, m.end()


def _phone_shaped(raw: str, digits: str) -> bool:
    if raw[0] in "+(":
        return True
    if raw == digits:  # no separators: only a national number (trunk prefix 0) of 10 to 12 digits
        return digits[0] == "0" and 10 <= len(digits) <= 12
    return _DOTTED_QUAD.fullmatch(raw) is None


_IBAN = re.compile(
    r"[A-Z](?<![A-Za-z0-9_][A-Z])[A-Z][0-9]{2}"  # country and check digits, at the start of a word
    r"(?: ?+[A-Z0-9]{4}+){2,7}+"  # groups of four
    r"(?:(?= ?[A-Z0-9]{4})(?: ?+[A-Z0-9]+)*+"  # more than an IBAN holds: consumed whole, not tried again
    r"|(?: ?+[A-Z0-9]{1,3}+)?+(?![A-Za-z0-9])(?P<iban>))",
    re.ASCII)


def ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN.finditer(text):
        if m.lastgroup == "iban" and iban_ok(m.group()):
            yield m.start(), m.end()


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
    if not 15 <= len(iban) <= 34 or not iban.isalnum() or not iban.isascii():
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1
