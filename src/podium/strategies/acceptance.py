"""A cascade step's learned acceptance: the chance the cheap answer is right, from the answer alone.

Why this signal: the cascade's built-in checks each cost something or need something a recorded
dataset lacks — ``confidence`` needs the model to state one, ``agreement`` a second sample, ``verifier``
another model. What a live cascade always has is the question and the cheap model's answer, and their
*shape* says a lot about whether the answer is right: whether it commits to a final answer at all
(``####``, ``\\boxed{}``, "Answer:"), whether that answer is a whole number (GSM8K's always are), whether
the reply was cut off, how long it is against the question, whether it hedges ("however", "assuming",
"approximately"). :func:`features` computes these in microseconds with regular expressions (no model,
so it runs on the event loop without blocking it); a logistic regression over them, fitted on an eval
dataset's recorded answers (``podium eval --cascade``, :mod:`podium.evaluation.cascade_replay`), turns
them into a probability, and the calibrated ``threshold`` decides.

A :class:`LearnedAcceptance` is a cascade's ``accept`` function — ``Cascade(models,
accept=load_acceptance(path))`` in Python, ``accept: learned`` with ``acceptance_file: PATH`` in
podium.yaml (read and checked when the config loads; its calibrated threshold unless ``threshold`` is set).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from podium.errors import ConfigError
from podium.safe_files import regular_file
from podium.strategies.answers import extract
from podium.strategies.base import last_user_text
from podium.types import ChatRequest, ChatResponse

FORMAT = "podium-cascade-acceptance/1"
FEATURES = ("marked", "number", "integer", "negative", "truncated", "log_chars", "log_lines", "log_numbers",
            "log_equations", "hedges", "copies_prompt_number", "log_prompt_chars", "log_prompt_numbers",
            "length_ratio")
_MARKER = re.compile(r"\\boxed\s*\{|^\s*####|(?:final\s+answer|answer)\s*(?:is|was|would\s+be|:|=)", re.I | re.M)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_HEDGE = re.compile(r"\b(?:however|but|assum\w*|approximate\w*|round\w*|cannot|can't|not possible|unclear|"
                    r"actually|wait|mistake|sorry|impossible|estimate\w*|probably|likely)\b", re.I)
_ENDS = re.compile(r"[.!?)\]}*`$%\d]\s*$")


def features(prompt: str, reply: str) -> list[float]:
    """The shape of ``reply`` as an answer to ``prompt`` (one float per name in ``FEATURES``)."""
    said = extract(reply)
    numbers = _NUMBER.findall(reply)
    prompt_numbers = {n.replace(",", "") for n in _NUMBER.findall(prompt)}
    is_number = said.kind == "number"
    integer = is_number and "." not in said.key
    return [float(bool(_MARKER.search(reply))), float(is_number), float(integer),
            float(is_number and said.key.startswith("-")), float(not _ENDS.search(reply)),
            math.log1p(len(reply)), math.log1p(reply.count("\n")), math.log1p(len(numbers)),
            math.log1p(reply.count("=")), math.log1p(len(_HEDGE.findall(reply))),
            float(is_number and said.key in prompt_numbers), math.log1p(len(prompt)),
            math.log1p(len(prompt_numbers)), math.log1p(len(reply)) - math.log1p(len(prompt))]


@dataclass(frozen=True)
class LearnedAcceptance:
    """Logistic regression over standardised ``features``; accepts when P(right) ≥ ``threshold``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float

    def probability(self, prompt: str, reply: str) -> float:
        x = features(prompt, reply)
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in zip(self.weights, x, self.mean, self.scale,
                                                                    strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))  # < 1: threshold 1 accepts nothing

    def __call__(self, request: ChatRequest, response: ChatResponse) -> tuple[bool, str]:
        p = self.probability(last_user_text(request), response.text)
        return p >= self.threshold, f"learned acceptance {p:.2f} vs {self.threshold:.2f}"

    def to_json(self, **extra: object) -> str:
        return json.dumps({"format": FORMAT, "features": list(FEATURES), "mean": list(self.mean),
                           "scale": list(self.scale), "weights": list(self.weights), "bias": self.bias,
                           "threshold": self.threshold, **extra}, indent=1)


_MAX_BYTES = 1 << 20  # a real acceptance file is about 2 KB


def _finite(raw: object, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"{what}: expected a finite number, got {raw!r}")
    return float(raw)


def _floats(raw: object, n: int, what: str) -> tuple[float, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) != n:
        raise ValueError(f"{what}: expected {n} numbers")
    return tuple(_finite(v, what) for v in raw)


def load_acceptance(path: str | Path, threshold: float | None = None) -> LearnedAcceptance:
    """The acceptance ``podium eval --cascade`` wrote; ``threshold`` overrides the calibrated one."""
    p = Path(path)
    # a regular file (after symlinks) of at most 1 MB: /dev/zero, /dev/urandom or a FIFO would hang the load
    regular_file(p, "acceptance file", _MAX_BYTES)
    try:
        with p.open("rb") as fh:
            raw = fh.read(_MAX_BYTES + 1)
        if len(raw) > _MAX_BYTES:
            raise ValueError(f"more than {_MAX_BYTES} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        if data.get("format") != FORMAT or data.get("features") != list(FEATURES):
            raise ValueError(f"not a {FORMAT} file for these features")
        n = len(FEATURES)
        scale = _floats(data["scale"], n, "scale")
        if any(s <= 0 for s in scale):
            raise ValueError("scale: every entry must be > 0")
        chosen = _finite(data["threshold"] if threshold is None else threshold, "threshold")
        if not 0.0 <= chosen <= 1.0:
            raise ValueError(f"threshold {chosen} is not in [0, 1]")
        return LearnedAcceptance(_floats(data["mean"], n, "mean"), scale, _floats(data["weights"], n, "weights"),
                                 _finite(data["bias"], "bias"), chosen)
    except OSError as exc:
        raise ConfigError(f"cannot read the acceptance file {p}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not a cascade acceptance file ({exc}); write one with "
                          "podium eval DATASET --cascade") from None
