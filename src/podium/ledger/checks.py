"""Every value is checked before its row is queued, so a bad row fails its own caller and never the
shared batch it would have been committed with (one transaction holds many requests' rows).

What a store would refuse is refused or mended here, the same way for SQLite and PostgreSQL:

* ids (request id, key id): a non-empty ``str`` of at most ``MAX_ID`` characters, or ``InvalidRow``
  (an id cut short would name another request);
* other text: a ``str`` (or ``None`` where the column allows it). Text longer than its cap is cut
  to the cap, ending in ``…``: ``MAX_NAME`` (1,000) for names such as models, users and teams,
  ``MAX_TEXT`` (4,000) for error messages, rationales, notes and tags. NUL characters (PostgreSQL
  refuses them) and lone surrogates (no encoding takes them) become U+FFFD;
* numbers: an ``int`` or ``float`` (not a ``bool``) that is finite; counts (tokens, calls,
  retries) an ``int`` from 0 to 2³¹ - 1, PostgreSQL's ``INTEGER``.

Anything else raises ``InvalidRow`` (a ``ValueError``) naming the field and the type, never the
value. The common case — short ASCII text, plain ints and floats — costs one type test and a
comparison or two per field.
"""

from __future__ import annotations

import math
import re

MAX_ID = 200
MAX_NAME = 1_000
MAX_TEXT = 4_000
MAX_COUNT = 2**31 - 1


_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidRow(ValueError):
    """A row or argument the ledger will not store; raised to the caller that passed it."""


def _mend(value: str, cap: int) -> str:
    """The slow path of text: cut to ``cap``, NUL and lone surrogates replaced."""
    if len(value) > cap:
        value = value[:cap - 1] + "…"
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        value = _SURROGATE.sub("\ufffd", value)
    return value


def text(value: object, field: str, cap: int = MAX_NAME) -> str:
    if type(value) is str and len(value) <= cap and value.isascii() and "\x00" not in value:
        return value
    if isinstance(value, str):
        return _mend(str(value), cap)
    raise InvalidRow(f"ledger: {field} must be a string, not {type(value).__name__}")


def text_or_none(value: object, field: str, cap: int = MAX_NAME) -> str | None:
    return None if value is None else text(value, field, cap)


def ident(value: object, field: str) -> str:
    if type(value) is str and 0 < len(value) <= MAX_ID and value.isascii() and "\x00" not in value:
        return value
    if not isinstance(value, str):
        raise InvalidRow(f"ledger: {field} must be a string, not {type(value).__name__}")
    if not value or len(value) > MAX_ID:
        raise InvalidRow(f"ledger: {field} must have 1 to {MAX_ID} characters, not {len(value)}")
    if "\x00" in value or _SURROGATE.search(value):
        raise InvalidRow(f"ledger: {field} must not hold NUL characters or lone surrogates")
    return str(value)


def ident_or_none(value: object, field: str) -> str | None:
    return None if value is None else ident(value, field)


def number(value: object, field: str) -> float:
    if type(value) is float:
        if value - value == 0.0:  # false for inf and nan: finite, in one subtraction
            return value
        raise InvalidRow(f"ledger: {field} must be a finite number, not {value}")
    if type(value) is int or (isinstance(value, int | float) and not isinstance(value, bool)):
        try:
            result = float(value)
        except OverflowError:
            raise InvalidRow(f"ledger: {field} is too large") from None
        if math.isfinite(result):
            return result
        raise InvalidRow(f"ledger: {field} must be a finite number, not {result}")
    raise InvalidRow(f"ledger: {field} must be a number, not {type(value).__name__}")


def number_or_none(value: object, field: str) -> float | None:
    return None if value is None else number(value, field)


def count(value: object, field: str) -> int:
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRow(f"ledger: {field} must be an integer, not {type(value).__name__}")
    if not 0 <= value <= MAX_COUNT:
        raise InvalidRow(f"ledger: {field} must be from 0 to {MAX_COUNT}")
    return int(value)


def tags(value: object, field: str = "tags") -> str:
    """Tags are stored comma-joined; a bare string is refused (it would be stored letter by letter)."""
    if type(value) is not tuple and not isinstance(value, list | tuple):
        raise InvalidRow(f"ledger: {field} must be a tuple of strings, not {type(value).__name__}")
    if not value:
        return ""
    for tag in value:
        if not isinstance(tag, str):
            raise InvalidRow(f"ledger: {field} must hold strings, not {type(tag).__name__}")
    return text(",".join(value), field, MAX_TEXT)


# A quoted passage: an opening quote not inside a word (so the apostrophe of "key's" opens nothing), up to the
# first matching quote not followed by a word character (so "What's" inside the passage does not end it).
_QUOTED = re.compile(r"""(?<!\w)(?:'.*?'(?!\w)|".*?"(?!\w)|`.*?`(?!\w)|\u201c.*?\u201d|\u2018.*?\u2019)""",
                     re.DOTALL)  # the last two: typographic double and single quotes
QUOTE_KEPT = 40  # a quoted name, id or model this short and without spaces is kept: it is no prompt
WITHHELD = "[…]"


def _withhold(match: re.Match[str]) -> str:
    passage = match.group(0)[1:-1]
    return match.group(0) if len(passage) <= QUOTE_KEPT and not any(c.isspace() for c in passage) else WITHHELD


def error_text(value: object, field: str) -> str | None:
    """An error message or note as the ledger keeps it: quoted passages that could be prompt text taken out.

    Vendors echo the input in their errors ("Invalid prompt: '<the prompt>'"), and the ledger never holds
    a prompt (the dashboard and ``podium report`` show what it holds). The gateway's own answer to the
    client keeps the message whole; only the recorded copy is scrubbed, here, where every row is written.
    A short quoted word with no space (a model, a key id, a parameter's name) is kept: that is what makes
    an error useful, and no prompt fits in it."""
    found = text_or_none(value, field, MAX_TEXT)
    return None if found is None else _QUOTED.sub(_withhold, found)
