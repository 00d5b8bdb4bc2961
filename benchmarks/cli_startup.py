"""How long `podium --help` takes (target <= 0.3 s): heavy imports must stay lazy.

    python benchmarks/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = shutil.which("podium") or str(__import__("pathlib").Path(sys.executable).with_name("podium"))
    commands = {"podium --help": [exe, "--help"], "podium ask --help": [exe, "ask", "--help"],
                "python -c pass (floor)": [sys.executable, "-c", "pass"]}
    for label, cmd in commands.items():
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - start)
        times.sort()
        print(f"{label:26s} median {statistics.median(times) * 1000:6.1f} ms   "
              f"p90 {times[int(len(times) * 0.9) - 1] * 1000:6.1f} ms   ({args.runs} runs)")


if __name__ == "__main__":
    main()
