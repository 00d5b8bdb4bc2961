"""A work package run: wall time with parallel workers against one at a time, and what each role cost.

    .venv/bin/python benchmarks/work_package.py                    # 3 runs each, interleaved
    .venv/bin/python benchmarks/work_package.py --latency 0 --runs 5   # the machinery alone

The example package (examples/work-package: five subtasks — one passes, one fails its check and is fixed,
one waits for two and is rejected by review, two conflict) runs in-process on a real git repository with
real check commands and a SQLite ledger. The models are the example's scripted team on two providers,
each call taking ``--latency`` seconds (default 1.0 s, a fast hosted model's answer) and priced as
in tests/work_sample.py (conductor $3/$15, worker $0.30/$1.20, reviewer $0.20/$0.60 per million tokens).
The conductor plans (one call), so every role has a cost. Builds alternate (parallel, serial, parallel …)
so drift on this VM hits both alike; each figure is the median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from podium.work.contracts import ROLES, RunRecord  # noqa: E402
from podium.work.package import load_package  # noqa: E402
from podium.work.runner import RunOptions, WorkRun  # noqa: E402
from work_sample import make_repo, podium_for  # noqa: E402


async def one(parallel: int, latency: float) -> tuple[float, RunRecord]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        repo, package, _plan = make_repo(base)
        podium = podium_for(base, latency=latency)
        started = time.perf_counter()
        record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package),
                                                  max_parallel=parallel)).run()
        wall = time.perf_counter() - started
        await podium.aclose()
        return wall, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per model call")
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    walls: dict[int, list[float]] = {args.parallel: [], 1: []}
    last: dict[int, RunRecord] = {}
    for _ in range(args.runs):
        for parallel in (args.parallel, 1):
            wall, record = asyncio.run(one(parallel, args.latency))
            walls[parallel].append(wall)
            last[parallel] = record
    print(f"work package run (examples/work-package, {args.runs} runs each, {args.latency:g} s per model call)")
    for parallel, values in walls.items():
        print(f"  parallel {parallel}: wall {statistics.median(values):6.2f} s median "
              f"(min {min(values):.2f}, max {max(values):.2f})")
    serial, fast = statistics.median(walls[1]), statistics.median(walls[args.parallel])
    print(f"  speed-up with {args.parallel} workers: {serial / fast:.2f}x")
    record = last[args.parallel]
    outcome = ", ".join(f"{s.id} {s.status} ({s.rounds} round{'s' if s.rounds != 1 else ''})"
                        for s in record.subtasks.values())
    print(f"  outcome: {outcome}")
    print("  cost per role (one run):")
    for role in ROLES:
        print(f"    {role:<9} {record.costs.calls.get(role, 0):3d} calls  {record.costs.tokens.get(role, 0):6d} tokens"
              f"  ${record.costs.cost.get(role, 0.0):.6f}")
    total = record.costs.total
    baseline = record.baseline_cost or 0.0
    saving = f"{(1 - total / baseline) * 100:.1f} % cheaper" if baseline else "not known"
    print(f"    total     ${total:.6f}; all calls on {record.baseline_model}: ${baseline:.6f} ({saving})")


if __name__ == "__main__":
    main()
