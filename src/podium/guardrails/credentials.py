"""Secrets: API keys, tokens and private keys, by the prefixes their issuers give them.

Why this shape: every pattern starts with a literal (``sk-``, ``ghp_``, ``-----BEGIN``…), so the
regex engine jumps from one occurrence of that literal to the next instead of trying every
position, and a text without the literal costs one substring search. The character before the
literal is checked by a look-behind placed *after* it (``sk-(?<![\\w-]sk-)``): a look-behind first
would make the engine try every position again. Every repetition is bounded and possessive, so
no input can make a pattern backtrack: each attempt costs at most its bound.

And in a long text, a pattern runs only if every character of its literal is there (memchr, the
rarest first) and every pair of adjacent characters of it too (pairs counted once with numpy);
the password and key assignments only if some ``:`` or ``=`` is followed by a value. A key that
needs a run of token characters checks that first, so 4 MB of ``sk-proj `` cost one cheap look
ahead at each ``sk-``.

Publishable keys (Stripe ``pk_live_``/``pk_test_``) are not secrets: they are meant to be shipped
in web pages. Stripe ``sk_test_`` keys are: they read and write the account's test data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise

from podium.guardrails.view import View

_TOKEN = r"[A-Za-z0-9_-]"  # base64url, the alphabet of most tokens


def _before(literal: str, chars: str = "A-Za-z0-9_-") -> str:
    """A look-behind, to put right after ``literal``: the literal is not glued to a longer word."""
    return f"(?<![{chars}]{re.escape(literal)})"


def _mixed(value: str) -> bool:
    """Random tokens mix cases and digits; words joined by dashes (``sk-learn-pipeline-…``) do not."""
    return any(c.isdigit() for c in value) or (any(c.isupper() for c in value) and any(c.islower() for c in value))


@dataclass(frozen=True)
class Pattern:
    """One regex: each named group that takes part in a match is a kind of secret (``m.lastgroup``)."""

    gate: str  # a literal every match contains: no literal, no regex run
    regex: re.Pattern[str]
    kinds: dict[str, tuple[str, Callable[[str], bool] | None]]  # group name → kind, and a check of the value
    back: int = 0  # the secret starts this many characters before the match (the literal's first letters)
    rare: frozenset[str] = frozenset()  # characters every match needs, checked first (memchr: ~100 times faster)
    letters: str = ""  # the gate's characters, the rarest first: each one looked for (memchr) before the gate
    simple: str | None = None  # the kind, if the pattern has one, no check, and starts where the secret does


_RARE = "_-JKz/"


def _p(gate: str, pattern: str, *kinds: tuple[str, str, Callable[[str], bool] | None],
       back: int = 0, needs: str = "") -> Pattern:
    rare = frozenset(ch for ch in _RARE if ch in gate + needs)
    letters = "".join(sorted(set(gate) - rare, key=_rarity))
    simple = kinds[0][1] if len(kinds) == 1 and kinds[0][2] is None and not back else None
    return Pattern(gate, re.compile(pattern), {group: (kind, check) for group, kind, check in kinds}, back, rare,
                   letters, simple)


_COMMON = "etaoinsrhldcumfpgwybvkxjqz"  # lower-case letters, the most common in text first (others: rarer still)


def _rarity(ch: str) -> int:
    return -_COMMON.find(ch) if ch in _COMMON else -len(_COMMON)


def _one(kind: str, gate: str, pattern: str, check: Callable[[str], bool] | None = None, needs: str = "") -> Pattern:
    return _p(gate, f"{pattern}(?P<k>)", ("k", kind, check), needs=needs)


PATTERNS: tuple[Pattern, ...] = (
    # Anthropic, OpenAI (sk-proj-, sk-svcacct-, sk-admin-, and the older sk- + 48 letters and digits) and
    # Podium's own virtual keys ("pk-" + secrets.token_urlsafe(32): 43 characters): one pass over "k-"
    _p("k-", r"k-(?:"
             rf"(?<=sk-){_before('sk-')}(?={_TOKEN}{{20}})"  # (what every key below has: a cheap first cut)
             rf"(?:ant-{_TOKEN}{{20,300}}+(?P<anthropic>)"
             rf"|(?:proj|svcacct|admin)-{_TOKEN}{{20,300}}+(?P<openai>)"
             r"|[A-Za-z0-9]{20,300}+(?![A-Za-z0-9_-])(?P<openai_legacy>))"
             rf"|(?<=pk-){_before('pk-')}{_TOKEN}{{43}}(?![A-Za-z0-9_-])(?P<podium>))",
       ("anthropic", "anthropic_key", None), ("openai", "openai_key", None),
       ("openai_legacy", "openai_key", _mixed), ("podium", "podium_key", _mixed), back=1),
    # Stripe secret and restricted keys, live and test (publishable pk_ keys are public by design)
    _p("k_", r"k_(?<=[sr]k_)(?<![A-Za-z0-9_-][sr]k_)(?:live|test)_[A-Za-z0-9]{10,250}+(?P<k>)",
       ("k", "stripe_key", None), back=1),
    _one("stripe_webhook_secret", "whsec_", rf"whsec_{_before('whsec_')}[A-Za-z0-9+/=]{{24,250}}+"),
    # bot, user, app, refresh, session and config tokens; app-level tokens; rotating (xoxe.xoxp-) tokens
    _one("slack_token", "xox", rf"xox{_before('xox', 'A-Za-z0-9_.-')}(?=[A-Za-z0-9.-]{{12}})"
                               r"(?:e\.xox)?[abeoprs]-[A-Za-z0-9-]{10,250}+",
         needs="-"),
    _one("slack_token", "xapp-", rf"xapp-{_before('xapp-')}[0-9]-[A-Za-z0-9-]{{10,250}}+"),
    _one("slack_webhook", "hooks.slack.com/",
         r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,250}+"),
    _one("huggingface_token", "hf_", rf"hf_{_before('hf_')}[A-Za-z0-9]{{30,100}}+(?![A-Za-z0-9_-])", _mixed),
    _one("github_token", "gh", rf"gh{_before('gh')}[pousr]_[A-Za-z0-9]{{36,255}}+(?![A-Za-z0-9_])", needs="_"),
    _one("github_token", "github_pat_", rf"github_pat_{_before('github_pat_')}[A-Za-z0-9_]{{50,255}}+"),
    _one("gitlab_token", "gl", rf"gl{_before('gl')}(?:pat|dt|rt|ptt|soat|cbt|ft|imt)-[A-Za-z0-9_.-]{{20,255}}+",
         _mixed, needs="-"),
    _one("aws_access_key", "AKIA", rf"AKIA{_before('AKIA', 'A-Za-z0-9')}[0-9A-Z]{{16}}(?![A-Za-z0-9])"),
    _one("aws_access_key", "ASIA", rf"ASIA{_before('ASIA', 'A-Za-z0-9')}[0-9A-Z]{{16}}(?![A-Za-z0-9])"),
    _one("google_key", "AIza", rf"AIza{_before('AIza')}[0-9A-Za-z_-]{{35}}(?![A-Za-z0-9_-])"),
    # the whole block, header to footer (or as far as the key's characters go when the footer is missing)
    _one("private_key", "-----BEGIN ", r"-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
                                       r"(?:[A-Za-z0-9+/=:,. \t\r\n]{1,128}+|-(?!----)){0,4096}+"
                                       r"(?:-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----)?+"),
    _one("jwt", "eyJ", rf"eyJ{_before('eyJ')}{_TOKEN}{{8,4096}}+\.{_TOKEN}{{8,16384}}+\.{_TOKEN}{{8,4096}}+"),
)

_BY_RARE: dict[frozenset[str], tuple[Pattern, ...]] = {}


def _patterns_for(present: frozenset[str]) -> tuple[Pattern, ...]:
    """The patterns whose rare characters are all in the text (64 combinations at most: cached)."""
    patterns = tuple(p for p in PATTERNS if p.rare <= present)
    _BY_RARE[present] = patterns
    return patterns


# "password = hunter2!", "api_key: 3f9a…": found in the lower-cased text (same offsets), the value only
_PASSWORD_WORDS = ("password", "passwd", "passphrase")
_CREDENTIAL_WORDS = ("secret", "api_key", "apikey", "api-key", "access_token", "auth_token", "private_key")
_GATES = ("pass", "secret", "api", "token", "private_key")  # one substring search covers several words
_VALUE = r"(?:[_-](?:key|token|value))?[\"'`]?[ \t]{0,3}[:=][ \t]{0,3}[\"'`]?(?P<value>[^\s\"'`,;<>(){}\[\]]{6,200}+)"
_ASSIGNMENTS = tuple((word, "password" if word in _PASSWORD_WORDS else "credential",
                      re.compile(re.escape(word) + _VALUE)) for word in _PASSWORD_WORDS + _CREDENTIAL_WORDS)
_PLACEHOLDER = re.compile(r"(?i)(?:x+|\*+|\.+|-+|<.*|\$.*|%.*|\{.*|\[.*|your.*|my.*|example.*|changeme.*|none"
                          r"|null|true|false|undefined|redacted|hidden|required|optional|string|os\.environ.*"
                          r"|process\.env.*|getenv.*|env\..*|settings\..*|config\..*)")


def _credential(value: str) -> bool:
    """A value worth hiding: not a placeholder, a variable, a plain word or a repeated character."""
    if value.isalpha() or len(set(value)) < 4:
        return False
    return _PLACEHOLDER.fullmatch(value) is None


def scan(text: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of every secret in ``text``."""
    return iter(found(text))


def found(text: str, prefix: str = "", view: View | None = None) -> list[tuple[str, int, int]]:
    """(prefix + kind, start, end) of every secret in ``text``: one pattern after the other (each one's
    findings in order), then the assignments. ``view``: the text's bytes, if another detector has them."""
    out: list[tuple[str, int, int]] = []
    pairs = None
    if len(text) >= _PAIRS_AT:  # (a short text: a search costs next to nothing)
        pairs = _Pairs(view if view is not None else View(text))
    present = frozenset(ch for ch in _RARE if ch in text)
    for pattern in _BY_RARE.get(present) or _patterns_for(present):
        if pairs is not None and not (all(ch in text for ch in pattern.letters) and pairs.may_hold(pattern.gate)):
            continue
        if pattern.gate in text:
            if pattern.simple is not None:  # most patterns: one kind, no check
                kind = prefix + pattern.simple
                out += [(kind, *m.span()) for m in pattern.regex.finditer(text)]
                continue
            for m in pattern.regex.finditer(text):
                kind, check = pattern.kinds[m.lastgroup or ""]
                start = m.start() - pattern.back
                if check is None or check(text[start:m.end()]):
                    out.append((prefix + kind, start, m.end()))
    out += [(prefix + kind, start, end) for kind, start, end in _assignments(text, pairs)]
    return out


class _Pairs:
    """Which pairs of adjacent characters a long text holds, worked out once (numpy: ~6 ms for 4 MB, where
    one substring search costs ~2 ms): a gate with a pair the text lacks is not searched for."""

    def __init__(self, view: View) -> None:
        self.view = view
        text = view.text
        self.useless = not text.isascii() and ("\u0130" in text or "\u212a" in text)

    def may_hold(self, gate: str, fold: bool = False) -> bool:
        """False if ``gate`` (in any case, if ``fold``) is surely not in the text."""
        if self.useless:
            return True
        table = self.view.pairs()
        for a, b in pairwise(gate):
            cases = {(x, y) for x in {a, a.upper()} if fold or x == a for y in {b, b.upper()} if fold or y == b}
            if not any(table[ord(x) | ord(y) << 8] for x, y in cases):
                return False
        return True


_PAIRS_AT = 1 << 16
# ":" or "=" -> "=", space or tab -> " ", a quote -> "q", what a value may hold -> "v" (any non-ASCII character:
# "?"), anything else -> "x"; and what every assignment has: =, at most three spaces, a quote maybe, six of "v"
_VALUES = bytes.maketrans(bytes(range(256)), bytes(
    ord("=") if c in b":=" else 32 if c in b" \t" else ord("q") if c in b"\"'`" else ord("x")
    if chr(c).isspace() or c in b",;<>(){}[]" else ord("v") for c in range(256)))
_ASSIGNED = re.compile(rb"= {0,3}q?v{6}")


def _assignments(text: str, pairs: _Pairs | None) -> Iterator[tuple[str, int, int]]:
    if "=" not in text and ":" not in text:
        return
    maybe: tuple[str, ...] = _GATES
    if pairs is not None:
        if not any(ch in text for ch in "pPsStTaA"):  # what every word starts with (memchr: no letter, no lower())
            return
        maybe = tuple(gate for gate in _GATES if pairs.may_hold(gate, fold=True))
        if not maybe:
            return
        if _ASSIGNED.search(pairs.view.raw.translate(_VALUES)) is None:  # no ":" or "=" with a value after it
            return
    low = text.lower()
    if len(low) != len(text):  # a few non-ASCII letters change length when lower-cased: offsets would drift
        return
    gates = [gate for gate in maybe if gate in low]
    if not gates:
        return
    for word, kind, regex in _ASSIGNMENTS:
        if any(gate in word for gate in gates) and word in low:
            for m in regex.finditer(low):
                start, end = m.span("value")
                if _credential(text[start:end]):
                    yield kind, start, end
