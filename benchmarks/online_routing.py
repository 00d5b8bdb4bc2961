"""The online bandit router on RouteLLM's MMLU and GSM8K streams: does it beat the static heuristic
after half the stream, and what does learning cost on the way?

Each run streams every prompt once in a seeded random order through a fresh bandit (``podium eval
--online``'s simulation), revealing only the chosen model's outcome. Per dataset and knob it prints,
over several seeds, the second half's strong-call share and accuracy beside the static heuristic's
accuracy at the same share (interpolated on its replayed curve), how often the bandit was the better
point (the issue's goal), and the whole stream's regret against the best fixed model and the best
heuristic threshold (reward = quality - (1 - knob) * cost / the prompt's strong cost; negative = the
bandit earned more). Tuning used only these two datasets.

    .venv/bin/python benchmarks/online_routing.py [--seeds 5] [--knobs 0.8,0.9] [--explore 0.1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from podium.evaluation.dataset import load_dataset
from podium.evaluation.embedding_cache import embed_prompts
from podium.evaluation.metrics import replay_curve
from podium.evaluation.online import (
    OnlineRun,
    best,
    fixed_policies,
    heuristic_tiers,
    regret_curve,
    second_half,
    simulate,
)

DATA = "/work/shared/data/routellm"


def exploiting(run: OnlineRun) -> float:
    """Accuracy difference to the heuristic (same share, same prompts) over the second half's steps that
    were not exploration draws: what the learned policy itself is worth, without the price of exploring."""
    h = run.half
    keep = ~run.explored[h:]
    rows = run.order[h:][keep]
    d = run.dataset
    points = replay_curve(run.tiers[h:][keep], d.strong_quality[rows], d.weak_quality[rows], d.strong_cost[rows],
                          d.weak_cost[rows])
    by_share = {p.strong_share: p.accuracy for p in points}
    xs = sorted(by_share)
    share = float(run.strong[h:][keep].mean() * 100)
    return float(run.quality[h:][keep].mean() * 100 - np.interp(share, xs, [by_share[x] for x in xs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="mmlu,gsm8k")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--knobs", default="0.8,0.9")
    parser.add_argument("--explore", type=float, default=0.1)
    args = parser.parse_args()
    print("| dataset | knob | 2nd half: strong calls | bandit accuracy | heuristic at that share | difference "
          "| bandit better | difference without exploration draws | regret vs best fixed model "
          "| regret vs best heuristic threshold | s per run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        data = load_dataset(f"{DATA}/{name}")
        vectors = embed_prompts(data.prompts)
        tiers = heuristic_tiers(data)
        for knob in (float(k) for k in args.knobs.split(",")):
            rows = []
            started = time.perf_counter()
            for seed in range(args.seeds):
                run = simulate(data, vectors, explore=args.explore, knob=knob, seed=seed, tiers=tiers)
                half = second_half(run)
                policies = fixed_policies(run)
                rows.append((half.share, half.accuracy, half.heuristic_accuracy,
                             half.accuracy - half.heuristic_accuracy, float(half.met), exploiting(run),
                             regret_curve(run, best(policies, ("always strong", "always weak")))[-1] / len(run.order),
                             regret_curve(run, best(policies))[-1] / len(run.order)))
            a = np.array(rows)
            mean, sd = a.mean(0), a.std(0)
            seconds = (time.perf_counter() - started) / args.seeds
            print(f"| {name} ({len(data):,}) | {knob:.2f} | {mean[0]:.1f} % | {mean[1]:.2f} % | {mean[2]:.2f} % "
                  f"| {mean[3]:+.2f} ± {sd[3]:.2f} | {int(a[:, 4].sum())}/{args.seeds} | {mean[5]:+.2f} ± {sd[5]:.2f} "
                  f"| {mean[6]:+.4f}/step | {mean[7]:+.4f}/step | {seconds:.0f} |", flush=True)
    print(f"\nMeans over {args.seeds} seeds (± one standard deviation across seeds); explore {args.explore:.0%}; "
          "2nd half = the last half of each stream; the bandit's accuracy includes its exploration draws.")


if __name__ == "__main__":
    main()
