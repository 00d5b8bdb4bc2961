"""The run report: its Markdown structure on hand-made run records (every status, conflicts, no baseline),
and model-written text that tries to become markup (read back with a real CommonMark + GFM-tables parser)."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from podium.work.contracts import CheckResult, RoleCosts, RunRecord, SubtaskRecord, Verdict
from podium.work.plan import Subtask, WorkPlan
from podium.work.report import diffstat_summary, md_code, md_text, render_report

HOSTILE = ("a | b || c ` code ` <script>alert(1)</script> [link](https://evil.example) ![img](x.png) "
           "<https://evil.example> www.evil.example https://evil.example/x @everyone #12 **bold** _em_ "
           "&amp; &lt;b&gt; \\| \n# heading\n- item\n1. one\n> quote\n---\n| x | y |\n|---|---|")
STATUSES = ["pending", "working", "checking", "reviewing", "approved", "merged", "failed", "rejected",
            "conflict", "blocked"]


def parse(markdown: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(markdown)


def walk(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for token in tokens:
        out.append(token)
        if token.children:
            out += walk(token.children)
    return out


def tables(tokens: list[Token]) -> list[list[list[str]]]:
    """Each table as rows of cell texts (header row first)."""
    result: list[list[list[str]]] = []
    rows: list[list[str]] = []
    cell: list[str] | None = None
    for token in tokens:
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            rows.append([])
        elif token.type in ("th_open", "td_open"):
            cell = []
        elif token.type == "inline" and cell is not None:
            cell.append(token.content)
        elif token.type in ("th_close", "td_close") and cell is not None:
            rows[-1].append("".join(cell))
            cell = None
        elif token.type == "table_close":
            result.append(rows)
    return result


def plan_of(*ids: str, title: str = "Add a temperature converter") -> WorkPlan:
    return WorkPlan(package="Arbeitspaket.md", title=title, subtasks=[
        Subtask(id=i, title=f"Title of {i}", instructions="do it", depends_on=["failed"] if i == "blocked" else [])
        for i in ids])


def record(subtasks: dict[str, SubtaskRecord], **kw: object) -> RunRecord:
    costs = RoleCosts()
    costs.add("conductor", 0.05, 4.0, 3000)
    costs.add("worker", 0.02, 30.0, 20000, calls=6)
    costs.add("reviewer", 0.01, 8.0, 9000, calls=3)
    base: dict[str, object] = {
        "run_id": "r20250101", "package": "Arbeitspaket.md", "repo": "/src/repo", "base": "3f2c1a9b8e7d6c5b4a39",
        "integration_branch": "podium/work/arbeitspaket/r20250101/integration", "preset": "production",
        "worker": "editor", "max_parallel": 2, "started_at": 1_700_000_000.0, "finished_at": 1_700_000_754.0,
        "status": "done", "subtasks": subtasks, "costs": costs, "baseline_cost": 0.32, "budget": 2.5,
        "integration_check": CheckResult(command="python -m pytest -q", passed=True, exit_code=0, seconds=3.5,
                                         output="12 passed")}
    base.update(kw)
    return RunRecord(**base)  # type: ignore[arg-type]


STAT = " temperature.py      | 12 ++++++++----\n tests/test_temp.py |  9 +++++++++\n" \
       " 2 files changed, 17 insertions(+), 4 deletions(-)\n"
OK_CHECK = CheckResult(command="python -m pytest -q", passed=True, exit_code=0, seconds=2.0, output="3 passed")
BAD_CHECK = CheckResult(command="python -m pytest -q", passed=False, exit_code=1, seconds=2.0,
                        output="E   assert convert(0, 'C', 'F') == 32\n1 failed")


def every_status() -> dict[str, SubtaskRecord]:
    recs: dict[str, SubtaskRecord] = {}
    for status in STATUSES:
        recs[status] = SubtaskRecord(id=status, status=status)  # type: ignore[arg-type]
    recs["merged"] = SubtaskRecord(
        id="merged", status="merged", rounds=2, branch="podium/work/a/r/merged", commit="abcdef1234567890",
        checks=[BAD_CHECK, OK_CHECK], verdicts=[Verdict(approved=True, reasons=("meets the criteria",),
                                                        model="mistral-large", provider="mistral", cost=0.01)],
        worker_notes=["added convert", "fixed F to C"], worker_model="gpt-4o-mini", diffstat=STAT,
        cost={"worker": 0.02, "reviewer": 0.01}, seconds=95.0)
    recs["failed"] = SubtaskRecord(id="failed", status="failed", rounds=3, checks=[BAD_CHECK] * 3,
                                   worker_model="gpt-4o-mini", diffstat=STAT, error="checks still failed")
    recs["rejected"] = SubtaskRecord(
        id="rejected", status="rejected", rounds=3, checks=[OK_CHECK], worker_model="gpt-4o-mini", diffstat=STAT,
        verdicts=[Verdict(approved=False, reasons=("deletes a test",), changes=("restore test_x",),
                          model="claude-sonnet", provider="anthropic")])
    recs["conflict"] = SubtaskRecord(id="conflict", status="conflict", rounds=1, checks=[OK_CHECK],
                                     verdicts=[Verdict(approved=True)], conflict_files=["temperature.py", "README.md"],
                                     diffstat=STAT)
    return recs


def test_structure_with_every_status() -> None:
    rec = record(every_status())
    markdown = render_report(rec, plan_of(*STATUSES), baseline_model="claude-opus")
    tokens = parse(markdown)
    headings = [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[0] == ("h1", "Work report: Add a temperature converter")
    h2 = [text for tag, text in headings if tag == "h2"]
    assert h2 == ["Subtasks", "Details", "Cost per role", "Time"]
    assert [text.split(" — ")[0] for tag, text in headings if tag == "h3"] == STATUSES
    subtask_table, cost_table = tables(tokens)
    assert subtask_table[0] == ["Subtask", "Status", "Rounds", "Worker model", "Changes", "Checks", "Review"]
    assert len(subtask_table) == 1 + len(STATUSES)
    assert all(len(row) == 7 for row in subtask_table)
    by_id = {row[0].split(" — ")[0]: row for row in subtask_table[1:]}
    assert by_id["merged"][1:] == ["merged", "2", "gpt-4o-mini", "2 files, +17 -4", "1 passed, 1 failed",
                                   "approved (mistral-large)"]
    assert by_id["rejected"][1] == "rejected by review" and by_id["rejected"][6] == "changes requested (claude-sonnet)"
    assert by_id["pending"][4:] == ["no changes", "not run", "not reviewed"]
    assert [row[0] for row in cost_table] == ["Role", "conductor", "worker", "reviewer", "**Total**"]
    assert cost_table[1][1:] == ["1", "3,000", "$0.0500", "4.0 s"]
    assert cost_table[4][1:] == ["10", "32,000", "**$0.0800**", "42.0 s"]
    assert "**Outcome:** finished. 1 of 10 subtasks merged into `podium/work/arbeitspaket/r20250101/integration`" \
        in markdown
    assert "1 conflict" in markdown and "1 rejected by review" in markdown and "1 blocked" in markdown
    assert "Integration check: passed in 3.5 s: `python -m pytest -q`" in markdown
    assert "- Saving: 75 % cheaper than all calls on claude-opus ($0.0800 against $0.3200)" in markdown
    assert "- Budget: $0.0800 of $2.50 spent (3 %)" in markdown
    assert "wall time 12 min 34 s" in markdown


def test_details_diffstat_failed_check_review_conflict_error() -> None:
    markdown = render_report(record(every_status()), plan_of(*STATUSES))
    sections = markdown.split("\n### ")
    merged = next(s for s in sections if s.startswith("merged"))
    assert "```\n temperature.py      | 12 ++++++++----" in merged  # the diffstat block, as git wrote it
    assert "Last check: passed" in merged and "Its output" not in merged  # a passing check's output stays out
    assert "Review 1 of 1 by mistral-large (mistral): **approved**" in merged and "- meets the criteria" in merged
    assert "- round 2: fixed F to C" in merged and "Cost: worker $0.0200, reviewer $0.0100." in merged
    failed = next(s for s in sections if s.startswith("failed"))
    assert "Last check: failed (exit 1)" in failed
    assert "```\nE   assert convert(0, 'C', 'F') == 32\n1 failed\n```" in failed
    assert "Error: checks still failed" in failed
    rejected = next(s for s in sections if s.startswith("rejected"))
    assert "**changes requested**" in rejected and "- deletes a test" in rejected and "- restore test\\_x" in rejected
    blocked = next(s for s in sections if s.startswith("blocked"))
    assert "Not started: it depends on failed (failed), which did not merge." in blocked
    conflict = next(s for s in sections if s.startswith("conflict"))
    assert "never force-resolved" in conflict and "- temperature.py" in conflict and "- README.md" in conflict


def test_no_baseline_no_budget_unfinished_and_notes() -> None:
    rec = record({"a": SubtaskRecord(id="a", status="working")}, baseline_cost=None, budget=None,
                 finished_at=None, status="interrupted", integration_check=None,
                 notes=["fell back from gpt-4o to mistral-large twice"])
    markdown = render_report(rec, plan_of("a", "b"))
    assert "Saving against running every call on the conductor's model: not known" in markdown
    assert "- Budget: none set; $0.0800 spent" in markdown
    assert "- Not finished" in markdown and "interrupted (it can be resumed" in markdown
    assert "Integration check: not run" in markdown
    assert "## Notes\n\n- fell back from gpt-4o to mistral-large twice" in markdown
    rows = tables(parse(markdown))[0]
    assert [r[1] for r in rows[1:]] == ["working", "pending"]  # b is not in the record yet: pending


def test_a_dearer_run_and_a_zero_baseline_say_so() -> None:
    dear = render_report(record({}, baseline_cost=0.04), plan_of("a"))
    assert "100 % dearer than all calls on the conductor's model" in dear
    zero = render_report(record({}, baseline_cost=0.0), plan_of("a"))
    assert "Saving: not known" in zero


def test_a_failed_integration_check_shows_its_output() -> None:
    check = CheckResult(command="make test", passed=False, exit_code=None, seconds=600, output="hung", timed_out=True)
    markdown = render_report(record({}, integration_check=check, status="failed"), plan_of("a"))
    assert "Integration check: did not finish in time in 10 min 0 s: `make test`" in markdown
    assert "```\nhung\n```" in markdown


def inert(markdown: str) -> list[Token]:
    """Parse and assert no link, image, HTML or autolink came out of it."""
    tokens = walk(parse(markdown))
    bad = [t for t in tokens if t.type in ("link_open", "image", "html_inline", "html_block")]
    assert not bad, bad
    return tokens


def test_hostile_model_text_stays_text() -> None:
    hostile_verdict = Verdict(approved=False, reasons=(HOSTILE,), changes=(HOSTILE,), model=HOSTILE,
                              provider=HOSTILE)
    recs = {"x": SubtaskRecord(id="x", status="rejected", rounds=1, verdicts=[hostile_verdict], worker_model=HOSTILE,
                               worker_notes=[HOSTILE], error=HOSTILE, conflict_files=[HOSTILE],
                               diffstat="```\n" + HOSTILE + "\n````",
                               checks=[CheckResult(command=HOSTILE, passed=False, exit_code=1, seconds=1,
                                                   output="`````\n" + HOSTILE)])}
    plan = WorkPlan(package="p.md", title=HOSTILE[:190], subtasks=[
        Subtask(id="x", title=HOSTILE[:200], instructions="i"), Subtask(id="y", title="plain", instructions="i")])
    markdown = render_report(record(recs, notes=[HOSTILE], preset=HOSTILE), plan)
    tokens = inert(markdown)
    # the source outside code blocks and code spans (where GFM would autolink URLs and GitHub link mentions)
    inline = "\n".join(re.sub(r"(`+).*?\1", "", t.content) for t in tokens if t.type == "inline")
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script" not in html and "<a " not in html and "<img" not in html
    for raw in ("<script>", "https://", "www.evil", "](", "@everyone", "#12", "*bold", "_em", "&amp;"):
        assert not re.search(r"(?<!\\)" + re.escape(raw), inline), raw
    subtask_table = tables(tokens)[0]
    assert len(subtask_table) == 3 and all(len(row) == 7 for row in subtask_table)
    headings = [t for t in tokens if t.type == "heading_open"]
    assert [h.tag for h in headings] == ["h1", "h2", "h2", "h3", "h3", "h2", "h2", "h2"]
    # the code blocks hold the hostile text whole: the fence was longer than any backtick run inside
    fences = [t for t in tokens if t.type == "fence"]
    assert any(HOSTILE in f.content for f in fences)
    assert any(f.content.startswith("```\n") for f in fences)


def test_md_text_reads_back_as_the_same_text() -> None:
    text = "a | b ` <b>x</b> [l](u) *s* _e_ #3 @me \\ & www.x.org http://y"
    [paragraph] = [t for t in walk(parse(md_text(text))) if t.type == "text"][:1]
    rendered = "".join(t.content for t in walk(parse(md_text(text))) if t.type == "text")
    assert rendered == text, paragraph
    assert md_code("a ``b`` c") == "```a ``b`` c```" and md_code("`x`") == "`` `x` ``"


def test_diffstat_summary() -> None:
    assert diffstat_summary(STAT) == "2 files, +17 -4"
    assert diffstat_summary(" a | 1 +\n 1 file changed, 1 insertion(+)\n") == "1 file, +1 -0"
    assert diffstat_summary(" 1 file changed, 2 deletions(-)") == "1 file, +0 -2"
    assert diffstat_summary("") == "no changes"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reasons=st.lists(st.text(max_size=300), min_size=1, max_size=4), title=st.text(min_size=1, max_size=200),
       model=st.text(max_size=100), n=st.integers(min_value=1, max_value=4))
def test_arbitrary_model_text_never_breaks_the_table(reasons: list[str], title: str, model: str, n: int) -> None:
    ids = [f"s{i}" for i in range(n)]
    plan = WorkPlan(package="p.md", title=title, subtasks=[
        Subtask(id=i, title=title, instructions="i") for i in ids])
    verdict = Verdict(approved=False, reasons=tuple(reasons), changes=tuple(reasons), model=model)
    recs = {i: SubtaskRecord(id=i, status="rejected", worker_model=model, verdicts=[verdict],
                             worker_notes=reasons, error=reasons[0], conflict_files=reasons) for i in ids}
    markdown = render_report(record(recs, notes=reasons), plan)
    tokens = inert(markdown)
    subtask_table, cost_table = tables(tokens)
    assert len(subtask_table) == 1 + n and all(len(row) == 7 for row in subtask_table)
    assert [row[0].split(" — ")[0] for row in subtask_table[1:]] == ids
    assert len(cost_table) == 5
    assert [t.tag for t in tokens if t.type == "heading_open"].count("h3") == n


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp")),
                    max_size=200))
def test_md_text_shows_exactly_the_text_it_was_given(text: str) -> None:
    expected = " ".join(text.split())
    tokens = walk(parse(md_text(text, limit=1000)))
    assert not [t for t in tokens if t.type not in ("paragraph_open", "paragraph_close", "inline", "text")]
    assert "".join(t.content for t in tokens if t.type == "text") == expected
