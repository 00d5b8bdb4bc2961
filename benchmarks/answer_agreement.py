"""Free-text answer agreement: where MiniLM's cosine separates "same answer" from "different answer".

    .venv/bin/python benchmarks/answer_agreement.py

Generated pairs of short free-text answers, four kinds:

- **paraphrase** — the same claim worded differently ("A whale is a mammal." / "Whales are mammals.");
- **contradiction** — the same frame, a different claim ("A whale is a mammal." / "A whale is a fish.");
- **negation** — the claim and its denial ("A whale is a mammal." / "A whale is not a mammal.");
- **unrelated** — answers to different questions.

It prints each kind's cosine range under all-MiniLM-L6-v2 and under the content-word measure, picks the
cosine threshold with the best balanced accuracy between paraphrases and contradictions (the pairs are
held-in: the threshold is tuned on them, so the accuracy printed is optimistic), and lists the pairs on
the wrong side. Negations are scored twice: raw cosine (what MiniLM sees) and with the polarity rule
``semantic.AnswerEmbedder`` applies (exactly one side negated → 0). ``COSINE_AGREE`` in
``podium/strategies/semantic.py`` is this script's threshold, rounded.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np

from podium.providers.local import minilm
from podium.strategies.answers import AGREE, extract, negated, similarity
from podium.strategies.semantic import COSINE_AGREE, AnswerEmbedder, text_similarity

# (claim, paraphrase, contradiction, negation)
FACTS = [
    ("A whale is a mammal.", "Whales are mammals.", "A whale is a fish.", "A whale is not a mammal."),
    ("The capital of France is Paris.", "Paris is France's capital.", "The capital of France is Lyon.",
     "The capital of France is not Paris."),
    ("Water boils at 100 degrees Celsius at sea level.", "At sea level, water reaches its boiling point at 100 °C.",
     "Water boils at 50 degrees Celsius at sea level.", "Water does not boil at 100 degrees Celsius at sea level."),
    ("The function returns a sorted copy of the list.", "It gives back a new list, sorted.",
     "The function sorts the list in place and returns nothing.", "The function does not return a sorted copy."),
    ("Shakespeare wrote Hamlet.", "Hamlet was written by Shakespeare.", "Marlowe wrote Hamlet.",
     "Shakespeare did not write Hamlet."),
    ("The Earth orbits the Sun.", "Our planet goes around the Sun.", "The Sun orbits the Earth.",
     "The Earth does not orbit the Sun."),
    ("Use a hash map for constant-time lookups.", "A dictionary gives O(1) average lookup time.",
     "Use a linked list for constant-time lookups.", "Don't use a hash map for constant-time lookups."),
    ("The meeting is on Tuesday.", "We meet on Tuesday.", "The meeting is on Friday.",
     "The meeting is not on Tuesday."),
    ("Python lists are mutable.", "You can change a Python list after creating it.", "Python lists are immutable.",
     "Python lists are not mutable."),
    ("The patient should rest and drink fluids.", "Rest and plenty of fluids are recommended for the patient.",
     "The patient should exercise hard and avoid fluids.", "The patient should not rest."),
    ("Tokyo is the largest city in Japan.", "Japan's biggest city is Tokyo.", "Osaka is the largest city in Japan.",
     "Tokyo is not the largest city in Japan."),
    ("The bug is caused by an off-by-one error in the loop.", "An off-by-one mistake in the loop causes the bug.",
     "The bug is caused by a race condition between threads.", "The bug is not caused by the loop."),
    ("Light travels faster than sound.", "Sound is slower than light.", "Sound travels faster than light.",
     "Light does not travel faster than sound."),
    ("Einstein developed the theory of relativity.", "The theory of relativity was Einstein's work.",
     "Newton developed the theory of relativity.", "Einstein never developed the theory of relativity."),
    ("Gold is a good conductor of electricity.", "Electricity flows well through gold.",
     "Gold is an electrical insulator.", "Gold is not a good conductor of electricity."),
    ("The train leaves at 9 in the morning.", "Departure is at 9 a.m.", "The train leaves at 9 in the evening.",
     "The train does not leave in the morning."),
    ("Penguins cannot fly.", "Penguins are flightless birds.", "Penguins can fly long distances.",
     "Penguins can fly."),
    ("The answer is the mitochondria.", "It's the mitochondria.", "The answer is the nucleus.",
     "It is not the mitochondria."),
    ("Increase the timeout to 30 seconds.", "Set the timeout to 30 s.", "Decrease the timeout to 1 second.",
     "Do not change the timeout."),
    ("Vitamin C deficiency causes scurvy.", "Scurvy results from a lack of vitamin C.",
     "Vitamin D deficiency causes scurvy.", "Vitamin C deficiency does not cause scurvy."),
]


def pipeline_agreement(pairs: list[tuple[str, str]], embedder: AnswerEmbedder | None) -> list[bool]:
    """Whether each pair agrees the way a strategy decides it: answers extracted first (a number, a letter,
    yes/no are compared exactly), free text by ``embedder`` (content words without one), at ``AGREE``."""

    async def one(a: str, b: str) -> bool:
        said = [extract(a), extract(b)]
        function = await text_similarity(said, embedder, lambda _: None)
        return similarity(said[0], said[1], function) >= AGREE

    async def every() -> list[bool]:
        return [await one(a, b) for a, b in pairs]

    return asyncio.run(every())


def main() -> None:
    why = minilm.missing()
    if why is not None:
        sys.exit(f"MiniLM is not installed: {why}")
    model = minilm.load()
    pairs: dict[str, list[tuple[str, str]]] = {"paraphrase": [], "contradiction": [], "negation": [], "unrelated": []}
    for i, (claim, para, contradiction, denial) in enumerate(FACTS):
        pairs["paraphrase"].append((claim, para))
        pairs["contradiction"].append((claim, contradiction))
        pairs["negation"].append((claim, denial))
        pairs["unrelated"].append((claim, FACTS[(i + 7) % len(FACTS)][0]))
    texts = sorted({t for kind in pairs.values() for pair in kind for t in pair})
    vectors, _ = model.embed(texts)
    at = {t: vectors[i] for i, t in enumerate(texts)}
    cosine = {kind: np.array([float(at[a] @ at[b]) for a, b in ps]) for kind, ps in pairs.items()}

    print(f"{len(FACTS)} generated claims, 4 kinds of pair. Raw all-MiniLM-L6-v2 cosine of the two sentences:\n")
    print(f"{'kind':<14} {'min':>6} {'median':>7} {'max':>6}")
    for kind in pairs:
        values = cosine[kind]
        print(f"{kind:<14} {values.min():>6.3f} {np.median(values):>7.3f} {values.max():>6.3f}")
    same, contra = cosine["paraphrase"], cosine["contradiction"]
    raw_best = max(((same >= t).mean() + (contra < t).mean()) / 2 for t in np.unique(np.r_[same, contra]))
    print(f"raw cosine, paraphrase vs contradiction: best balanced accuracy at any threshold {raw_best:.0%} "
          "(50 % is chance)\n")

    def encode(batch: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in model.embed(batch)[0]]

    print("Through the strategies' comparison (answers extracted first; numbers compared exactly; polarity rule),")
    print(f"share of pairs that agree (>= AGREE {AGREE}):\n")
    print(f"{'measure':<26} {'paraphrase':>10} {'contradiction':>13} {'negation':>9} {'unrelated':>9} {'balanced':>9}")
    rows: list[tuple[float, float]] = []
    for label, embedder in [("content words (no model)", None)] + [
            (f"MiniLM, agree_at {t:.2f}", AnswerEmbedder(encode, agree_at=t)) for t in (0.7, 0.8, 0.85, 0.9, 0.95)]:
        share = {kind: float(np.mean(pipeline_agreement(ps, embedder))) for kind, ps in pairs.items()}
        balanced = (share["paraphrase"] + 1 - share["contradiction"]) / 2
        if embedder is not None:
            rows.append((embedder.agree_at, balanced))
        print(f"{label:<26} {share['paraphrase']:>10.0%} {share['contradiction']:>13.0%} {share['negation']:>9.0%} "
              f"{share['unrelated']:>9.0%} {balanced:>9.0%}")
    best = max(rows, key=lambda r: (round(r[1], 6), r[0]))  # ties: the stricter threshold
    print(f"\nbest agree_at on these held-in pairs (ties to the stricter): {best[0]:.2f} (balanced {best[1]:.0%}); "
          f"semantic.COSINE_AGREE = {COSINE_AGREE}")
    neg = cosine["negation"]
    print(f"negation: raw cosine >= {COSINE_AGREE} for {int((neg >= COSINE_AGREE).sum())}/{len(neg)} pairs — MiniLM "
          "alone would merge a claim and its denial; the polarity rule (exactly one side negated -> 0) catches "
          f"{sum(negated(a) != negated(b) for a, b in pairs['negation'])}/{len(neg)} of these generated ones "
          "(it cannot catch antonyms: 'mutable'/'immutable', 'conductor'/'insulator').")
    agreed = AnswerEmbedder(encode, agree_at=COSINE_AGREE)
    print(f"\ncontradictions that still agree at agree_at {COSINE_AGREE}:")
    for (a, b), ok, value in zip(pairs["contradiction"], pipeline_agreement(pairs["contradiction"], agreed),
                                 contra, strict=True):
        if ok:
            print(f"  cosine {value:.3f}: {a!r} / {b!r}")
    print(f"paraphrases that do not agree at agree_at {COSINE_AGREE}:")
    for (a, b), ok, value in zip(pairs["paraphrase"], pipeline_agreement(pairs["paraphrase"], agreed), same,
                                 strict=True):
        if not ok:
            print(f"  cosine {value:.3f}: {a!r} / {b!r}")


if __name__ == "__main__":
    main()
