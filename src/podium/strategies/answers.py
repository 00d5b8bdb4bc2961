"""The final answer in a model's reply, so strategies compare answers, not wording. Pure functions.

``extract(text)`` finds the answer a reply commits to and gives it a kind and a canonical key. The
forms it recognises, most explicit first (an explicit marker beats a guess from the reply's shape):

1. **empty** — nothing but whitespace (or markdown noise). An empty reply is never an answer: it
   agrees with nothing, not even another empty reply, so a vote or a cascade never accepts it.
2. **marked answers** — the *last* ``\\boxed{…}`` (LaTeX, MATH/GSM8K-style solutions), a GSM8K
   ``#### 42`` line, or an "Answer: X" / "The (final) answer is X" / "answer = X" phrase. What follows
   the marker is then read as one of the forms below (so ``Answer: **B**`` is the letter ``B``).
3. **option letters** (A to J, multiple choice) — the reply is only a letter with any punctuation or
   markdown around it (``B``, ``B.``, ``(B)``, ``**B**``, ``[b]``), or it opens with a letter that is
   closed by punctuation (``(B) because…``, ``B) Paris``, ``B. Paris``, ``B: Paris``), or it names an
   "option/choice B". A letter followed by a plain space is *not* an option: "A whale is a mammal."
   is text, not ``A`` (today's normalisation got this wrong and merged it with "A whale is a fish.").
4. **yes / no** — the reply's first word.
5. **numbers** — in a short reply (< 200 characters) that is little more than a number (at most two
   content words beside it and no negation: "42", "$42.", "42 apples", "It costs 42"), the last
   number, with thousands separators, currency signs, a trailing ``%`` or ``.0`` and simple
   fractions (``3/4``) made canonical: ``42``, ``42.0``, ``$42``, ``1,234`` and ``\\boxed{42}`` are
   one answer. Long replies are not reduced to their last number (a paragraph that mentions a year
   is not "the answer 2024").
6. **free text** — anything else: lower-cased, markdown and surrounding punctuation removed,
   whitespace collapsed.

``similarity(a, b)`` in [0, 1]: structured answers (letter, number, yes/no) agree exactly (1.0) or not
at all (0.0); an empty answer is 0.0 against anything; different kinds are 0.0; free text is 1.0 when
the keys are equal, else the cosine of *content-word* counts (stop words dropped, so word order and
"the/is/a" do not count, and the content words that differ do), and 0.0 when exactly one of the two
is negated ("is not", "never", "n't" …) — a lexical measure can't see that "not a fish" contradicts
"a fish", so polarity is checked explicitly. A caller with an embedding model can pass its own
``text_similarity`` for the free-text case (semantic vectors); structured answers never use it, as
"42" and "43" embed close together but are different answers.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Kind = Literal["empty", "letter", "number", "yesno", "text"]
TextSimilarity = Callable[[str, str], float]

LETTERS = "A-J"
_BOXED = re.compile(r"\\boxed\s*\{")
_HASHES = re.compile(r"^\s*####\s*(.+?)\s*$", re.M)
_MARKED = re.compile(r"(?:final\s+answer|answer)\s*(?:is|was|would\s+be|:|=|-)\s*[:=]?\s*(.+)", re.I)
_ONLY_LETTER = re.compile(rf"^[\s*_`'\"(\[{{]*([{LETTERS}])[\s*_`'\")\]}}.,:;!]*$", re.I)
_OPENING_LETTER = re.compile(rf"^[\s*_`]*(?:\(([{LETTERS}])\)|([{LETTERS}])[).:])(?:\s|$|\*)", re.I)
_NAMED_LETTER = re.compile(rf"\b(?:option|choice)\s*[:\-]?\s*\(?\**([{LETTERS}])\b", re.I)
_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?")
_MARKUP = re.compile(r"[*_`#]+|\\\(|\\\)|\\\[|\\\]|\$")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP_WORDS = ("a an the is are was were be been being am of to in on at by for with as and or but so that this "
               "these those it its it's i you he she we they them his her their our your my me there here which who "
               "whom what do does did has have had will would shall should can could may might must than then also "
               "just very")
_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|neither|nor|cannot|without)\b|n't\b", re.I)
_STOP = frozenset(_STOP_WORDS.split())
SHORT = 200
NUMBER_WORDS = 2  # a short reply with more content words than this around its number is a claim, not a number
AGREE = 0.9  # free-text similarity at which two answers count as the same (vote groups, panels)


@dataclass(frozen=True)
class Answer:
    kind: Kind
    key: str  # canonical: "B", "42", "0.75", "yes", "a whale is a mammal"; "" when empty


def extract(text: str) -> Answer:
    """The answer ``text`` commits to (see the module docstring for the forms, in order)."""
    stripped = text.strip()
    if not _MARKUP.sub("", stripped).strip(" \t\n.,;:!?()[]{}'\""):
        return Answer("empty", "")
    if (marked := _marked(stripped)) is not None:
        inner = _shape(marked, short=True)
        if inner.kind != "empty":
            return inner
    return _shape(stripped, short=len(stripped) < SHORT)


def key(text: str) -> str:
    """The canonical key of ``text``'s answer ("" for an empty reply)."""
    return extract(text).key


def _marked(text: str) -> str | None:
    if boxes := _boxed(text):
        return boxes[-1]
    if hashes := _HASHES.findall(text):
        return str(hashes[-1])
    matches = list(_MARKED.finditer(text))
    if matches:
        return matches[-1].group(1).split("\n", 1)[0]
    return None


def _boxed(text: str) -> list[str]:
    """The contents of every ``\\boxed{…}``, braces balanced (``\\boxed{\\frac{1}{2}}``)."""
    found = []
    for match in _BOXED.finditer(text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                found.append(text[start:i])
                break
    return found


def _shape(text: str, short: bool) -> Answer:
    text = text.strip()
    if not _MARKUP.sub("", text).strip(" \t\n.,;:!?()[]{}'\""):
        return Answer("empty", "")
    if m := _ONLY_LETTER.match(text) or _OPENING_LETTER.match(text) or _NAMED_LETTER.search(text):
        return Answer("letter", next(g for g in m.groups() if g).upper())
    plain = _MARKUP.sub("", text).strip()
    first = re.split(r"[\s,.!;:]+", plain.lower(), maxsplit=1)[0]
    if first in {"yes", "no"}:
        return Answer("yesno", first)
    latex = re.sub(r"\\d?frac\{([^{}]+)\}\{([^{}]+)\}", r"\1/\2", text)
    if short and (numbers := _NUMBER.findall(latex)) and (value := _number(numbers[-1])) is not None \
            and _number_is_the_answer(latex):
        return Answer("number", value)
    words = " ".join(plain.lower().split())
    return Answer("text", re.sub(r"^[\s\"'(\[]+|[\s.!?,;:\"')\]]+$", "", words))


def _number_is_the_answer(text: str) -> bool:
    """Whether a short reply's number is its whole answer: at most ``NUMBER_WORDS`` content words
    besides the numbers and no negation ("42 apples", "It costs $42." — but not "Water does not boil
    at 100 °C" or "The train leaves at 9 in the evening", which are claims, compared as text)."""
    if negated(text):
        return False
    rest = _content(_NUMBER.sub(" ", text))
    return sum(rest.values()) <= NUMBER_WORDS


def _number(raw: str) -> str | None:
    value = raw.replace(",", "").replace("$", "").replace(" ", "")
    try:
        number = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return None
    if number.denominator == 1:
        return str(number.numerator)
    return f"{float(number):.10g}"


def _content(text: str) -> Counter[str]:
    return Counter(w for w in _WORD.findall(text.lower()) if w not in _STOP)


def negated(text: str) -> bool:
    """Whether ``text`` says "not" in any of the usual ways ("not", "never", "n't", "none" …)."""
    return bool(_NEGATION.search(text))


def content_similarity(a: str, b: str) -> float:
    """Cosine of content-word counts, 0.0 when exactly one side is negated; identical texts score 1."""
    if negated(a) != negated(b):
        return 0.0
    ca, cb = _content(a), _content(b)
    if not ca or not cb:
        return 1.0 if a == b else 0.0
    dot = sum(ca[w] * cb[w] for w in ca.keys() & cb.keys())
    return dot / (math.sqrt(sum(v * v for v in ca.values())) * math.sqrt(sum(v * v for v in cb.values())))


def similarity(a: str | Answer, b: str | Answer, text_similarity: TextSimilarity | None = None) -> float:
    """How far two replies give the same answer, in [0, 1] (rules in the module docstring)."""
    x = a if isinstance(a, Answer) else extract(a)
    y = b if isinstance(b, Answer) else extract(b)
    if x.kind == "empty" or y.kind == "empty" or x.kind != y.kind:
        return 0.0
    if x.key == y.key:
        return 1.0
    if x.kind != "text":
        return 0.0
    return max(0.0, min(1.0, (text_similarity or content_similarity)(x.key, y.key)))


def agree(a: str | Answer, b: str | Answer, threshold: float = AGREE,
          text_similarity: TextSimilarity | None = None) -> bool:
    """Whether two replies give the same answer: ``similarity`` at or above ``threshold``."""
    return similarity(a, b, text_similarity) >= threshold
