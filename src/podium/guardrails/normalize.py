"""Text as the detectors see it: Unicode NFKC, invisible characters removed, hidden tag text made visible.

Why: ``s\\u200bk-proj-…`` (a zero-width space inside a key), full-width ``\\uff53\\uff4b\\uff0d…`` (``sk-``) or a soft
hyphen in ``ig\\u00adnore`` look like ordinary text to a model and to a reader, but not to a pattern.
Unicode "tag" characters (U+E0020..U+E007E) are invisible copies of ASCII that models read
("ASCII smuggling"); they become the ASCII they encode, so the detectors read them too.

Every step is linear. ``unicodedata.normalize`` is not on its own: it sorts each run of combining
marks by insertion sort, so 100 KB of alternating marks takes seconds. Runs of more than 30
combining marks are cut to 30 first (the limit of Unicode's "stream-safe" format, UAX #15), which
changes no real text.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

_CONTROL_CHARS = "".join(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
_CONTROLS = re.compile(f"[{re.escape(_CONTROL_CHARS)}]+")  # C0 controls but tab, newline and return
_INVISIBLE_BMP = (
    "\x80-\x9f"  # C1 controls
    "\u00ad"  # soft hyphen
    "\u034f"  # combining grapheme joiner
    "\u061c"  # Arabic letter mark
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u17b4\u17b5"  # Khmer inherent vowels
    "\u180b-\u180f"  # Mongolian variation selectors and vowel separator
    "\u200b-\u200f"  # zero-width space, non-joiner, joiner, direction marks
    "\u202a-\u202e"  # direction embeddings and overrides
    "\u2060-\u206f"  # word joiner, invisible operators, direction isolates
    "\ufe00-\ufe0f"  # variation selectors
    "\ufeff"  # zero-width no-break space (byte-order mark)
    "\ufff9-\ufffb"  # interlinear annotation marks
)
_INVISIBLE = re.compile(f"[{_INVISIBLE_BMP}{re.escape(_CONTROL_CHARS)}]")
_DELETE = {cp: None for cp in range(0x10000) if _INVISIBLE.match(chr(cp))}  # one pass, however many there are
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_INVISIBLE_ASTRAL = re.compile(
    "[\U0001d173-\U0001d17a"  # musical formatting characters
    "\U000e0000-\U000e001f\U000e007f-\U000e0fff]+"  # tag controls, variation selectors supplement
)
_TAGS = re.compile("[\U000e0020-\U000e007e]+")
_MAX_MARKS = 30  # UAX #15 stream-safe text: no more than 30 non-starters in a row
_SHORT = 512  # below this, even a worst-case sort of marks costs well under a millisecond


def _without_invisible(text: str) -> str:
    """Invisible characters removed: one ``str.replace`` per distinct one (C speed, ~1 ns a character), or
    one ``translate`` (~75 ns a character) when there are many distinct ones."""
    for _ in range(8):
        m = _INVISIBLE.search(text)
        if m is None:
            return text
        text = text.replace(m.group(), "")
    return text.translate(_DELETE)


def _untag(match: re.Match[str]) -> str:
    return "".join(chr(ord(ch) - 0xE0000) for ch in match.group())


def normalise(text: str) -> str:
    """The text to detect in (and to send, when something in it is redacted)."""
    if text.isascii():  # the common case: in ASCII, only control characters are not printable (C speed)
        if text.isprintable() or text.replace("\n", "").replace("\t", "").replace("\r", "").isprintable():
            return text
        return _CONTROLS.sub("", text)
    text = _without_invisible(text)
    if _ASTRAL.search(text):
        text = _TAGS.sub(_untag, _INVISIBLE_ASTRAL.sub("", text))
    if unicodedata.is_normalized("NFKC", text):
        return text
    if len(text) > _SHORT:
        text = _cap_mark_runs(text)
    return unicodedata.normalize("NFKC", text)


@cache
def _marks() -> Any:
    """One flag per code point of planes 0 and 1 (every combining mark lives there): is it a non-starter?"""
    import numpy as np

    flags = bytes(unicodedata.combining(chr(cp)) != 0 for cp in range(0x20000))
    return np.frombuffer(flags, dtype=np.bool_)


def _cap_mark_runs(text: str) -> str:
    """The text with every run of combining marks cut to its first 30 (numpy: one pass, no Python loop
    per character, so 4 MB of Chinese costs milliseconds)."""
    import numpy as np

    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    mark = _marks()[np.minimum(codes, 0x1FFFF)]
    if not mark.any():
        return text
    edges = np.flatnonzero(np.diff(mark.view(np.int8), prepend=0, append=0))  # run starts and ends, paired
    starts, ends = edges[0::2], edges[1::2]
    long = ends - starts > _MAX_MARKS
    if not long.any():
        return text
    keep = np.ones(codes.size, dtype=np.bool_)
    for start, end in zip(starts[long].tolist(), ends[long].tolist(), strict=True):
        keep[start + _MAX_MARKS:end] = False
    return bytes(codes[keep].tobytes()).decode("utf-32-le", "surrogatepass")
