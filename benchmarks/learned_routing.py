"""Learned routers on RouteLLM's MMLU and GSM8K: cross-fitted, cross-benchmark, and beside RouteLLM's numbers.

    .venv/bin/python benchmarks/learned_routing.py [--folds 5] [--seeds 0,1,2] [--out FILE.md]

The same replay as ``podium eval ../shared/data/routellm/mmlu --router knn,logistic,mlp,mf,ensemble
--train-on ../shared/data/routellm/gsm8k`` (and the other way round), plus what the CLI leaves out:
the mean and spread of every learner's APGR and CPT(50 %) over several fold seeds (one split's figure
moves by a point or two), the two-model score variants (``1 - P(weak)/P(strong)``, which the gateway's
knob follows, against ``P(strong) - P(weak)`` and the strong chance alone), and the fit time per fold.
Embeddings (all-MiniLM-L6-v2) are computed once and cached on disk (``podium.evaluation.embedding_cache``):
the first run embeds MMLU's 14k prompts in a few minutes on one core.

Cross-fitting on one benchmark is in-domain (each fold's router learned from the same benchmark's other
prompts, e.g. other questions of the same MMLU subjects), unlike RouteLLM's routers, which were trained
on Chatbot Arena preference data and never saw these benchmarks; the cross-benchmark rows are the
out-of-domain check.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from podium.evaluation.dataset import load_dataset
from podium.evaluation.learned import EmbeddingTable, LearnedEvalRouter, transfer_scores
from podium.evaluation.replay import RouterResult, evaluate, score_router
from podium.evaluation.routers import baselines

DATA = next((p for p in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")) if p.is_dir()),
            Path("/work/shared")) / "data" / "routellm"
OUT = Path(__file__).resolve().parent / "results" / "learned_routing.md"
# RouteLLM (Ong et al. 2024), Table 3 and 4: routers trained on Arena data augmented with judge labels.
ROUTELLM = {"mmlu": {"random": (0.500, 50.0), "best published (MF / causal LLM)": (None, 35.5)},
            "gsm8k": {"random": (0.500, 50.0), "best published (causal LLM)": (None, 33.6)}}
OFFLINE = ("knn", "logistic", "mlp", "mf", "ensemble")  # the online bandit: benchmarks of its own
GOALS = {"mmlu": "APGR >= 0.65 and CPT(50%) <= 32 %", "gsm8k": "CPT(50%) <= 33 %"}


def row(r: RouterResult, note: str = "") -> str:
    cpts = " | ".join(f"{r.cpt[level]:.1f} %" for level in (20, 50, 80))
    return f"| {r.name}{note} | {r.apgr:.3f} | {cpts} | {r.aiq:.4f} |"


def run(name: str, other: str, folds: int, seeds: list[int], table: EmbeddingTable) -> str:
    data, source = load_dataset(DATA / name), load_dataset(DATA / other)
    table.add(data.prompts)
    table.add(source.prompts)
    lines = [f"## {name.upper()} ({len(data):,} prompts; strong {data.strong} {data.accuracy(data.strong):.1f} %, "
             f"weak {data.weak} {data.accuracy(data.weak):.1f} %)", "",
             f"Goal: {GOALS[name]}. Cross-fitted {folds}-fold, seed {seeds[0]}; in-domain (see above).", "",
             "| router | APGR | CPT(20%) | CPT(50%) | CPT(80%) | AIQ |", "|---|---|---|---|---|---|"]
    learners = [LearnedEvalRouter(k, table) for k in OFFLINE]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    result = evaluate(data, [*baselines(seeds[0])], folds, seeds[0])
    results = list(result.routers[:-1])
    for learner in learners:
        t = time.perf_counter()
        results += evaluate(data, [learner], folds, seeds[0], oracle=False).routers
        timings[learner.kind] = (time.perf_counter() - t) / folds
    c_min, c_max = float(data.weak_cost.mean()), float(data.strong_cost.mean())
    for k in OFFLINE:
        results.append(score_router(f"{k} trained on {other.upper()}", transfer_scores(k, source, data, table), data,
                                    c_min, c_max, cross_fitted=False))
    results.append(result.routers[-1])
    for r in results:
        lines.append(row(r, "" if r.cross_fitted else " (not cross-fitted)" if r.name != "oracle" else
                         " (reads the answers)"))
    lines += ["", f"RouteLLM's published figures on {name.upper()} (their routers never saw it): "
              + "; ".join(f"{k} CPT(50%) {v[1]:.1f} %" for k, v in ROUTELLM[name].items())
              + "; prompt length about 37 %.", ""]

    # spread over fold seeds
    lines += [f"Over fold seeds {', '.join(map(str, seeds))} (mean ± standard deviation):", "",
              "| router | APGR | CPT(50%) | fit + predict per fold |", "|---|---|---|---|"]
    first = {r.name: r for r in results}
    for k in OFFLINE:
        apgrs, cpts = [first[k].apgr], [first[k].cpt[50]]
        for s in seeds[1:]:
            r = evaluate(data, [LearnedEvalRouter(k, table)], folds, s, oracle=False).routers[0]
            apgrs.append(r.apgr)
            cpts.append(r.cpt[50])
        lines.append(f"| {k} | {np.mean(apgrs):.3f} ± {np.std(apgrs):.3f} | {np.mean(cpts):.1f} ± "
                     f"{np.std(cpts):.1f} % | {timings[k]:.1f} s |")

    # score variants for the two-model metrics
    lines += ["", "Two-model score variants (seed 0, out-of-fold chances):", "",
              "| learner | 1 - P(weak)/P(strong) | P(strong) - P(weak) | P(strong) alone |", "|---|---|---|---|"]
    for learner in learners:
        ch = learner.chances_for(data)
        s, w = ch[:, list(learner.models).index(data.strong)], ch[:, list(learner.models).index(data.weak)]
        variants = [1 - w / np.maximum(s, 1e-9), s - w, s]
        cells = []
        for v in variants:
            r = score_router("v", v, data, c_min, c_max)
            cells.append(f"APGR {r.apgr:.3f}, CPT(50%) {r.cpt[50]:.1f} %")
        lines.append(f"| {learner.kind} | " + " | ".join(cells) + " |")
    lines.append(f"\n({time.perf_counter() - t0:.0f} s for this benchmark.)\n")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    table = EmbeddingTable()
    parts = ["# Learned routers on RouteLLM's benchmarks", "",
             "Produced by `benchmarks/learned_routing.py`. GPT-4 (strong) vs Mixtral-8x7B (weak), RouteLLM's "
             "recorded answers, contaminated prompts dropped. Learned routers score a prompt "
             "1 - P(weak)/P(strong) from all-MiniLM-L6-v2 embeddings (logistic and mlp also read length, digit, "
             "code and math features of the text); ensemble = mean of knn and logistic chances.", "",
             "**Cross-fitting on one benchmark is in-domain**: each fold's router learned from other prompts of "
             "the same benchmark (the same MMLU subjects, the same kind of word problem), whereas RouteLLM's "
             "routers were trained on Chatbot Arena data and never saw MMLU or GSM8K. The rows 'trained on' the "
             "other benchmark are the out-of-domain comparison.", ""]
    for name, other in (("mmlu", "gsm8k"), ("gsm8k", "mmlu")):
        parts.append(run(name, other, args.folds, seeds, table))
        print(parts[-1], flush=True)
    text = "\n".join(parts) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
