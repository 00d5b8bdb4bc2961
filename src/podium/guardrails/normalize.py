"""Text as the detectors see it: Unicode NFKC, invisible characters removed, hidden tag text made visible.

Why: ``s\\u200bk-proj-…`` (a zero-width space inside a key), full-width ``\\uff53\\uff4b\\uff0d…`` (``sk-``) or a soft
hyphen in ``ig\\u00adnore`` look like ordinary text to a model and to a reader, but not to a pattern.
Unicode "tag" characters (U+E0020..U+E007E) are invisible copies of ASCII that models read
("ASCII smuggling"); they become the ASCII they encode, so the detectors read them too.

Every step is linear, and a long text costs milliseconds, whatever it holds:

* ``unicodedata.normalize`` is not linear on its own: it sorts each run of combining marks by
  insertion sort, so 100 KB of alternating marks (or of characters that decompose into marks,
  such as U+0F73) takes seconds. Runs of more than 30 such characters are cut to 30 first (the
  limit of Unicode's "stream-safe" format, UAX #15), which changes no real text.
* Nor is it fast: composing costs ~100 ns a character for scripts far from Latin (Chinese with
  full-width punctuation, Japanese half-width kana, Arabic presentation forms), and checking
  whether text is normalised costs as much as normalising it when the text has combining marks
  (Hindi, Bengali). So a long text is read once with numpy, one table lookup per character: the
  characters that NFKC maps to one other character (full-width letters, ideographic space, half-
  width katakana) are mapped in that pass, and ``unicodedata`` is called only on the short
  segments around what remains (a mark that composes with the letter before it, a ligature…),
  cut at characters no normalisation crosses. Text that NFKC leaves alone is returned as it is.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

_CONTROL_CHARS = "".join(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
_CONTROLS = re.compile(f"[{re.escape(_CONTROL_CHARS)}]+")  # C0 controls but tab, newline and return
_CONTROL_BYTES = _CONTROL_CHARS.encode()
_NOT_CONTROL = bytes(c for c in range(128) if c not in _CONTROL_BYTES)
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
_SHORT = 512  # up to this, unicodedata on the whole text costs well under a millisecond, whatever it holds
_LONG_ASCII = 4096  # from this, ASCII text is checked for controls with bytes.translate (~4 times faster)


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
        if len(text) >= _LONG_ASCII:
            if not text.encode().translate(None, _NOT_CONTROL):
                return text
        elif text.isprintable() or text.replace("\n", "").replace("\t", "").replace("\r", "").isprintable():
            return text
        return _CONTROLS.sub("", text)
    if len(text) > _SHORT:
        return _normalise_long(text)
    text = _without_invisible(text)
    if _ASTRAL.search(text):
        text = _TAGS.sub(_untag, _INVISIBLE_ASTRAL.sub("", text))
    return unicodedata.normalize("NFKC", text)


# What the table says of each code point (planes 0 to 2; every code point above, but tags, is left alone by
# NFKC: checked by the tests)
_INV = 1  # invisible: removed
_NS = 2  # decomposes to a combining mark first: counts towards a run of marks (capped at 30)
_BOUND = 4  # NFKC never crosses the point before it (a starter that nothing before it composes with)
_CHG = 8  # NFKC changes it: replaced by its NFKD (which has the same NFKC), then composed where needed
_DEC = 16  # decomposes, but NFKC keeps it (é): a mark after it may compose differently
_MAYBE = 32  # may compose with the starter before it (a combining acute, a Hangul vowel)
_MARK = 64  # a combining mark (canonical combining class not 0)
_MULTI = 128  # _CHG, and its NFKD is more than one character
_TOP = 0x2FFFF  # table size - 1 (unassigned: left alone, like everything above)
_BLOCK = 1 << 16  # unicodedata is called on at most about this many characters at a time
_GAP = 256  # segments closer than this are normalised together (one call, not two)


@dataclass(frozen=True)
class _Tables:
    flags: Any  # uint8 per code point, the bits above
    ccc: Any  # uint8 per code point: the canonical combining class
    single: Any  # uint32 per code point: its NFKD if _CHG and one character, else itself
    size: Any  # uint8 per code point: the length of its NFKD, if _CHG
    start: Any  # uint32 per code point: where its NFKD starts in ``nfkd``, if _CHG
    nfkd: Any  # uint32: the NFKD of every _CHG code point, one after the other
    first: Any  # uint8 per code point: 1 if it is the first of a pair NFC composes
    pairs: Any  # sorted int64: first << 21 | second, for every pair NFC composes (Hangul included)
    composed: Any  # uint32: what each pair composes to


def warm_up() -> None:
    """Build the tables a long non-ASCII text needs (~0.1 s, once), so that no request waits for them."""
    _tables()


@cache
def _tables() -> _Tables:
    """Built once, on the first long non-ASCII text (~0.1 s) or by ``warm_up``."""
    import numpy as np

    top = _TOP + 1
    # planes 0 and 1, and the compatibility ideographs of plane 2 (the rest of plane 2 is left alone by NFKC)
    points = [*range(0x20000), *range(0x2F800, 0x2FA20)]
    chars = [chr(cp) for cp in points]
    ccc = np.zeros(top, dtype=np.uint8)
    ccc[points] = list(map(unicodedata.combining, chars))
    flags = np.zeros(top, dtype=np.uint8)
    decomposed = {cp: unicodedata.normalize("NFKD", ch) for cp, ch, mapping in
                  zip(points, chars, map(unicodedata.decomposition, chars), strict=True)
                  if mapping or 0xAC00 <= cp <= 0xD7A3}  # (Hangul syllables decompose by rule)
    pairs: dict[int, int] = {}
    for cp in decomposed:
        canonical = unicodedata.normalize("NFD", chr(cp))
        if len(canonical) == 2 and unicodedata.normalize("NFC", canonical) == chr(cp):  # a primary composite
            pairs[ord(canonical[0]) << 21 | ord(canonical[1])] = cp
            flags[ord(canonical[1])] |= _MAYBE
    for lead in range(19):  # Hangul: leading consonant + vowel, syllable without a final + final
        for vowel in range(21):
            syllable = 0xAC00 + (lead * 21 + vowel) * 28
            pairs[(0x1100 + lead) << 21 | (0x1161 + vowel)] = syllable
            for final in range(1, 28):
                pairs[syllable << 21 | (0x11A7 + final)] = syllable + final
    flags[0x1161:0x1176] |= _MAYBE
    flags[0x11A8:0x11C3] |= _MAYBE
    flags[ccc != 0] |= _MARK | _NS
    flags[ccc == 0] |= _BOUND
    flags[flags & _MAYBE != 0] &= ~_BOUND & 0xFF
    single = np.arange(top, dtype=np.uint32)
    size = np.ones(top, dtype=np.uint8)
    start = np.zeros(top, dtype=np.uint32)
    nfkd: list[int] = []
    for cp, nfkd_of in decomposed.items():
        lead = ord(nfkd_of[0])
        if ccc[lead]:
            flags[cp] |= _NS
        if ccc[lead] or flags[lead] & _MAYBE:
            flags[cp] &= ~_BOUND & 0xFF
        if unicodedata.normalize("NFKC", chr(cp)) == chr(cp):
            flags[cp] |= _DEC
        else:
            flags[cp] |= _CHG
            size[cp], start[cp] = len(nfkd_of), len(nfkd)
            nfkd += map(ord, nfkd_of)
            if len(nfkd_of) == 1:
                single[cp] = lead
            else:
                flags[cp] |= _MULTI
    for cp in _DELETE:
        flags[cp] = _INV
    flags[0x1D173:0x1D17B] = _INV
    keys = np.array(sorted(pairs), dtype=np.int64)
    first = np.zeros(top, dtype=np.uint8)
    first[keys >> 21] = 1
    return _Tables(flags, ccc, single, size, start, np.array(nfkd, dtype=np.uint32), first, keys,
                   np.array([pairs[k] for k in keys.tolist()], dtype=np.uint32))


def _normalise_long(text: str) -> str:
    """``normalise`` for a long non-ASCII text: numpy for what every character needs, unicodedata for the
    segments that need more (see the module's docstring)."""
    import numpy as np

    t = _tables()
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    flags = np.take(t.flags, codes, mode="clip")
    high = int(codes.max()) >= 0xE0000
    present = int(np.bitwise_or.reduce(flags))
    if not high and not present & (_INV | _NS | _CHG | _MAYBE | _MARK):
        return text  # nothing to remove, nothing NFKC changes
    if high:  # tag characters become the ASCII they encode, the other plane-14 formatting characters go
        plane14 = (codes >= 0xE0000) & (codes <= 0xE0FFF)
        tags = plane14 & (codes >= 0xE0020) & (codes <= 0xE007E)
        codes = np.where(tags, codes - 0xE0000, codes)
        flags = np.take(t.flags, codes, mode="clip")
        flags[plane14 & ~tags] = _INV
        present = _INV | int(np.bitwise_or.reduce(flags))
    if present & _INV:
        keep = flags & _INV == 0
        codes, flags = codes[keep], flags[keep]
    if present & _NS:
        codes, flags = _cap_mark_runs(codes, flags)
    changed = high or codes.size != len(text)
    if present & _CHG:
        codes = _decomposed(codes, flags, t) if present & _MULTI else np.take(t.single, codes, mode="clip")
        flags = np.take(t.flags, codes, mode="clip")
        present = int(np.bitwise_or.reduce(flags))
        changed = True
    if present & (_MARK | _MAYBE):
        composed = _compose(codes, flags, t)
        if composed is not None:
            codes, flags, dirty = composed
            text = codes.tobytes().decode("utf-32-le", "surrogatepass")
            return _normalise_segments(text, flags, dirty) if dirty.size else text
    return codes.tobytes().decode("utf-32-le", "surrogatepass") if changed else text


def _cap_mark_runs(codes: Any, flags: Any) -> tuple[Any, Any]:
    """Every run of characters that decompose to combining marks cut to its first 30."""
    import numpy as np

    mark = flags & _NS != 0
    run = mark[:-1] & mark[1:]  # a run of 31 or more: 2, 4, 8, 16, then 31 in a row
    for width in (2, 4, 8, 15):
        run = run[:-width] & run[width:]
    if not run.any():
        return codes, flags
    edges = np.flatnonzero(np.diff(mark.view(np.int8), prepend=0, append=0))  # run starts and ends, paired
    starts, ends = edges[0::2], edges[1::2]
    long = ends - starts > _MAX_MARKS
    if not long.any():
        return codes, flags
    keep = np.ones(codes.size, dtype=np.bool_)
    for start, end in zip(starts[long].tolist(), ends[long].tolist(), strict=True):
        keep[start + _MAX_MARKS:end] = False
    return codes[keep], flags[keep]


def _decomposed(codes: Any, flags: Any, t: _Tables) -> Any:
    """Each character NFKC changes replaced by its NFKD (the text's NFKD, hence its NFKC, stays the same)."""
    import numpy as np

    size = np.take(t.size, codes, mode="clip").astype(np.int32)
    source = np.repeat(np.arange(codes.size, dtype=np.int32), size)  # the character each one comes from
    out = np.take(t.single, codes, mode="clip")[source]
    multi = np.flatnonzero((flags & _MULTI != 0)[source])  # the characters of longer NFKDs
    if multi.size:
        of = source[multi]
        first = np.cumsum(size, dtype=np.int64) - size  # where each character's NFKD starts in the output
        start = np.take(t.start, codes[of], mode="clip").astype(np.int64)
        out[multi] = np.take(t.nfkd, start + (multi - first[of]), mode="clip")
    return out


def _compose(codes: Any, flags: Any, t: _Tables) -> tuple[Any, Any, Any] | None:
    """Text without characters NFKC changes, composed where that is one pair (a starter, then the mark or
    vowel it composes with, then a boundary): (codes, flags, the positions still to normalise), or None if
    nothing composes or moves."""
    import numpy as np

    n = codes.size
    mark = flags & _MARK != 0
    dirty = np.zeros(n, dtype=np.bool_)
    dirty[1:] = (flags[1:] & (_MARK | _MAYBE) != 0) & (flags[:-1] & _DEC != 0)  # a mark after é: decomposed,
    both = np.flatnonzero(mark[1:] & mark[:-1]) + 1  # reordered and composed again
    if both.size:  # marks out of canonical order
        dirty[both[np.take(t.ccc, codes[both - 1]) > np.take(t.ccc, codes[both])]] = True
    maybe = np.flatnonzero(flags[1:] & _MAYBE) + 1
    pair = maybe[:0]
    if maybe.size:
        before = maybe - 1  # the last starter before each: the character before it, or before its marks
        back = np.flatnonzero(mark[before])
        while back.size:  # (runs of marks are short: cut to 30)
            before[back] -= 1
            back = back[before[back] >= 0]
            back = back[mark[before[back]]]
        firsts = (before >= 0) & (np.take(t.first, codes[before], mode="clip") != 0)
        maybe, before = maybe[firsts], before[firsts]
        keys = codes[before].astype(np.int64) << 21 | codes[maybe].astype(np.int64)
        at = np.minimum(np.searchsorted(t.pairs, keys), t.pairs.size - 1)
        composes = t.pairs[at] == keys
        dirty[maybe[composes]] = True
        # one pair alone between two boundaries: composed here, not by unicodedata
        pair, at = maybe[composes], at[composes]
        alone = (before[composes] == pair - 1) & (flags[pair - 1] & _BOUND != 0) & (flags[pair - 1] & _DEC == 0)
        after = np.minimum(pair + 1, n - 1)
        alone &= (pair + 1 == n) | (flags[after] & _BOUND != 0)
        alone &= ~dirty[pair - 1]
        pair, at = pair[alone], at[alone]
        dirty[pair] = False
    if not dirty.any() and not pair.size:
        return None
    if pair.size:
        codes = codes.copy()
        codes[pair - 1] = t.composed[at]
        keep = np.ones(n, dtype=np.bool_)
        keep[pair] = False
        codes, dirty = codes[keep], dirty[keep]
        flags = np.take(t.flags, codes, mode="clip")
    return codes, flags, np.flatnonzero(dirty)


def _normalise_segments(text: str, flags: Any, dirty: Any) -> str:
    """``text`` with each segment around a dirty position normalised: from the last boundary at or before it
    to the next one after it (NFKC never crosses a boundary, so the text between segments stays as it is)."""
    import numpy as np

    bounds = np.flatnonzero(flags & _BOUND)
    bounds = np.concatenate(([0], bounds, [len(text)]))
    at = np.searchsorted(bounds, dirty, side="right")
    starts, ends = bounds[at - 1], bounds[at]
    # segments that overlap are one; close ones are joined, up to about _BLOCK characters a call
    joined = (starts[1:] < ends[:-1]) | ((starts[1:] - ends[:-1] < _GAP)
                                         & (starts[1:] // _BLOCK == ends[:-1] // _BLOCK))
    first = np.flatnonzero(np.concatenate(([True], ~joined)))
    pieces: list[str] = []
    pos = 0
    for start, end in zip(starts[first].tolist(), np.maximum.reduceat(ends, first).tolist(), strict=True):
        pieces += [text[pos:start], unicodedata.normalize("NFC", text[start:end])]
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)
