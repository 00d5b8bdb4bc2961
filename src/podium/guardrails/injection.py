"""Prompt injection: a weighted score of multilingual signals, not one regex.

Why a score: no single phrase separates attacks from ordinary requests. "Ignore the typos",
"act as a Linux terminal", "how do I turn on developer mode" and an article about prompt
injection all share words with attacks. An attack usually combines several signals (an
override verb aimed at the instructions, a new persona without rules, a request for the hidden
prompt, a spoofed ``### System:`` block, text addressed to "the AI" inside a document,
obfuscation); a benign prompt has one at most, or talks *about* them. Each signal has a weight,
talk about attacks subtracts, and the sum is compared with a threshold. The weights and the
threshold were tuned on the ``dev`` half of ``tests/data/injection/prompts.jsonl`` only; the
``test`` half measures them (``benchmarks/guardrails.py``).

How it stays fast: a typical prompt is lower-cased, folded (leetspeak digits to letters, the dots
and dashes of ``i.g.n.o.r.e`` removed) and split into words, all at C speed on bytes; only if a
word starts like one of the trigger stems is the text scored, so most prompts cost a few
microseconds. Scoring runs the patterns of ``injection_signals`` whose trigger words the text has;
their gaps are bounded, so each costs linear time. Base64 and hex blobs (and rot13, when the text
says so) are decoded, bounded, and scored too.

A text longer than ``WINDOW`` characters is scored window by window (two signals far apart in a
long document do not add up), and only the windows that hold a strong stem ("ignore",
"instructions", "prompt", "jailbreak"…), spaced-out letters or an encoded blob: in a 4 MB manual,
"system" and "rule" are everywhere, and scoring every window would cost a second. What such a
window misses (an attack that names none of the strong stems) is a known limit of long texts.

The policy needs one answer per text (flag or block), so a text is not scored, it is decided
(``_flagged``): the heaviest signals first, stopping as soon as the rest can not change the answer,
and at the first window that crosses the threshold. A window or text seen before in the request
(repeated text is the cheapest attack) is not decided again. Dense adversarial text still costs
~1 ms a window, so the pattern work of one request is bounded: ``BUDGET`` seconds of CPU, after which
whatever would still need reading is flagged unread (see ``detect``).
"""

from __future__ import annotations

import base64
import binascii
import operator
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

from podium.guardrails.injection_signals import FEATURES, NEGATIVES, Signal
from podium.guardrails.view import View

THRESHOLD = 3.0
WINDOW = 4096
BUDGET = 0.25  # seconds of CPU time for the signal patterns of one request (see detect)
_OVERLAP = 512

# Leetspeak digits and symbols read as letters; separators inside words dropped (i.g.n.o.r.e, ig-nore)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})
_GATE_FOLD = str.maketrans({**dict(zip("013457@$", "oieastas", strict=True)),
                            ".": None, "-": None, "_": None, "*": None, "\u00b7": None,
                            **dict.fromkeys(",;:!?()[]{}<>|\"'`/\\=+~^&%", " ")})

# The first four letters of a word that may start a signal → the stems that confirm it
_STEMS = (
    # override verbs (en, de, fr, es, it, pt, nl, pl)
    "ignor", "disregard", "forget", "forgot", "overrid", "overrul", "bypass", "circumvent", "scrap", "supersed",
    "vergiss", "vergess", "missacht", "übergeh", "oubli", "olvid", "omit", "descart", "dimentic", "esquec", "esqueç",
    "desconsider", "negeer", "vergeet", "zignor", "zapomn",
    # what is overridden or extracted
    "instruc", "instruk", "instrução", "instruções", "istruz", "anweis", "richtlin", "vorgab", "befehl", "consign",
    "directiv", "direction", "directric", "indicacion", "guideline", "guidance", "rule", "regel", "regl", "règl",
    "regol", "regra", "norma", "zasad", "prompt", "system", "sistem", "systè", "systeem", "pre-prompt", "preprompt",
    "polic", "polít", "restrict", "restricc", "restriç", "einschränk", "constraint", "filter", "filtr", "censor",
    "censur", "zensur", "uncensor", "unfilter", "unrestrict", "confiden", "vertraul", "secret", "geheim", "hidden",
    "versteck", "caché", "oculto", "nascost", "password", "passwort", "contraseñ", "contrasen", "senha", "credential",
    "zugangsdat", "identifiant", "credencial", "token",
    # personas and modes
    "jailbr", "pretend", "roleplay", "rolle", "rôle", "papel", "ruolo", "persona", "character", "charakter",
    "personnage", "personaje", "mode", "modus", "modo", "modalit", "tryb", "developer", "entwickler", "développeur",
    "developpeur", "desarrollador", "sviluppator", "desenvolvedor", "ontwikkelaar", "deweloper", "sudo", "admin",
    "unbound", "freed", "evil", "rogue", "finge", "finja", "fais", "spiel", "joue", "interpret", "doe", "fai",
    # extraction verbs
    "reveal", "verrat", "verrät", "révèl", "revel", "repeat", "wiederhol", "répèt", "repet", "repit", "recopi",
    "verbatim", "wortwört", "palabra", "dump", "leak", "spell",
    # documents addressed to the model, exfiltration
    "assistant", "assistent", "asistente", "assistente", "chatgpt", "gpt", "llm", "ki", "ia", "ai", "bot",
    "forward", "weiterleit", "transfèr", "transfer", "reenví", "reenvi", "inoltr", "encaminh", "doorstur",
    "silently", "secretly", "heimlich",
    # obfuscation and spoofed markup
    "base64", "base", "rot13", "decod", "dekod", "décod", "decodif", "hex", "revers", "erongi", "snoitcurtsni",
    "tpmorp", "###", "inst", "sys", "imstart", "imend", "end", "ende", "fin", "display", "hidden", "white",
    # the grandmother who read out licence keys
    "grandm", "großm", "grossm", "grand-m", "abuel", "nonna", "avó", "activation", "licen", "serial",
)
# The stems that select the windows of a long text (see _candidate_windows), as they appear lower-cased
_LONG_STEMS = ("ignor", "disregard", "forget", "vergiss", "oubli", "olvid", "instruc", "anweis", "consign", "prompt",
               "jailbr", "pretend")
_LONG_MARKS = ("<|", "[inst", "<<sys", "###", "](http")  # each needs a rare character: a memchr first


class _Stems:
    """Stems by their first four (folded) bytes, so a word is looked up, not compared with every stem."""

    def __init__(self, stems: Iterable[str]) -> None:
        folded = [stem.translate(_GATE_FOLD).encode() for stem in stems]
        self.by_prefix: dict[bytes, tuple[bytes, ...]] = {}
        for stem in folded:
            if len(stem) >= 4:
                self.by_prefix[stem[:4]] = (*self.by_prefix.get(stem[:4], ()), stem)
        self.prefixes = frozenset(self.by_prefix)
        self.short = frozenset(stem for stem in folded if len(stem) < 4)

    def any_in(self, words: list[bytes]) -> bool:
        if not self.prefixes.isdisjoint(map(_FIRST4, words)):
            for word in words:
                stems = self.by_prefix.get(word[:4])
                if stems is not None and any(word.startswith(stem) for stem in stems):
                    return True
        return not self.short.isdisjoint(words)


_ALL_STEMS = _Stems((*_STEMS, "dan", "stan", "aim", "dev", "god"))
_FIRST4 = operator.itemgetter(slice(0, 4))
# ASCII fast path of _GATE_FOLD, on bytes (bytes.translate is a table lookup per byte: ~10 times faster)
_GATE_BYTES = bytes.maketrans(b"013457@$" + b",;:!?()[]{}<>|\"'`/\\=+~^&%",
                              b"oieastas" + b" " * len(b",;:!?()[]{}<>|\"'`/\\=+~^&%"))
_GATE_DELETE = b".-_*"
# every letter → "a", space stays, the rest → "#": "i g n o r e" becomes "a a a a a a"
_SHAPE = bytes.maketrans(bytes(range(256)), bytes(
    ord("a") if chr(c).isalpha() and c < 128 else ord(" ") if c == 32 else ord("#") for c in range(256)))
_SPACED_OUT = b"a a a a a a"
# base64 and hex characters → "b", the rest → " ": sixteen "b" in a row may be an encoded blob
_B64 = bytes.maketrans(bytes(range(256)), bytes(
    ord("b") if (chr(c).isalnum() and c < 128) or c in b"+/" else ord(" ") for c in range(256)))
_BLOB_SHAPE = b"b" * 16


def _gate(text: str) -> bool:
    """Does a word of the folded text start like a trigger stem (or is the text spaced out letter by letter,
    or does it hold an encoded blob)? C-level work only, unless a word's first four letters match."""
    low = text.lower()
    raw = low.encode()
    if low.isascii():
        words = raw.translate(_GATE_BYTES, _GATE_DELETE).split()
    else:
        words = low.translate(_GATE_FOLD).encode().split()
    if _ALL_STEMS.any_in(words):
        return True
    if _SPACED_OUT in raw.translate(_SHAPE) or b"](http" in raw:  # spaced out; a markdown link or image
        return True
    return _BLOB_SHAPE in raw.translate(_B64) and any(
        len(word) >= 16 and _plausible_blob(word) for word in words)


def _plausible_blob(word: bytes) -> bool:
    """Base64 or hex of a message: many different characters (not "aaaa…" or "1111…"), nothing else."""
    return len(set(word[:64])) >= 8 and _BLOB.fullmatch(word.decode("utf-8", "replace")) is not None


_SEPARATORS = ",;:!?()[]{}<>|\"'`/\\=+~^&%*.-\n\t"
_WORD_SEP = str.maketrans(dict.fromkeys(_SEPARATORS, " "))
_WORD_SEP_BYTES = bytes.maketrans(_SEPARATORS.encode(), b" " * len(_SEPARATORS))


def _words(view: str) -> set[str]:
    """The first four letters of every word of a view (what ``Signal.needs`` is tested against)."""
    if view.isascii():
        words = set(map(_FIRST4, view.encode().translate(_WORD_SEP_BYTES).decode().split()))
    else:
        words = set(map(_FIRST4, view.translate(_WORD_SEP).split()))
    if "<!--" in view:
        words.add("--")
    if "@" in view:
        words.add("@")
    return words


def _signals(view: str, work: Work | None = None) -> tuple[float, tuple[int, int] | None]:
    words = _words(view)
    score = 0.0
    best = 0.0
    span: tuple[int, int] | None = None
    seen: set[str] = set()
    for signal in FEATURES:
        if signal.name in seen or any(group.isdisjoint(words) for group in signal.needs):
            continue
        if work is not None:
            work.check()
        m = signal.search(view)
        if m is not None:
            seen.add(signal.name)
            score += signal.weight
            if signal.weight > best:
                best, span = signal.weight, m.span()
    if span is None:
        return 0.0, None
    for signal in NEGATIVES:
        if not any(group.isdisjoint(words) for group in signal.needs) and signal.search(view) is not None:
            score += signal.weight
    return score, span


_SPACED = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][ .\-_*·]){3,}[^\W\d_](?![^\W\d_])")  # i g n o r e, i.g.n.o.r.e
_INNER_SEP = re.compile(r"(?<=[^\W\d_])[.\-_*·](?=[^\W\d_]{2})")  # ig-nore, pre-vious (not "e.g.")
_LEETISH = re.compile(r"[^\W\d_][0134578][^\W\d_]|[0134578][^\W\d_][0134578]")
_ZIGZAG = re.compile(r"[a-z][A-Z][a-z][A-Z][a-z]")  # iGnOrE pReViOuS
_BLOB = re.compile(r"[A-Za-z0-9+/]{16,4096}={0,2}|(?:[0-9a-fA-F]{2}){8,2048}")
_FIND_BLOB = re.compile(r"(?<![A-Za-z0-9+/=])(?:[A-Za-z0-9+/]{16,4096}+={0,2}|(?:[0-9a-fA-F]{2}){8,2048}+)"
                        r"(?![A-Za-z0-9+/=])")
_ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                       "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZABCDEFGHIJKLM")


# Each character's shape, to test for obfuscation with one C-level substring search before any regex:
# lower-case letter "a", capital "A", digit "0", space " ", a separator inside words (.-_*) ".", other "#"
_SHAPES = bytes.maketrans(bytes(range(256)), bytes(
    ord("a") if 97 <= c <= 122 else ord("A") if 65 <= c <= 90 else ord("0") if 48 <= c <= 57
    else ord(" ") if c == 32 else ord(".") if c in b".-_*" else ord("#") for c in range(256)))


def _views(text: str) -> tuple[list[str], float]:
    """The text as the patterns read it (and, if it looks like leetspeak, read as letters), and what its
    obfuscation adds to the score."""
    bonus = 0.0
    shape = text.encode().translate(_SHAPES)
    if b"aAaAa" in shape and len(_ZIGZAG.findall(text)) >= 2:
        bonus += 1.5
    low = text.lower()
    view = low
    if (b"a a a a" in shape or b"a.a.a.a" in shape or b"A A A A" in shape or b"A.A.A.A" in shape) \
            and (spaced := _SPACED.sub(lambda m: m.group()[::2], low)) != low:
        bonus += 1.5
        view = spaced
    if b"a.aa" in shape or b"A.AA" in shape or b"a.AA" in shape or b"A.aa" in shape:
        view = _INNER_SEP.sub("", view)
    views = [view]
    if (b"a0a" in shape or b"0a0" in shape or b"A0A" in shape) and len(_LEETISH.findall(low)) >= 3:
        bonus += 1.0
        views.append(view.translate(_LEET))
    return views, bonus


def _decoded(text: str) -> Iterable[str]:
    """Base64 and hex blobs in the text, decoded (at most 8, each at most 4 KB); the text read as rot13."""
    low = text.lower()
    if "rot13" in low or "rot-13" in low:
        yield text.translate(_ROT13)
    if _BLOB_SHAPE not in text.encode().translate(_B64):
        return
    for i, m in enumerate(_FIND_BLOB.finditer(text)):
        if i >= 8:
            return
        blob = m.group()
        try:
            raw = bytes.fromhex(blob) if len(blob) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in blob) \
                else base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (ValueError, binascii.Error):
            continue
        decoded = raw.decode("utf-8", "replace")
        if decoded.isprintable():
            yield decoded


def _best(views: list[str], work: Work | None = None) -> tuple[float, tuple[int, int] | None]:
    results = [_signals(v, work) for v in views]
    return max(results, key=lambda r: r[0])


def score(text: str, work: Work | None = None) -> tuple[float, tuple[int, int] | None]:
    """The injection score of one text (at most ``WINDOW`` characters) and where its strongest signal is."""
    if not _gate(text):
        return 0.0, None
    views, bonus = _views(text)
    total, span = _best(views, work)
    for decoded in _decoded(text):
        inner, _ = _best(_views(decoded)[0], work)
        if inner > 0:
            total += inner
            span = span or (0, 1)
    if span is None:
        return 0.0, None
    return total + bonus, span


class _Spent(Exception):
    """The request's budget for signal patterns is spent."""


class Work:
    """What the injection scans of one request have done: the texts and windows already decided (a text
    repeated, in one string or across the messages of a request, is scored once), and until when (CPU
    time of the scanning thread) signal patterns may still run: ``BUDGET`` seconds from the first."""

    __slots__ = ("budget", "decided", "until")

    def __init__(self, budget: float | None = None) -> None:
        self.budget = BUDGET if budget is None else budget
        self.until: float | None = None
        self.decided: dict[str, bool] = {}

    def spent(self) -> bool:
        now = time.thread_time()
        if self.until is None:
            self.until = now + self.budget
        return now >= self.until

    def check(self) -> None:
        if self.spent():
            raise _Spent


# Order in which a decision tries the signals: the heaviest first, so it is decided early
_BY_NAME: dict[str, list[Signal]] = {}
for _feature in FEATURES:
    _BY_NAME.setdefault(_feature.name, []).append(_feature)
_HEAVIEST = sorted(_BY_NAME.items(), key=lambda item: -item[1][0].weight)


def _triggered(signal: Signal, words: set[str]) -> bool:
    return not any(group.isdisjoint(words) for group in signal.needs)


def _reaches(view: str, need: float, work: Work) -> bool:
    """Does the signal score of ``view`` reach ``need`` (> 0)? The same sum as ``_signals``, but the heaviest
    signals first, stopping as soon as the answer is known: when the signals left can not make up the
    difference, or when the talk-about-attacks signals could not take enough away."""
    words = _words(view)
    names = [(parts[0].weight, [p for p in parts if _triggered(p, words)]) for _, parts in _HEAVIEST]
    names = [(weight, parts) for weight, parts in names if parts]
    left = sum(weight for weight, _ in names)
    if left < need:
        return False
    negatives = [signal for signal in NEGATIVES if _triggered(signal, words)]
    floor = sum(signal.weight for signal in negatives)
    found = 0.0
    for weight, parts in names:
        for part in parts:
            work.check()
            if part.search(view) is not None:
                found += weight
                break
        left -= weight
        if found + floor >= need:
            return True
        if found + left < need:
            return False
    for signal in negatives:
        work.check()
        if signal.search(view) is not None:
            found += signal.weight
    return found >= need


def _flagged(text: str, work: Work) -> bool:
    """``score(text)[0] >= THRESHOLD``, decided with as little pattern work as the answer needs. With the
    budget spent, a text that would need pattern work is flagged without it."""
    if not _gate(text):
        return False
    views, bonus = _views(text)
    if work.spent():
        low = text.lower()
        return _could_reach(views, THRESHOLD - bonus) or "rot13" in low or "rot-13" in low \
            or _BLOB_SHAPE in text.encode().translate(_B64)
    try:
        inner = 0.0
        for decoded in _decoded(text):
            value, _ = _best(_views(decoded)[0], work)
            inner += max(value, 0.0)
        need = THRESHOLD - bonus - inner
        if need <= 0:  # flagged if any signal is found: the full score says (rare: heavy obfuscation)
            return score(text, work)[0] >= THRESHOLD
        return any(_reaches(view, need, work) for view in views)
    except _Spent:
        return True


def _could_reach(views: list[str], need: float) -> bool:
    """Could the signals a view triggers add up to ``need``? (No pattern is run.)"""
    for view in views:
        words = _words(view)
        if sum(parts[0].weight for _, parts in _HEAVIEST if any(_triggered(p, words) for p in parts)) >= need:
            return True
    return False


def detect(text: str, work: Work | None = None, view: View | None = None) -> tuple[int, int] | None:
    """Where the text looks like an injection attempt (its strongest signal), or None.

    ``work`` is shared by the texts of one request (each window or text is decided once), and bounds the
    time its signal patterns take: ``BUDGET`` seconds of CPU. A typical request needs microseconds, a
    4 MB document a few dozen milliseconds; only megabytes dense with the vocabulary of attacks (source
    code of an LLM framework, crafted text) need more. Once the budget is spent, every further text or
    window whose signals could still add up to the threshold is flagged without reading it: the scan
    ends, and it does not end in a pass (so padding an attack with decoys does not hide it).
    """
    if len(text) <= WINDOW:
        if not _gate(text):  # most texts: decided in microseconds, nothing worth remembering
            return None
        work = work if work is not None else Work()
        return _clip(_span(text, work), len(text)) if _decide(text, work) else None
    work = work if work is not None else Work()
    for start in _candidate_windows(text, view):
        window = text[start:start + WINDOW]
        if _decide(window, work):
            clipped = _clip(_span(window, work), len(window))
            return (start + clipped[0], start + clipped[1])
    return None


def _decide(text: str, work: Work) -> bool:
    flagged = work.decided.get(text)
    if flagged is None:
        flagged = work.decided[text] = _flagged(text, work)
    return flagged


def _span(text: str, work: Work) -> tuple[int, int] | None:
    """Where the strongest signal of a flagged text is (None: the budget ran out before it was read)."""
    try:
        total, span = score(text, work)
    except _Spent:
        return None
    return span if total >= THRESHOLD else None


_STEP = WINDOW - _OVERLAP  # windows overlap: a signal across an edge is whole in one of them


def _candidate_windows(text: str, view: View | None = None) -> list[int]:
    """The starts of the windows of a long text worth scoring: those with a strong stem, a spoofed marker,
    spaced-out letters or an encoded blob. Technical documents are full of "system", "mode" and "rule":
    scoring every window of a 4 MB manual would cost a second. Found in one pass over the bytes with
    numpy (~10 ms for 4 MB): every 4-byte sequence hashed and looked up, so twelve stems cost one
    lookup, not twelve substring searches; runs of letters and spaces and of base64 by array shifts."""
    if text.isascii():
        raw = text.encode().lower()
    elif "\u0130" in text or "\u212a" in text:  # the two characters whose lower case is (partly) ASCII
        return _candidate_windows_by_search(text)
    else:  # every other character lower-cases to a non-ASCII one: a "?" of its own keeps the offsets
        raw = text.encode("ascii", "replace").lower()
    import numpy as np

    tables = _stem_tables()
    codes = np.frombuffer(raw, dtype=np.uint8)
    windows: set[int] = set()
    counted = view.counted_pairs() if view is not None else None
    stems = _LONG_STEMS if counted is None else [stem for stem in _LONG_STEMS if _pairs_in(stem, counted)]
    if len(stems) > 2:
        for found in _stems_in(raw, codes, tables):
            _add_firsts(windows, found, len(text))
    else:  # another detector counted the text's pairs of characters: stems without them are not there
        for stem in stems:
            found = []
            i = raw.find(stem.encode())
            while i >= 0:
                found.append(i)
                i = raw.find(stem.encode(), (i // _STEP + 1) * _STEP)
            _add_firsts(windows, [np.array(found, dtype=np.int64)], len(text))
    for mark in _LONG_MARKS:  # each needs a rare character: a memchr first
        if mark[0] in text and mark.encode() in raw:
            found = []
            i = raw.find(mark.encode())
            while i >= 0:
                found.append(i)
                i = raw.find(mark.encode(), (i // _STEP + 1) * _STEP)
            _add_firsts(windows, [np.array(found, dtype=np.int64)], len(text))
    if text.isascii():  # character shapes (offsets are byte offsets, the same only for ASCII)
        kind = np.take(tables.kind, codes)
        letter = kind == 1
        pair = letter[:-1] & (kind[1:] == 2)  # a letter, then a space
        four = pair[:-2] & pair[2:]
        four = four[:-4] & four[4:]
        size = max(codes.size - 10, 0)
        _add_firsts(windows, four[:size] & pair[8:8 + size] & letter[10:10 + size], len(text))  # a a a a a a
        run = kind != 0
        run &= kind != 2
        for width in (1, 2, 4, 8):  # sixteen base64 characters in a row
            run = run[:-width] & run[width:]
        _add_firsts(windows, run, len(text))
    return sorted(k * _STEP for k in windows)


def _pairs_in(stem: str, counted: Any) -> bool:
    """Does the text have every pair of adjacent letters of ``stem``, in either case?"""
    for a, b in pairwise(stem):
        if not any(counted[ord(x) | ord(y) << 8] for x in (a, a.upper()) for y in (b, b.upper())):
            return False
    return True


def _add_firsts(windows: set[int], found: Any, length: int) -> None:
    """Add the windows where something was found, as ``add`` does in ``_candidate_windows_by_search``: the
    first find in a window also adds the next window when it is near the end. ``found``: a mask of the
    positions, or lists of sorted positions."""
    import numpy as np

    count = (length + _STEP - 1) // _STEP
    if isinstance(found, np.ndarray):  # a mask
        whole = found.size // _STEP * _STEP
        grid = found[:whole].reshape(-1, _STEP)
        ks = np.flatnonzero(grid.any(axis=1))
        firsts = grid[ks].argmax(axis=1)
        tail = found[whole:]
        if tail.any():
            ks, firsts = np.append(ks, whole // _STEP), np.append(firsts, tail.argmax())
    else:  # for each window, the first of each list that falls in it
        starts = np.arange(count, dtype=np.int64) * _STEP
        first = np.full(count, np.iinfo(np.int64).max)
        for positions in found:
            if positions.size:
                at = np.minimum(np.searchsorted(positions, starts), positions.size - 1)
                first = np.minimum(first, np.where(positions[at] >= starts, positions[at], first))
        ks = np.flatnonzero(first < starts + _STEP)
        firsts = first[ks] - starts[ks]
    windows.update(ks.tolist())
    near = (firsts > _STEP - 256) & ((ks + 1) * _STEP < length - _OVERLAP)
    windows.update((ks[near] + 1).tolist())


@dataclass(frozen=True)
class _StemTables:
    buckets: Any  # uint16 per 16-bit hash of four bytes: which stems start with four bytes of that hash
    firsts: Any  # uint32 per stem: its first four bytes, little-endian
    kind: Any  # uint8 per byte: 1 an ASCII letter, 2 a space, 3 another base64 character (digit, + or /), 0 other


_HASH = 3147205187  # a multiplicative hash, picked for few collisions with English text and code


@cache
def _stem_tables() -> _StemTables:
    import numpy as np

    firsts = np.array([int.from_bytes(stem[:4].encode(), "little") for stem in _LONG_STEMS], dtype=np.uint32)
    buckets = np.zeros(1 << 16, dtype=np.uint16)
    for i, value in enumerate(((firsts.astype(np.uint64) * _HASH) >> 16 & 0xFFFF).tolist()):
        buckets[value] |= 1 << i
    kind = np.array([1 if chr(c).isalpha() and c < 128 else 2 if c == 32 else 3 if (chr(c).isalnum() and c < 128)
                     or c in b"+/" else 0 for c in range(256)], dtype=np.uint8)
    return _StemTables(buckets, firsts, kind)


def _stems_in(raw: bytes, codes: Any, tables: _StemTables) -> Iterable[list[Any]]:
    """For each stem found in ``raw``, where it starts: four sorted arrays (one per offset of the 4-byte
    sequences hashed)."""
    import numpy as np

    hits: list[tuple[Any, Any]] = []
    for offset in range(4):
        count = (len(raw) - offset) // 4
        if count > 0:
            quads = np.frombuffer(raw, dtype="<u4", count=count, offset=offset)
            bucket = np.take(tables.buckets, (quads * np.uint32(_HASH)) >> np.uint32(16))
            at = np.flatnonzero(bucket)
            hits.append((at * 4 + offset, bucket[at]))
    for i, stem in enumerate(_LONG_STEMS):
        found = []
        for where, which in hits:
            at = where[which & (1 << i) != 0]
            at = at[at + len(stem) <= codes.size]
            for j, byte in enumerate(stem.encode()):
                if not at.size:
                    break
                at = at[codes[at + j] == byte]
            found.append(at)
        if any(at.size for at in found):
            yield found


def _candidate_windows_by_search(text: str) -> list[int]:
    """``_candidate_windows`` by one substring search per stem (for the rare text whose lower case changes
    length or turns a non-ASCII character into an ASCII one)."""
    low = text.lower()
    windows: set[int] = set()

    def add(haystack: str, needle: str) -> None:
        i = haystack.find(needle)
        while i >= 0:
            k = i // _STEP
            windows.add(k)
            if i % _STEP > _STEP - 256 and (k + 1) * _STEP < len(text) - _OVERLAP:
                windows.add(k + 1)  # near the edge: the signal may end in the next window
            i = haystack.find(needle, (k + 1) * _STEP)

    for stem in _LONG_STEMS:
        if stem in low:
            add(low, stem)
    for mark in _LONG_MARKS:
        if mark[0] in low and mark in low:
            add(low, mark)
    return sorted(k * _STEP for k in windows)


def _clip(span: tuple[int, int] | None, length: int) -> tuple[int, int]:
    """A span inside the text (the folded view can be shorter than the text; the span is a pointer, not a cut)."""
    if span is None:
        return (0, min(length, 1))
    start = min(span[0], max(length - 1, 0))
    return (start, max(start + 1, min(span[1], length)))
