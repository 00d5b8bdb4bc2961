"""The plan and package loaders against hostile files (security review, issue 14): whatever a file holds,
the answer is one ConfigError line naming the file, never a traceback."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from podium.errors import ConfigError
from podium.work.package import load_package, parse_package
from podium.work.plan import check_repo_path, load_plan, plan_from_data

pytestmark = pytest.mark.timeout(60)

DEEP = "[" * 60_000 + "]" * 60_000
BOMB = "\n".join(f"  a{i}: &a{i} [" + ",".join(["lol" if i == 0 else f"*a{i - 1}"] * 9) + "]" for i in range(9))


def test_a_deeply_nested_plan_is_one_line_naming_the_file(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"version: 1\npackage: x.md\nsubtasks: {DEEP}\n")
    with pytest.raises(ConfigError) as info:
        load_plan(plan)
    message = str(info.value)
    assert str(plan) in message and "nest" in message and "\n" not in message


def test_a_deeply_nested_package_front_matter_is_one_line_naming_the_file(tmp_path: Path) -> None:
    package = tmp_path / "Arbeitspaket.md"
    package.write_text(f"---\ncheck: {DEEP}\n---\n# T\n\nbody\n")
    with pytest.raises(ConfigError) as info:
        load_package(package)
    message = str(info.value)
    assert str(package) in message and "nest" in message and "\n" not in message


def test_deeply_nested_data_given_to_plan_from_data_is_a_config_error() -> None:
    deep: list[object] = []
    for _ in range(5_000):
        deep = [deep]
    with pytest.raises(ConfigError, match="the conductor's plan"):
        plan_from_data({"version": 1, "package": "x.md", "subtasks": deep}, "the conductor's plan")


def test_alias_bombs_are_refused_quickly(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"version: 1\npackage: x.md\nx:\n{BOMB}\ntitle: *a8\nsubtasks:\n- id: a\n  title: *a8\n"
                    "  instructions: i\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=re.escape(plan.name)):
        load_plan(plan)
    package = tmp_path / "p.md"
    package.write_text(f"---\n{BOMB.replace('  ', '')}\ncheck: *a8\n---\n# T\n\nbody\n")
    with pytest.raises(ConfigError, match=re.escape(package.name)):
        load_package(package)
    assert time.monotonic() - started < 10


def test_python_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    plan = tmp_path / "plan.yaml"
    plan.write_text(f'version: 1\npackage: !!python/object/apply:os.system ["touch {marker}"]\nsubtasks: []\n')
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_plan(plan)
    assert not marker.exists()


def test_a_nul_in_a_path_is_named_as_such() -> None:
    for path in ("a\x00b.py", "\x00", "src/\x00"):
        with pytest.raises(ValueError, match="NUL character"):
            check_repo_path(path)
    for path in ("", "   "):
        with pytest.raises(ValueError, match="empty"):
            check_repo_path(path)


def test_a_plan_naming_a_nul_path_says_so() -> None:
    data = {"version": 1, "package": "x.md",
            "subtasks": [{"id": "a", "title": "t", "instructions": "i", "files": ["a\x00.py"]}]}
    with pytest.raises(ConfigError, match="NUL character"):
        plan_from_data(data)


def test_front_matter_parse_is_one_line_for_a_deep_mapping() -> None:
    text = "---\ncheck: " + "{a: " * 30_000 + "}" * 30_000 + "\n---\n# T\n\nbody\n"
    with pytest.raises(ConfigError, match=r"p\.md"):
        parse_package(text, Path("p.md"))
