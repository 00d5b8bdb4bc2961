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

Linear is not enough: in 4 MB of digits, trying each one costs 80 ms, and the engine spends ~5 ns a
character just testing each against a class. So a long text is first read as a skeleton (one
``bytes.translate``: digit, separator, anything else; capital, digit; letter, dot, @), and the
patterns run only where the skeleton says a match can be: numbers in the runs of digits and
separators that hold nine digits at most two separators apart (no such run, no number: 4 MB of
"(1) (1) …" cost one translation), IBANs in the runs that start like one, e-mails in the chunks with
an ``@`` and the end of a top-level domain. Where numbers may be, the engine starts from whatever
the text has least of (digits, the characters before them, or, if only a few kinds of character
come before digits, each kind on its own at memchr speed: logs and tables).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from operator import itemgetter, le

from podium.guardrails.view import View

_DOMAIN = re.compile(
    r"@(?<=[A-Za-z0-9_%+-]@)"  # the local part ends in a letter, digit or one of _%+- (not a dot)
    r"[A-Za-z0-9-]{1,63}+(?:\.[A-Za-z0-9-]{1,63}+){1,8}+"  # labels: bounded and possessive, never re-tried
    r"(?<=\.[A-Za-z]{2}|[A-Za-z]{3})"  # a top-level domain of letters
    r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])",  # and nothing glued to it
    re.ASCII)
_LOCAL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
_LOCAL_MAX = 64


def emails(text: str, view: View | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of every e-mail address. ``view``: the text's bytes, if another detector has them."""
    if "@" not in text:
        return iter(())
    found: list[tuple[int, int]] = []
    for at, end in _domains(text, view):
        before = text[max(0, at - _LOCAL_MAX):at]
        local = before[len(before.rstrip(_LOCAL_CHARS)):]  # the characters of a local part right before the @
        local = local.lstrip("._%+-")  # a local part starts with a letter or digit
        if local:
            found.append((at - len(local), end))
    return iter(found)


def _domains(text: str, view: View | None) -> list[tuple[int, int]]:
    """The spans of _DOMAIN's matches; in a long text, only in the chunks with an @ and what a top-level
    domain ends with (three letters, or a dot and two): 4 MB of "a@a@…" or "a.a@b.…" cost one translation."""
    if len(text) < _CHUNK:
        return [m.span() for m in _DOMAIN.finditer(text)]
    skeleton = (view if view is not None else View(text)).raw.translate(_LETTERS)
    spans: list[tuple[int, int]] = []
    for begin, end in _chunks(skeleton, _may_hold_email, _DOMAIN_MAX):
        start = max(begin, spans[-1][1]) if spans else begin
        spans += [m.span() for m in _DOMAIN.finditer(text, start, min(len(text), end + _DOMAIN_MAX))]
        while spans and spans[-1][0] >= end:  # (an @ of the next chunk: looked at with it)
            spans.pop()
    return spans


def _may_hold_email(skeleton: bytes, at: int, stop: int) -> bool:
    return skeleton.find(b"@", at, stop) >= 0 and (skeleton.find(b"aaa", at, stop) >= 0
                                                   or skeleton.find(b".aa", at, stop) >= 0)


def _chunks(skeleton: bytes, has: Callable[[bytes, int, int], bool], margin: int) -> list[tuple[int, int]]:
    """The chunks of the text (merged where they follow each other) where ``has(skeleton, start, stop)``,
    ``stop`` being ``margin`` past the chunk: what starts in a chunk and is at most that long is in it."""
    chunks: list[tuple[int, int]] = []
    for at in range(0, len(skeleton), _CHUNK):
        if has(skeleton, at, at + _CHUNK + margin):
            end = min(at + _CHUNK, len(skeleton))
            if chunks and chunks[-1][1] == at:
                chunks[-1] = (chunks[-1][0], end)
            else:
                chunks.append((at, end))
    return chunks


_DOMAIN_MAX = 600  # an @ and at most 9 labels of 63 characters, and what the end looks at
_LETTERS = bytes.maketrans(bytes(range(256)), bytes(  # letters "a", "." and "@" themselves, the rest "x"
    ord("a") if chr(c).isalpha() and c < 128 else c if c in b".@" else ord("x") for c in range(256)))


_SEP = r"[ .\-]"
# The checks at the first digit (zero-width, so their order changes nothing but the time): the digit
# does not follow a letter, digit, dot, comma, dash, slash, @, #, $, %, &, =, colon, backslash or ")"
# (a digit inside a word, a number, a version, a path or a time never starts a number)...
_AFTER = r"(?<![A-Za-z0-9_.,\-/@#$%&=:\\)][0-9])"
_NUMBER_CHECKS = (
    r"(?=[0-9 .()\-]{8})"  # a cheap first cut: eight more characters a number could have
    # 2024-05-01 (and 2024-05-01 10:30:00), 01.05.2024 and 1/5/24 are dates, unless a run of 20 digits or
    # more goes on (consumed whole, below) or a + or ( comes before (an international number, an area
    # code): the same rule as the groups' below, tried first, as dates are what logs are full of
    r"(?!(?<![+(][0-9])(?:[0-9]{3}-[0-9]{2}-[0-9]{2}(?![0-9])(?!(?:[ .()\-]{0,2}+[0-9]){12})"
    r"|(?=[0-9]?[./][0-9]{1,2}[./][0-9]{2,4}(?![0-9]))(?!(?:[ .()\-]{0,2}+[0-9]){19})))"
    r"(?<![0-9][ .\-][0-9])(?<![0-9]\)[ .\-][0-9])"  # not the second group of a run
    r"(?<![A-Za-z0-9_+(.,\-/@#$%&=:\\)][+(][0-9])"  # a + or ( before it belongs to the number: and before that?
    r"(?=(?:[ .()\-]{0,2}+[0-9]){8})"  # nine digits at least, at most two separators apart
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
    r")")
# Two spellings of one pattern. The engine jumps to the next character the pattern can start with, then
# tries it: _NUMBER starts at a digit (and tries every digit: 80 ms in 4 MB of "DE89 3704 …"), _AFTER_SPACE
# at the character before the first digit (a space, a bracket…; every one of them tried: a cost in prose,
# a saving in digits), whichever the text has fewer of. A match of _AFTER_SPACE starts one character early.
_NUMBER = re.compile("[0-9]" + _AFTER + _NUMBER_CHECKS, re.ASCII)
_NOT_BEFORE = "A-Za-z0-9_.,\\-/@#$%&=:\\\\)"  # what _AFTER rules out
_AFTER_SPACE = re.compile(f"[^{_NOT_BEFORE}][0-9]" + _NUMBER_CHECKS, re.ASCII)
_NOT_BEFORE_BYTES = bytes(c for c in range(256) if re.match(f"[{_NOT_BEFORE}]", chr(c)))

_NOT_DIGIT_BYTES = bytes(c for c in range(256) if not 48 <= c <= 57)
# Each character as the numbers see it: d a digit, s a separator inside a number, x anything else. A number
# starts with nine digits at most two separators apart ("a chain"), so text without one has no number.
_SKELETON = bytes.maketrans(bytes(range(256)), bytes(
    ord("d") if chr(c).isdigit() and c < 128 else ord("s") if c in b" .()-" else ord("x") for c in range(256)))
_CHUNK = 16384
_PAIRS_AT = 1 << 16  # from this length, counting pairs of characters (numpy, ~6 ms for 4 MB) may pay
_MARGIN = 32  # a chain is at most 25 characters long; a number looks at most this far past its run


def numbers(text: str, view: View | None = None) -> Iterator[tuple[str, int, int]]:
    """("card" | "phone", start, end) for runs of digits that pass their check."""
    found: list[tuple[str, int, int]] = []
    for start, end in _number_runs(text, view if view is not None else View(text)):
        raw = text[start:end]  # ASCII: digits, " .()-" and a leading + or (
        digits = raw.encode().translate(None, b" .()-+")
        n = len(digits)
        if raw[0] in "+(":  # an international number or an area code: a phone, not a card
            if n <= 15:
                found.append(("phone", start, end))
        elif 13 <= n <= 19 and digits[0] in b"23456" and "(" not in raw and luhn_ok(digits.decode()):
            found.append(("card", start, end))
        elif n <= 15 and _phone_shaped(raw, n, digits[0] == 48):
            found.append(("phone", start, end))
    return iter(found)


_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")  # an IPv4 address, not a phone


def _number_runs(text: str, view: View) -> list[tuple[int, int]]:
    """The spans _NUMBER matches as a number (with the + or ( before it), looked for only in the runs of
    digits and separators that hold a chain: 4 MB of "(1) (1) …" or "12 34 56, …" cost one translation."""
    raw = view.raw  # one byte a character
    skeleton = raw.translate(_SKELETON)
    regions = _chain_regions(skeleton)
    if not regions:
        return []
    spans: list[tuple[int, int]] = []
    first_end = 0
    if regions[0][0] == 0:  # a number at the very start has no character before it
        first = _NUMBER.match(text, 0, min(len(text), regions[0][1] + _MARGIN))
        if first is not None:
            if first.lastgroup:
                spans.append(first.span())
            first_end = first.end()
    # The engine jumps to the next character a pattern can start with, then tries it. Which start is cheaper
    # depends on the text: the digits (_NUMBER: every digit tested against a class, and tried), the
    # characters before them (_AFTER_SPACE: likewise, for spaces, brackets…), or, when only a few kinds
    # of character come before digits, one pattern for each, starting with that character (found at
    # memchr speed, the others not even tested): the passes must not overlap, else _AFTER_SPACE.
    if len(raw) >= _PAIRS_AT:  # (counted from the pairs of bytes, which a long text has counted anyway)
        counts = view.pairs().reshape(256, 256).sum(axis=0)  # of each byte as the first of a pair
        digits, befores = int(counts[48:58].sum()), int(counts[_KIND_BEFORE].sum())
        kinds = _kinds_before_digits(view)
    else:  # (counted by deleting the others)
        digits = len(raw.translate(None, _NOT_DIGIT_BYTES))
        befores = len(raw.translate(None, _NOT_BEFORE_BYTES))
        kinds = None
    costs = {"digit": len(raw) * 5 + digits * 25, "before": len(raw) * 5 + befores * 15}
    if kinds is not None:
        costs["passes"] = sum(int(counts[kind[0]]) for kind in kinds) * 20 + len(kinds) * 1500
    way = min(costs, key=costs.__getitem__)
    if way == "passes" and kinds is not None:
        passes = _by_passes(text, regions, first_end, kinds)
        if passes is not None:
            return _with_sign(text, spans + passes)
        way = "before"
    for begin, end in regions:
        limit = min(len(text), end + _MARGIN)
        if way == "digit":
            spans += [m.span() for m in _NUMBER.finditer(text, max(begin, first_end), limit) if m.lastgroup]
        else:
            spans += [(m.start() + 1, m.end()) for m in _AFTER_SPACE.finditer(text, max(begin - 1, first_end), limit)
                      if m.lastgroup]
    return _with_sign(text, spans)


def _with_sign(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(start - 1 if start and text[start - 1] in "+(" else start, end) for start, end in spans]


def _kinds_before_digits(view: View) -> list[bytes] | None:
    """The characters that come before a digit somewhere in the text and may start a number there, if they
    are at most four (from the pairs of bytes counted), else None."""
    import numpy as np

    before_digit = view.pairs().reshape(256, 256)[48:58].sum(axis=0)  # [second byte, first byte]: seconds 0-9
    kinds = [bytes([c]) for c in np.flatnonzero(before_digit).tolist() if _KIND_BEFORE[c]]
    if len(kinds) > 4 or (not view.text.isascii() and b"?" in kinds):  # ("?" is every non-ASCII character too)
        return None
    return kinds


_KIND_BEFORE = [not re.match(f"[{_NOT_BEFORE}]", chr(c)) for c in range(256)]  # may come before a number


def _by_passes(text: str, regions: list[tuple[int, int]], start: int,
               kinds: list[bytes]) -> list[tuple[int, int]] | None:
    """What _AFTER_SPACE finds, one pass for each kind of character before a number (None if two passes'
    matches overlap: then one pass would have hidden a match of the other; if none overlap, together they
    are what one pass finds)."""
    found: list[tuple[int, int, bool]] = []
    for kind in kinds:
        pattern = _literal_number(kind.decode())
        for begin, end in regions:
            found += [(m.start() + 1, m.end(), m.lastgroup is not None) for m in
                      pattern.finditer(text, max(begin - 1, start), min(len(text), end + _MARGIN))]
    if len(kinds) > 1:
        found.sort()
        if not all(map(le, map(_SECOND, found), map(_FIRST, found[1:]))):
            return None
    return [(begin, end) for begin, end, number in found if number]


@cache
def _literal_number(before: str) -> re.Pattern[str]:
    return re.compile(re.escape(before) + "[0-9]" + _NUMBER_CHECKS, re.ASCII)


_FIRST, _SECOND = itemgetter(0), itemgetter(1)


def _chain_regions(skeleton: bytes) -> list[tuple[int, int]]:
    """The runs of digits and separators (merged where they touch) that may hold a number: those that reach
    into a chunk of the text with nine digits at most two separators apart (a chain)."""
    if _NINE not in skeleton.translate(None, b"s"):  # not even nine digits with only separators between
        return []
    return _regions(skeleton, _has_chain)


def _has_chain(skeleton: bytes, at: int, stop: int) -> bool:
    if _CHAIN.search(skeleton, at, min(stop, at + 1024)) is not None:  # (found at once where they are many)
        return True
    part = skeleton[at:stop]  # else: three separators in a row break a chain, like anything else
    return _NINE in part.translate(None, b"s") and _NINE in part.replace(b"sss", b"x").translate(None, b"s")


def _regions(skeleton: bytes, has: Callable[[bytes, int, int], bool]) -> list[tuple[int, int]]:
    """The runs (what lies between two "x" of the skeleton), merged where they touch, that reach into a chunk
    of the text where ``has(skeleton, start, stop)`` (``stop`` is _MARGIN past the chunk, so that what
    starts in a chunk is whole in it)."""
    regions: list[tuple[int, int]] = []
    for at in range(0, len(skeleton), _CHUNK):
        stop = at + _CHUNK + _MARGIN
        if regions and regions[-1][1] >= min(stop, len(skeleton)):
            continue  # inside the last region already
        if not has(skeleton, at, stop):
            continue
        if regions and regions[-1][1] >= at:
            begin = regions.pop()[0]
        else:  # back to the start of the run the chunk starts in
            begin = skeleton.rfind(b"x", regions[-1][1] if regions else 0, at) + 1
        end = skeleton.find(b"x", stop)  # on to the end of the run it ends in
        regions.append((begin, len(skeleton) if end < 0 else end))
    return regions


_NINE = b"d" * 9
_CHAIN = re.compile(rb"d(?:s{0,2}+d){8}")


def _phone_shaped(raw: str, n: int, trunk: bool) -> bool:
    """Not an international number: is it a national one (``n`` digits, ``trunk``: the first is a 0)?"""
    if len(raw) == n:  # no separators: only a national number (trunk prefix 0) of 10 to 12 digits
        return trunk and 10 <= n <= 12
    return _DOTTED_QUAD.fullmatch(raw) is None


_IBAN = re.compile(
    r"[A-Z](?<![A-Za-z0-9_][A-Z])[A-Z][0-9]{2}"  # country and check digits, at the start of a word
    r"(?: ?+[A-Z0-9]{4}+){2,7}+"  # groups of four
    r"(?:(?= ?[A-Z0-9]{4})(?: ?+[A-Z0-9]+)*+"  # more than an IBAN holds: consumed whole, not tried again
    r"|(?: ?+[A-Z0-9]{1,3}+)?+(?![A-Za-z0-9])(?P<iban>))",
    re.ASCII)


def ibans(text: str, view: View | None = None) -> Iterator[tuple[int, int]]:
    """Looked for only in the runs of capitals, digits and spaces that hold two capitals and two digits in a
    row (how an IBAN starts), as numbers are."""
    skeleton = (view if view is not None else View(text)).raw.translate(_IBAN_SKELETON)
    if b"AA99" not in skeleton:
        return
    for begin, end in _regions(skeleton, _has_iban_start):
        for m in _IBAN.finditer(text, begin, min(len(text), end + _MARGIN)):
            if m.lastgroup == "iban" and iban_ok(m.group()):
                yield m.start(), m.end()


def _has_iban_start(skeleton: bytes, at: int, stop: int) -> bool:
    return skeleton.find(b"AA99", at, stop) >= 0


# capitals "A", digits "9", space " ", anything else "x"
_IBAN_SKELETON = bytes.maketrans(bytes(range(256)), bytes(
    ord("A") if 65 <= c <= 90 else ord("9") if 48 <= c <= 57 else 32 if c == 32 else ord("x") for c in range(256)))


def luhn_ok(digits: str) -> bool:
    doubled = sum(map(_DOUBLED.__getitem__, map(int, digits[-2::-2])))  # every second digit from the right
    return (sum(map(int, digits[-1::-2])) + doubled) % 10 == 0


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # a digit doubled, its digits summed


def iban_ok(raw: str) -> bool:
    iban = raw.replace(" ", "")
    if not 15 <= len(iban) <= 34 or not iban.isalnum() or not iban.isascii():
        return False
    moved = iban[4:] + iban[:4]
    return int(moved.translate(_BASE36)) % 97 == 1


_BASE36 = {ord(ch): str(int(ch, 36)) for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}  # A -> 10
