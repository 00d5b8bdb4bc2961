"""The package file, the plan file and the conductor: strict reading, clear errors, a plan that always exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.errors import ConfigError
from podium.types import ChatResponse, Message
from podium.work.conductor import first_json_object, make_plan
from podium.work.package import load_package, parse_package
from podium.work.plan import WorkPlan, check_repo_path, dump_plan, load_plan, plan_from_data

PACKAGE = """---
check: python3 check.py
budget: 1.5
deadline: 600
preset: budget
---
# Add conversions

Add `c_to_f` to temperature.py.

## Acceptance
- c_to_f(100) == 212
* the check passes

## Notes
- not a criterion
"""


def test_package_front_matter_title_and_acceptance(tmp_path: Path):
    pkg = parse_package(PACKAGE, tmp_path / "Arbeitspaket.md")
    assert pkg.title == "Add conversions"
    assert pkg.acceptance == ("c_to_f(100) == 212", "the check passes")
    assert pkg.settings.check == "python3 check.py" and pkg.settings.budget == 1.5
    assert pkg.slug == "arbeitspaket"
    assert not pkg.text.startswith("---")


@pytest.mark.parametrize(("text", "problem"), [
    ("---\nbudjet: 3\n---\n# x\nwork", "budjet"),
    ("---\nbudget: -1\n---\n# x\nwork", "budget"),
    ("---\n[unclosed\n---\n# x\nwork", "not valid YAML"),
    ("---\n- a list\n---\n# x\nwork", "mapping"),
    ("---\ncheck: x\n---\n   \n", "empty"),
])
def test_package_errors_name_the_problem(tmp_path: Path, text: str, problem: str):
    with pytest.raises(ConfigError, match=problem):
        parse_package(text, tmp_path / "p.md")


def test_package_file_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="no work package"):
        load_package(tmp_path / "missing.md")
    (tmp_path / "bin.md").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_package(tmp_path / "bin.md")
    (tmp_path / "big.md").write_text("x" * 300_000)
    with pytest.raises(ConfigError, match="at most"):
        load_package(tmp_path / "big.md")


def _plan(**extra: object) -> dict[str, object]:
    subtasks = [{"id": "a", "title": "A", "instructions": "do a", "files": ["src/a.py"]},
                {"id": "b", "title": "B", "instructions": "do b\nwith lines", "depends_on": ["a"], "tier": "fast"}]
    return {"version": 1, "package": "p.md", "subtasks": subtasks, **extra}


def test_plan_round_trip_and_layers(tmp_path: Path):
    plan = plan_from_data(_plan())
    path = tmp_path / "p.plan.yaml"
    path.write_text(dump_plan(plan))
    assert "instructions: |" in path.read_text()  # multi-line instructions stay readable
    again = load_plan(path)
    assert again == plan
    assert [[s.id for s in layer] for layer in again.layers()] == [["a"], ["b"]]


@pytest.mark.parametrize(("change", "problem"), [
    ({"subtasks": [{"id": "a", "title": "A", "instructions": "x"}, {"id": "a", "title": "B", "instructions": "y"}]},
     "used twice"),
    ({"subtasks": [{"id": "a", "title": "A", "instructions": "x", "depends_on": ["zz"]}]}, "not a subtask"),
    ({"subtasks": [{"id": "a", "title": "A", "instructions": "x", "depends_on": ["b"]},
                   {"id": "b", "title": "B", "instructions": "y", "depends_on": ["a"]}]}, "cycle: a → b → a"),
    ({"subtasks": [{"id": "Bad Id", "title": "A", "instructions": "x"}]}, "short slug"),
    ({"subtasks": [{"id": "a", "title": "A", "instructions": "x", "files": ["../etc/passwd"]}]}, "leaves"),
    ({"subtasks": [{"id": "a", "title": "A", "instructions": "x", "files": ["/etc/passwd"]}]}, "absolute"),
    ({"subtasks": [{"id": "a", "title": "A", "instructions": "x", "files": [".git/config"]}]}, ".git"),
    ({"subtasks": [{"id": "a", "title": "A", "instructions": "x", "tier": "huge"}]}, "tier"),
    ({"subtasks": []}, "subtasks"),
    ({"surprise": 1}, "surprise"),
])
def test_plan_errors_name_the_subtask_and_field(change: dict[str, object], problem: str):
    with pytest.raises(ConfigError, match=problem):
        plan_from_data(_plan(**change))


def test_plan_file_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="podium work plan"):
        load_plan(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("subtasks: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_plan(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_plan(tmp_path / "list.yaml")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_repo_paths_never_leave_the_repository(path: str):
    try:
        clean = check_repo_path(path)
    except ValueError:
        return
    parts = clean.split("/")
    assert ".." not in parts and ".git" not in parts and not clean.startswith("/") and "" not in parts


# --- the conductor -------------------------------------------------------------------------------------
class Calls:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.seen: list[list[Message]] = []

    async def ask(self, role: str, messages: list[Message], **_: object) -> ChatResponse:
        assert role == "conductor"
        self.seen.append(list(messages))
        return ChatResponse(text=self.answers.pop(0), model="c", provider="p", cost=0.01)


GOOD = ('Here is the plan:\n```json\n{"title": "T", "subtasks": [{"id": "conv", "title": "Convert", '
        '"instructions": "add c_to_f", "files": ["temperature.py"], "acceptance": ["works"], "tier": "fast", '
        '"depends_on": [], "owner": "ignored extra field"}]}\n```')


async def test_conductor_plan_is_checked_like_a_file(tmp_path: Path):
    pkg = parse_package(PACKAGE, tmp_path / "p.md")
    (tmp_path / "temperature.py").write_text("# temperature\n")
    calls = Calls(GOOD)
    texts = {"temperature.py": "# temperature\n"}
    plan = await make_plan(calls, pkg, ["temperature.py", "README.md"], texts, base="abc")  # type: ignore[arg-type]
    assert isinstance(plan, WorkPlan) and plan.base == "abc" and plan.package == "p.md"
    assert plan.subtasks[0].files == ["temperature.py"]
    prompt = calls.seen[0][1].content
    assert isinstance(prompt, str)
    assert "temperature.py" in prompt and "# temperature" in prompt  # the mentioned file's text is shown


async def test_conductor_gets_one_second_chance_then_one_subtask(tmp_path: Path):
    pkg = parse_package(PACKAGE, tmp_path / "p.md")
    bad = '{"subtasks": [{"id": "x", "title": "X", "instructions": "i", "files": ["../../etc/passwd"]}]}'
    calls = Calls(bad, GOOD)
    plan = await make_plan(calls, pkg, [], {})  # type: ignore[arg-type]
    assert plan.subtasks[0].id == "conv"
    assert "leaves the repository" in str(calls.seen[1][-1].content)  # the problem went back to the model
    plan = await make_plan(Calls("no json here", "still {not json"), pkg, [], {})  # type: ignore[arg-type]
    assert [s.id for s in plan.subtasks] == ["package"] and "could not be read" in plan.title
    assert plan.subtasks[0].acceptance == list(pkg.acceptance)


async def test_conductor_plan_over_the_limit_is_sent_back(tmp_path: Path):
    pkg = parse_package(PACKAGE, tmp_path / "p.md")
    many = '{"subtasks": [' + ",".join(
        f'{{"id": "s{i}", "title": "t", "instructions": "i"}}' for i in range(5)) + "]}"
    plan = await make_plan(Calls(many, many), pkg, [], {}, limit=3)  # type: ignore[arg-type]
    assert [s.id for s in plan.subtasks] == ["package"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_first_json_object_never_crashes(text: str):
    try:
        value = first_json_object(text)
    except ValueError:
        return
    assert isinstance(value, dict)


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=200).filter(lambda t: t.strip()), st.text(min_size=1, max_size=60))
def test_any_instructions_survive_the_plan_file(instructions: str, title: str):
    try:
        plan = plan_from_data({"package": "p.md", "title": title, "subtasks": [
            {"id": "a", "title": title[:200], "instructions": instructions}]})
    except ConfigError:
        return
    import yaml

    assert plan_from_data(yaml.safe_load(dump_plan(plan))) == plan


async def test_conductor_json_nested_too_deeply_is_an_unreadable_plan(tmp_path: Path):
    pkg = parse_package(PACKAGE, tmp_path / "p.md")
    deep = "[" * 200_000
    plan = await make_plan(Calls(deep, '{"subtasks": ' + deep), pkg, [], {})  # type: ignore[arg-type]
    assert [s.id for s in plan.subtasks] == ["package"] and "nested too deeply" in plan.title


def test_an_unclosed_front_matter_is_an_error_and_german_criteria_are_read(tmp_path: Path):
    with pytest.raises(ConfigError, match="never closed"):
        parse_package("---\ncheck: false\n# T\nwork\n", tmp_path / "p.md")
    pkg = parse_package("# T\n\nwork\n\n## Akzeptanzkriterien\n- geht\n", tmp_path / "p.md")
    assert pkg.acceptance == ("geht",)


def test_plan_errors_point_at_the_place_and_suggest_the_key():
    with pytest.raises(ConfigError, match=r"subtasks\[1\]\.depend_on: unknown key — did you mean depends_on\?"):
        plan_from_data({"package": "p.md", "subtasks": [{"id": "a", "title": "A", "instructions": "x"},
                                                        {"id": "b", "title": "B", "instructions": "y",
                                                         "depend_on": ["a"]}]})
