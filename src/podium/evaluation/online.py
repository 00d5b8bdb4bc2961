"""``podium eval --online``: the bandit router replayed as a stream, seeing only what it chose.

Why a simulation: an online router is judged by what it earns *while* it learns, not by a held-out
score after training. The dataset's prompts arrive once each in a seeded random order; at each step
the bandit (:class:`~podium.routing.learned.bandit.BanditRouter`) picks a model — a share ``explore``
of the time a uniformly drawn one, else the knob's pick on its predicted chances, as the gateway does —
and only that model's recorded quality is revealed and fed to ``update``. The other model's outcome
is never read for the bandit (it is read only to score the fixed policies it is compared with).

Reward and regret. Each step's reward is ``quality - λ · cost / the strong model's cost on that
prompt`` (quality 0..1: a strong call costs λ, a weak one λ times its price ratio), with
``λ = 1 - knob``: the knob's bar ``P(weak) ≥ knob · P(strong)`` is the same trade when the strong model
is sure to succeed, so the knob sets the price. Regret after t steps is
the cumulative reward of the best *fixed* policy in hindsight minus the bandit's: against the best
fixed model (always strong or always weak) and against the best threshold of Podium's static
heuristic router (strong when its tier is at least k, for every k). Negative regret means the bandit
earned more than that policy.

The issue's goal: after half the stream, the bandit's cost-quality point (over the second half) must
beat the static heuristic's. On the second half's prompts the heuristic's curve is replayed exactly as
``podium eval`` replays it (:func:`~podium.evaluation.metrics.replay_curve`), and read off at the
bandit's realised strong-call share by linear interpolation (mixing two thresholds at random gets any
point between them): the bandit wins when its accuracy there is higher. The cost the heuristic needs to
reach the bandit's accuracy (on its non-decreasing convex hull, i.e. mixing allowed) is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from podium.errors import ConfigError
from podium.evaluation.dataset import EvalDataset
from podium.evaluation.metrics import CurvePoint, non_decreasing_hull, replay_curve
from podium.routing.learned.contract import Floats, Vectors

Bools = NDArray[np.bool_]
STRONG, WEAK = 0, 1  # columns of the (n, 2) quality and cost arrays


@dataclass(frozen=True)
class OnlineRun:
    """One simulated stream: per step (in stream order) the prompt row, the choice and what it earned."""

    dataset: EvalDataset
    order: NDArray[np.int64]  # dataset row of each step
    strong: Bools  # the bandit called the strong model
    explored: Bools  # the call was an exploration draw
    quality: Floats  # the chosen model's quality (the only outcome revealed)
    cost: Floats  # the chosen model's cost (USD)
    tiers: Floats  # the static heuristic's score of each step's prompt (higher: strong)
    explore: float
    knob: float
    seed: int
    explanation: str  # the bandit's own line about the last prompt, after the stream

    @property
    def lam(self) -> float:
        """The price the knob sets: a strong call costs λ of quality."""
        return 1.0 - self.knob

    @property
    def half(self) -> int:
        return len(self.order) // 2


@dataclass(frozen=True)
class Policy:
    """A fixed policy's per-step choices (True: strong) over the stream, and what they earn."""

    name: str
    strong: Bools
    quality: Floats
    cost: Floats
    reward: Floats


@dataclass(frozen=True)
class SecondHalf:
    """The goal's comparison over the second half of the stream."""

    share: float  # bandit's strong calls (%)
    accuracy: float  # bandit's accuracy (%)
    cost: float  # bandit's mean cost per prompt (USD)
    explored: float  # share of exploration draws (%)
    heuristic_accuracy: float  # the heuristic's accuracy at the bandit's share, interpolated (%)
    heuristic_cost: float  # the heuristic's mean cost to reach the bandit's accuracy (inf: never)
    heuristic_points: list[CurvePoint]
    strong_accuracy: float
    weak_accuracy: float

    @property
    def met(self) -> bool:
        """The bandit's point lies above the heuristic's curve at the same share of strong calls."""
        return self.accuracy > self.heuristic_accuracy


def check_settings(explore: float, knob: float) -> None:
    """Both in [0, 1]; anything else is a ConfigError naming the option and the fix."""
    if not (isinstance(explore, int | float) and 0.0 <= explore <= 1.0):
        raise ConfigError(f"--explore must be a share between 0 and 1 (e.g. 0.1), got {explore}")
    if not (isinstance(knob, int | float) and 0.0 <= knob <= 1.0):
        raise ConfigError(f"--knob must lie between 0 (cheapest) and 1 (best), got {knob}")


def heuristic_tiers(dataset: EvalDataset) -> Floats:
    """Podium's static heuristic router's tier per prompt (0, 1, 2), as ``podium eval`` scores it."""
    from podium.evaluation.routers import HeuristicRouter

    return np.asarray(HeuristicRouter().fit(dataset).scores(dataset.prompts), dtype=np.float64)


def simulate(dataset: EvalDataset, embeddings: Vectors, *, explore: float = 0.1, knob: float = 0.9, seed: int = 0,
             tiers: Floats | None = None, **bandit: Any) -> OnlineRun:
    """Stream ``dataset`` once through a fresh bandit (``bandit``: its hyper-parameters)."""
    from podium.routing.learned.bandit import BanditRouter

    check_settings(explore, knob)
    n = len(dataset)
    if n < 2:
        raise ConfigError(f"{dataset.name}: an online run needs at least 2 prompts, got {n}")
    if len(dataset.all_models) != 2:
        raise ConfigError(f"{dataset.name}: --online compares a strong and a weak model, and this dataset has "
                          f"{len(dataset.all_models)} ({', '.join(dataset.all_models)}): keep two of them")
    x = np.asarray(embeddings, dtype=np.float32)
    if x.shape != (n, 384):
        raise ValueError(f"expected ({n}, 384) embeddings, got {x.shape}")
    scores = heuristic_tiers(dataset) if tiers is None else np.asarray(tiers, dtype=np.float64)
    if scores.shape != (n,):
        raise ValueError(f"expected {n} heuristic scores, got shape {scores.shape}")
    models = (dataset.strong, dataset.weak)
    quality = np.column_stack([dataset.strong_quality, dataset.weak_quality])
    cost = np.column_stack([dataset.strong_cost, dataset.weak_cost])
    router = BanditRouter(models, explore=explore, seed=seed, knob=knob,
                          costs={m: float(c) for m, c in zip(models, cost.mean(0), strict=True)}, **bandit)
    order = np.random.default_rng(seed).permutation(n).astype(np.int64)
    chosen = np.empty(n, dtype=np.int64)
    explored = np.zeros(n, dtype=np.bool_)
    for t, i in enumerate(order):
        pull = router.choose(x[i], {models[0]: float(cost[i, 0]), models[1]: float(cost[i, 1])})
        j = models.index(pull.model)
        router.update(x[i], pull.model, float(quality[i, j]))  # the only outcome the bandit ever sees
        chosen[t], explored[t] = j, pull.explored
    rows = np.arange(n)
    return OnlineRun(dataset, order, chosen == STRONG, explored, quality[order][rows, chosen],
                     cost[order][rows, chosen], scores[order], float(explore), float(knob), seed,
                     router.explain(x[order[-1]]))


def _reward(run: OnlineRun, quality: Floats, cost: Floats) -> Floats:
    strong = run.dataset.strong_cost[run.order]
    relative = np.divide(cost, strong, out=np.zeros_like(cost), where=strong > 0)
    return np.asarray(quality - run.lam * relative)


def fixed_policies(run: OnlineRun) -> list[Policy]:
    """Always strong, always weak, and the heuristic at each threshold (strong when its tier ≥ k)."""
    d, o = run.dataset, run.order
    sq, wq, sc, wc = d.strong_quality[o], d.weak_quality[o], d.strong_cost[o], d.weak_cost[o]

    def policy(name: str, strong: Bools) -> Policy:
        q, c = np.where(strong, sq, wq), np.where(strong, sc, wc)
        return Policy(name, strong, q, c, _reward(run, q, c))

    out = [policy("always strong", np.ones(len(o), dtype=np.bool_)),
           policy("always weak", np.zeros(len(o), dtype=np.bool_))]
    for k in np.unique(run.tiers)[1:]:
        out.append(policy(f"heuristic tier ≥ {k:g}", run.tiers >= k))
    return out


def bandit_reward(run: OnlineRun) -> Floats:
    return _reward(run, run.quality, run.cost)


def best(policies: list[Policy], names: tuple[str, ...] | None = None) -> Policy:
    """The policy with the highest total reward over the whole stream (in hindsight)."""
    pool = [p for p in policies if names is None or p.name in names]
    return max(pool, key=lambda p: float(p.reward.sum()))


def regret_curve(run: OnlineRun, against: Policy) -> Floats:
    """Cumulative regret after each step: ``against``'s cumulative reward minus the bandit's."""
    return np.asarray(np.cumsum(against.reward) - np.cumsum(bandit_reward(run)))


def second_half(run: OnlineRun) -> SecondHalf:
    """The bandit's point over the second half and the static heuristic's curve on the same prompts."""
    h = run.half
    rows = run.order[h:]
    d = run.dataset
    points = replay_curve(run.tiers[h:], d.strong_quality[rows], d.weak_quality[rows], d.strong_cost[rows],
                          d.weak_cost[rows])
    share = float(run.strong[h:].mean() * 100)
    accuracy = float(run.quality[h:].mean() * 100)
    by_share = {p.strong_share: p.accuracy for p in points}  # equal shares come from equal routings
    xs = np.array(sorted(by_share))
    at_share = float(np.interp(share, xs, [by_share[x] for x in xs]))
    return SecondHalf(share, accuracy, float(run.cost[h:].mean()), float(run.explored[h:].mean() * 100), at_share,
                      cost_to_reach(points, accuracy), points, float(d.strong_quality[rows].mean() * 100),
                      float(d.weak_quality[rows].mean() * 100))


def cost_to_reach(points: list[CurvePoint], accuracy: float) -> float:
    """The least mean cost at which a mix of the curve's operating points reaches ``accuracy`` (inf: none)."""
    hull = non_decreasing_hull(np.array([p.cost for p in points]), np.array([p.accuracy for p in points]))
    costs, accs = hull[:, 0], hull[:, 1]
    if accuracy > accs.max():
        return float("inf")
    if accuracy <= accs[0]:
        return float(costs[0])
    rising = int(np.argmax(accs)) + 1  # the hull rises strictly up to its highest point
    return float(np.interp(accuracy, accs[:rising], costs[:rising]))
