"""The example's scripted team: what each role answers, as a function of what it is asked.

Used by the tests and benchmarks/work_package.py to run the sample package without a model: a conductor
that answers the plan in plan.yaml, workers that answer in SEARCH/REPLACE edit blocks, a reviewer that
answers JSON. The five subtasks each show one path through the run:

    convert   passes its check and its review the first time
    kelvin    fails its check (273 instead of 273.15), is sent back with the output, and is fixed
    usage     waits for convert and kelvin; the reviewer asks for changes every time: rejected
    title-a   changes the README's title: merged
    title-b   changes the same line: approved, but conflicts with title-a at the merge (reported)
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

HERE = Path(__file__).parent
FENCE = "`" * 3


def _plan_json() -> str:
    plan = yaml.safe_load((HERE / "plan.yaml").read_text(encoding="utf-8"))
    return json.dumps({"title": plan["title"], "subtasks": plan["subtasks"]})


def _block(path: str, search: str, replace: str) -> str:
    return f"{path}\n{FENCE}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n{FENCE}\n"


def worker(prompt: str) -> str:
    if "TASK-CONVERT" in prompt:
        return "Adding c_to_f.\n" + _block("temperature.py", '"""Temperature conversions."""\n',
                                           '"""Temperature conversions."""\n\n\ndef c_to_f(celsius):\n'
                                           '    """Celsius to Fahrenheit."""\n    return celsius * 9 / 5 + 32\n')
    if "TASK-KELVIN" in prompt:
        if "FAIL: c_to_k(0) should be 273.15" in prompt:  # the check's output came back (not check.py's source)
            return "Fixing the offset.\n" + _block("kelvin.py", "    return celsius + 273\n",
                                                   "    return celsius + 273.15\n")
        return "Creating kelvin.py.\n" + _block("kelvin.py", "", '"""Kelvin."""\n\n\ndef c_to_k(celsius):\n'
                                                '    """Celsius to Kelvin."""\n    return celsius + 273\n')
    if "TASK-USAGE" in prompt:
        if "USAGE.md" in prompt and "c_to_f(100)" in prompt and "The reviewer asked" in prompt:
            return "Adding an example.\n" + _block("USAGE.md", "c_to_f(100)  # 212\n",
                                                   "c_to_f(100)  # 212\nc_to_f(0)  # 32\n")
        return "Writing usage.\n" + _block("USAGE.md", "", "# Usage\n\nc_to_f(100)  # 212\nc_to_k(0)  # 273.15\n")
    if "TASK-TITLE-A" in prompt:
        return _block("README.md", "# Sample\n", "# Sample: temperature conversions\n")
    if "TASK-TITLE-B" in prompt:
        return _block("README.md", "# Sample\n", "# Sample: Celsius, Fahrenheit and Kelvin\n")
    return "I have nothing to change."


def reviewer(prompt: str) -> str:
    if "TASK-USAGE" in prompt:
        return json.dumps({"approved": False, "reasons": ["the usage notes do not explain the units"],
                           "changes": ["say which unit each function takes and returns"]})
    return json.dumps({"approved": True, "reasons": ["the change does what the subtask asks"], "changes": []})


def answer(system: str, prompt: str) -> str:
    """The answer of whichever role ``system`` (the first system message) belongs to."""
    if "You are the conductor" in system:
        return _plan_json()
    if "You are the reviewer" in system:
        return reviewer(prompt)
    return worker(prompt)
