"""A weak → strong cascade replayed on GSM8K's recorded answers, and its threshold calibrated for a target.

    .venv/bin/python benchmarks/cascade_calibration.py [--target 0.95] [--folds 5] [--seed 0]

The same replay as ``podium eval ../shared/data/routellm/gsm8k --cascade --target 0.95`` (RouteLLM's
GSM8K: Mixtral-8x7B weak, GPT-4 strong, 1,307 prompts after contaminated ones are dropped), plus one
signal the CLI leaves out: the learned acceptance with the prompt's all-MiniLM-L6-v2 embedding added to
the answer-shape features (embeddings cached on disk, ``podium.evaluation.embedding_cache``) — to see
whether knowing the question helps beyond the shape of the answer. The calibration is then repeated
for several seeds (fold assignments), since one split's held-out figure is noisy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from podium.evaluation.cascade_replay import Floats, load_cascade_data, markdown, replay
from podium.evaluation.embedding_cache import embed_prompts

GSM8K = next((p for p in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")) if p.is_dir()),
             Path("/work/shared")) / "data" / "routellm" / "gsm8k"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(GSM8K))
    args = parser.parse_args()
    cascade = load_cascade_data(args.data)
    vectors = np.asarray(embed_prompts(cascade.data.prompts), dtype=np.float64)

    def with_embedding(_: Floats) -> Floats:
        return vectors

    report = replay(cascade, args.folds, args.seed, args.target,
                    extra={"learned acceptance + prompt embedding": with_embedding})
    print(markdown(report))
    print(f"Calibration for --target {args.target:g} across fold seeds (held out, nested cross-fitting):\n")
    print("| seed | threshold (all rows) | strong calls % | accuracy % | kept of strong | cost / always-strong |")
    print("|---|---|---|---|---|---|")
    strong_cost = float(cascade.data.strong_cost.mean())
    kept = []
    for seed in range(5):
        c = replay(cascade, args.folds, seed, args.target).calibration
        assert c is not None
        kept.append(c.kept)
        print(f"| {seed} | {c.threshold:.3f} | {c.held_out.strong_share:.1f} | {c.held_out.accuracy:.1f} | "
              f"{c.kept:.1%} | {c.held_out.cost / strong_cost:.1%} |")
    print(f"\ntarget met on {sum(k >= args.target for k in kept)}/{len(kept)} seeds; mean kept {np.mean(kept):.1%}")


if __name__ == "__main__":
    main()
