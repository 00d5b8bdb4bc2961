"""The detectors one by one: what they must find, the near misses they must not, and that no input is slow."""

import time
import unicodedata

import pytest

from podium.guardrails.detect import find, redact, scan
from podium.guardrails.normalize import normalise


def kinds(text: str) -> list[str]:
    return [f.kind for f in scan(text)[1]]


def found(text: str) -> list[tuple[str, str]]:
    normalised, findings = scan(text)
    return [(f.kind, normalised[f.start:f.end]) for f in findings]


TOKEN36 = "a1B2c3D4e5F6g7H8i9J0" + "kLmNoPqRsTuVwXyZ"  # 36 mixed characters, like a real token
SECRETS = [
    ("openai_key", "sk-proj-" + TOKEN36),
    ("openai_key", "sk-svcacct-" + TOKEN36),
    ("openai_key", "sk-" + "T3BlbkFJ" + TOKEN36[:40]),
    ("anthropic_key", "sk-ant-api03-" + TOKEN36),
    ("stripe_key", "sk_live_" + TOKEN36[:24]),
    ("stripe_key", "sk_test_" + TOKEN36[:24]),
    ("stripe_key", "rk_live_" + TOKEN36[:24]),
    ("stripe_webhook_secret", "whsec_" + TOKEN36[:32]),
    ("slack_token", "xoxb-123456789012-1234567890123-" + TOKEN36[:24]),
    ("slack_token", "xoxp-123456789012-1234567890123-1234567890123-" + TOKEN36[:32]),
    ("slack_token", "xoxa-2-123456789012-" + TOKEN36[:24]),
    ("slack_token", "xoxr-123456789012-" + TOKEN36[:24]),
    ("slack_token", "xoxs-123456789012-" + TOKEN36[:24]),
    ("slack_token", "xapp-1-A0123456789-1234567890123-" + TOKEN36),
    ("slack_webhook", "https://hooks.slack.com/services/T00000000/B00000000/" + TOKEN36[:24]),
    ("huggingface_token", "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"),
    ("podium_key", "pk-" + TOKEN36 + "AbC-_d1"),  # "pk-" + secrets.token_urlsafe(32): 43 characters
    ("github_token", "ghp_" + TOKEN36),
    ("github_token", "github_pat_11ABCDEFG0" + TOKEN36[:12] + "_" + TOKEN36 + TOKEN36[:23]),
    ("gitlab_token", "glpat-" + TOKEN36[:20]),
    ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
    ("google_key", "AIza" + "SyA1234567890abcdefghijklmnopqrstuv"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n"
                    "-----END OPENSSH PRIVATE KEY-----"),
]


@pytest.mark.parametrize(("kind", "secret"), SECRETS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(SECRETS)])
def test_each_secret_format_is_found_whole(kind, secret):
    whole = secret.removeprefix("https://")  # a webhook's secret is its path
    assert found(f"here it is: {secret} (keep it safe)") == [(f"secret:{kind}", whole)]
    assert secret not in redact(f"x {secret} y", find(f"x {secret} y"))


@pytest.mark.parametrize("text", [
    "pk_live_" + TOKEN36[:24],  # Stripe publishable key: public by design
    "pk_test_" + TOKEN36[:24],
    "sk-learn-pipeline-transformers-module",  # words joined by dashes, not a key
    "the risk-assessment-for-the-quarterly-planning-cycle",
    "sk-abcdefghijklmnopqrstuvwxyz",  # no digit, one case: a name, not a random key
    "hf_transfer_enabled_for_large_models",
    "hf_abcdefghijklmnopqrstuvwxyzabcdefgh",
    "pk-" + TOKEN36,  # too short for a virtual key
    "xsk_live_" + TOKEN36[:24],  # glued to a word
    "ghp_short", "github_pat_short", "glpat-abc", "sk-ant-short", "whsec_short", "xoxb-12", "xapp-1-short",
    "AKIA1234", "ASIA PACIFIC REGION REPORT 2024", "AIzaShort",
    "eyJ-not-a-token",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "password: ${DB_PASSWORD}", "Password: ********", "password = os.environ['PASSWORD']", "the password is secret",
    "api_key: YOUR_API_KEY", "api_key=<your key here>",
])
def test_secret_near_misses_are_not_secrets(text):
    assert not [k for k in kinds(text) if k.startswith("secret:")]


def test_credential_assignments_redact_the_value_only():
    assert found("db: password=Sommer2024! host=db") == [("secret:password", "Sommer2024!")]
    assert found('{"api_key": "3f9a8b7c6d5e4f"}') == [("secret:credential", "3f9a8b7c6d5e4f")]


@pytest.mark.parametrize(("text", "value"), [
    ("Call +49 30 1234 5678 now", "+49 30 1234 5678"),
    ("call (555) 123-4567 today", "(555) 123-4567"),
    ("call 555-123-4567.", "555-123-4567"),
    ("+1 (555) 123-4567", "+1 (555) 123-4567"),
    ("Tel. 06 12 34 56 78", "06 12 34 56 78"),
    ("+33 6 12 34 56 78", "+33 6 12 34 56 78"),
    ("+44 7911 123456", "+44 7911 123456"),
    ("+4930123456", "+4930123456"),
    ("Handy 01711234567", "01711234567"),
    ("+41 44 668 18 00", "+41 44 668 18 00"),
])
def test_phone_numbers(text, value):
    assert found(text) == [("phone", value)]


@pytest.mark.parametrize("text", [
    "2024-05-01 10:30:00", "logged at 2024-05-01T10:30:00Z by cron", "at 10:30:00 on 01.05.2024", "1/5/2024 10:30",
    "version 10.0.19041.1234", "v1.22.333", "192.168.100.200", "ts 1714559400", "order 1234567890123456",
    "1234-5678-9012-3456-7890", "12345678-1234-1234-1234-123456789012", "550e8400-e29b-41d4-a716-446655440000",
    "room 12, floor 3, 2024", "1,234,567,890 users", "ISBN 978-3-16-148410-0",
])
def test_dates_times_versions_and_ids_are_not_phone_numbers(text):
    assert "phone" not in kinds(text)


def test_slack_token_digits_are_not_a_phone_number():
    assert kinds("token xoxb-123456789012-1234567890123-" + TOKEN36[:24]) == ["secret:slack_token"]
    assert kinds("xoxb-123456789012-1234567890123-" + TOKEN36[:24]) == ["secret:slack_token"]


def test_cards_ibans_and_emails():
    assert found("Card 4111 1111 1111 1111, ok") == [("card", "4111 1111 1111 1111")]
    assert found("amex 3782 822463 10005") == [("card", "3782 822463 10005")]
    assert found("pay 4111-1111-1111-1111") == [("card", "4111-1111-1111-1111")]
    assert not kinds("order 4111 1111 1111 1112 shipped")  # fails Luhn
    assert found("IBAN GB82 WEST 1234 5698 7654 32.") == [("iban", "GB82 WEST 1234 5698 7654 32")]
    assert found("DE89370400440532013000") == [("iban", "DE89370400440532013000")]
    assert not kinds("DE89 3704 0044 0532 0130 01")  # fails mod-97
    assert found("mail Jane_Doe+tag@mail.example.co.uk!") == [("email", "Jane_Doe+tag@mail.example.co.uk")]
    assert found("jane.doe@example.com.") == [("email", "jane.doe@example.com")]
    for near in ("x@localhost", "a@b.c", "@example.com", "user@@example", "see @someone on the forum"):
        assert not kinds(near)


def test_normalisation_defeats_invisible_and_full_width_disguises():
    key = "sk-proj-" + TOKEN36
    assert found("s\u200bk-proj-" + TOKEN36) == [("secret:openai_key", key)]
    assert found("".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in key)) == [("secret:openai_key", key)]
    assert found("jane\u00ad.doe@exam\u2060ple.com") == [("email", "jane.doe@example.com")]
    assert found("mail\ufeff jane@example.com") == [("email", "jane@example.com")]
    assert normalise("a\U000e0069\U000e0067\U000e006eb") == "aignb"  # tag characters: hidden ASCII made visible
    assert normalise("plain ascii\twith tab\nand newline") == "plain ascii\twith tab\nand newline"
    assert normalise("nul\x00byte") == "nulbyte"


def test_long_runs_of_combining_marks_are_cut_to_thirty():
    zalgo = "e" + "\u0301\u0316" * 50_000  # 100 KB: unicodedata sorts such a run quadratically
    start = time.perf_counter()
    out = normalise(zalgo + " " + "x" * 600)
    assert time.perf_counter() - start < 1.0
    assert len(out) < 700


def test_runs_of_characters_that_decompose_to_marks_are_cut_too():
    # U+0F73 and U+0344 are not marks themselves, but decompose to marks: 80 KB of them took minutes
    for text in ("a" + "\u0f73\u0344" * 40_000, "\u0f73" * 80_000, "x" * 600 + "\u0f73" * 300):
        start = time.perf_counter()
        out = normalise(text)
        assert time.perf_counter() - start < 1.0
        assert len(out) < 700


LONG_SAMPLES = [  # a long text takes the numpy road: what it returns is what unicodedata's NFKC returns
    "中文文本\uff0c测试。", "\uff53\uff4b\uff0d\uff50\uff52\uff4f\uff4a ", "Le café était très fréquenté\uff0c ",
    "আমি বাংলায় গান গাই। ", "मैं हिंदी में लिखता हूँ। ज़रूर ऩ ", "한국어 텍스트입니다 \u1100\u1161\u11a8 ",
    unicodedata.normalize("NFD", "Tiếng Việt có dấu "), "\ufef7\ufef8\ufe8d ", "中\u0301文 e\u0323\u0302 ",
    "ｶﾞｷﾞｸﾞ ﾊﾟ ", "Привет мир ", "\U0001d400\U0001d401 x \u00bd \ufb01 \u2126\u212b ", "\u00c5\u0323 a\u0301\u0323 ",
    "\u0b47\u0b3e \u09c7\u09be \u0cc6\u0cc2\u0cd5 ", "\u1e9b\u0323 \u0344 \u0f73 ", "\U0002f800 \U00020000 ",
]


@pytest.mark.parametrize("sample", LONG_SAMPLES)
def test_long_texts_normalise_as_unicodedata_does(sample):
    text = (sample * (1200 // len(sample) + 1))
    hidden = "\u200b".join(text[i:i + 97] for i in range(0, len(text), 97)) + "\U000e0041\U000e0001"
    assert normalise(text) == unicodedata.normalize("NFKC", text)
    assert normalise(hidden) == unicodedata.normalize("NFKC", text) + "A"
    assert normalise(text[:500]) == unicodedata.normalize("NFKC", text[:500])  # the short road agrees


def test_nfkc_leaves_every_code_point_above_plane_1_alone_but_the_compatibility_ideographs():
    """What the normaliser's table assumes (it covers planes 0 to 2)."""
    chars = "".join(chr(cp) for cp in range(0x20000, 0x110000) if not 0x2F800 <= cp <= 0x2FA1D)
    assert unicodedata.is_normalized("NFKD", chars) and unicodedata.is_normalized("NFKC", chars)
    assert not any(map(unicodedata.combining, chars))


N = 100_000
ADVERSARIAL = {
    "email": ["a" * N + "@", "a." * (N // 2) + "@", "a@" * (N // 2), "a.a@b." * (N // 6), "x@" + "a." * (N // 2),
              "@a-" * (N // 3), "a" * N + "@" + "b." * 100],
    "phone": ["1 " * (N // 2), "1-" * (N // 2), "12-" * (N // 3), "+1 " * (N // 3), "(1) " * (N // 4),
              "2024-05-01 10:30:00, " * (N // 21), "1" * N, "12 34 56, " * (N // 10)],
    "card": ["4111 " * (N // 5), "4 " * (N // 2), "4111-" * (N // 5)],
    "iban": ["DE89 3704 " * (N // 10), "DE89" * (N // 4), "AB12 " * (N // 5), "A" * N],
    "secret": ["sk-" * (N // 3), "sk-proj-" + "a" * N, "eyJ-" * (N // 4), "eyJaaaaaaaaaa." * (N // 14),
               "-----BEGIN PRIVATE KEY-----" * (N // 27), "-----BEGIN PRIVATE KEY-----" + "A-" * (N // 2),
               "xoxb-" + "1-" * (N // 2), "password=" * (N // 9), "ghp_" * (N // 4), "k-" * (N // 2)],
    "injection": ["ignore " * (N // 7), "ignore all previous " * (N // 20), "i g n o r e " * (N // 12),
                  "you are now " * (N // 12), "### system\n" * (N // 11)],
    "unicode": ["e" + "\u0301\u0316" * (N // 2), "\u200b" * N, "\uff53\uff4b\uff0d" * (N // 3)],
}


@pytest.mark.parametrize("detector", ADVERSARIAL)
def test_no_100kb_input_takes_long(detector):
    """Guards against the exponential and quadratic cases only: the bound is generous, not a benchmark."""
    for text in ADVERSARIAL[detector]:
        start = time.perf_counter()
        scan(text)
        elapsed = time.perf_counter() - start
        assert elapsed < 0.5, f"{detector}: {text[:20]!r}… took {elapsed:.2f} s"


def _long_texts():
    """Long texts (their prefilters at work) of dense near misses, each with one real value across a chunk edge."""
    items = ["+49 30 1234 5678", "4111 1111 1111 1111", "(555) 123-4567", "555-123-4567", "01711234567",
             "2024-05-01 10:30:00", "DE89 3704 0044 0532 0130 00", "jane.doe@example.com",
             "x@" + "a" * 60 + ("." + "b" * 60) * 7 + ".com", "sk-proj-" + TOKEN36, "password=abc123",
             "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"]
    fillers = ["(1) ", "12 34 56, ", "+1 ", "a@a@", "a-@-b.", "DE89 3704 ", "sk-proj ", "password=x ", "1 ",
               "The committee met. "]
    for filler in fillers:
        base = (filler * (40_000 // len(filler) + 1))[:40_000]
        for item in items:
            at = 16_384 - len(item) // 2  # across the edge of the first chunk
            yield base[:at] + " " + item + " " + base[at:]


def test_long_texts_find_what_the_plain_patterns_find(monkeypatch):
    """The skeletons and chunks of a long text only skip what can not match: the same findings as the
    patterns run over the whole text."""
    from podium.guardrails import credentials, pii
    from podium.guardrails.view import View

    for module in (credentials, pii):  # what waits for 64 KB (counting pairs of characters) at 4 KB already
        monkeypatch.setattr(module, "_PAIRS_AT", 4096)
    for text in _long_texts():
        numbers = [m.span() for m in pii._NUMBER.finditer(text) if m.lastgroup]
        assert pii._number_runs(text, View(text)) == pii._with_sign(text, numbers)
        assert pii._domains(text, None) == [m.span() for m in pii._DOMAIN.finditer(text)]
        assert list(pii.ibans(text)) == [m.span() for m in pii._IBAN.finditer(text)
                                         if m.lastgroup == "iban" and pii.iban_ok(m.group())]
        plain = []
        for pattern in credentials.PATTERNS:
            for m in pattern.regex.finditer(text):
                kind, check = pattern.kinds[m.lastgroup or ""]
                start = m.start() - pattern.back
                if check is None or check(text[start:m.end()]):
                    plain.append((kind, start, m.end()))
        low = text.lower()
        for _, kind, regex in credentials._ASSIGNMENTS:
            for m in regex.finditer(low):
                start, end = m.span("value")
                if credentials._credential(text[start:end]):
                    plain.append((kind, start, end))
        assert sorted(credentials.found(text)) == sorted(plain)
