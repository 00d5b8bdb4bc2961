"""The Markdown report of a work run: what each subtask changed, what its checks and its reviewer said,
what every role cost, and the saving against running everything on the conductor's model.

Much of what it shows was written by models (subtask titles, review reasons, worker notes, error text) or
by code models wrote (check output, file names in a diffstat). None of it may become markup: inline text is
collapsed to one line, cut to a bound and has every character that Markdown, GFM or HTML would act on
escaped (pipes cannot add table cells, brackets and ``://`` cannot make links, ``<`` cannot open HTML, ``@``
and ``#`` cannot ping people or link issues); multi-line text (diffstats, check output) goes in code fences
longer than any run of backticks inside it, so it cannot close its fence.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable

from podium.work.contracts import ROLES, CheckResult, RunRecord, SubtaskRecord, Verdict
from podium.work.plan import Subtask, WorkPlan

CELL_CHARS = 80  # characters of model-written text in a table cell
ITEM_CHARS = 600  # of one reason, change, note or error in the details
MAX_ITEMS = 20  # reasons, changes, notes or conflict files listed per subtask
OUTPUT_CHARS = 3_000  # of a failed check's output tail
DIFFSTAT_LINES = 40  # of a diffstat block

_SPACE = re.compile(r"[\s\u0085\u2028\u2029]+")
# control characters, zero-width characters and bidirectional overrides (they can make text read otherwise)
_INVISIBLE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_ESCAPE = re.compile(r"([\\`*_\[\]<>&|~#@!{}])")
_LEADING = re.compile(r"^(\d+)([.)])|^([-+=])")  # list items, ordered lists, setext underlines at a line's start

STATUS_WORDS = {
    "pending": "pending", "working": "working", "checking": "checking", "reviewing": "reviewing",
    "approved": "approved (not merged)", "merged": "merged", "failed": "failed", "rejected": "rejected by review",
    "conflict": "conflict", "blocked": "blocked",
}
RUN_WORDS = {
    "running": "still running", "done": "finished", "failed": "failed",
    "interrupted": "interrupted (it can be resumed from its plan)",
    "over_budget": "stopped: the budget was spent", "past_deadline": "stopped: the deadline passed",
}


def md_text(text: object, limit: int = ITEM_CHARS) -> str:
    """``text`` as inert inline Markdown: one line, at most ``limit`` characters (before escaping)."""
    flat = _SPACE.sub(" ", _INVISIBLE.sub("", str(text))).strip()
    if len(flat) > limit:
        flat = flat[: max(limit - 1, 0)].rstrip() + "…"
    escaped = _ESCAPE.sub(r"\\\1", flat)
    escaped = escaped.replace("://", r"\:\/\/")
    escaped = re.sub(r"(?i)\b(www)\.", r"\1\\.", escaped)
    return _LEADING.sub(lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"\\{m.group(3)}", escaped)


def md_cell(text: object, limit: int = CELL_CHARS) -> str:
    return md_text(text, limit) or " "


def md_block(text: str, info: str = "") -> str:
    """``text`` in a code fence it cannot close."""
    body = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).rstrip("\n")
    longest = max((len(m.group(0)) for m in re.finditer(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def money(value: float) -> str:
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"


def duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


_STAT = re.compile(r"(\d+) files? changed(?:, (\d+) insertions?\(\+\))?(?:, (\d+) deletions?\(-\))?")


def diffstat_summary(diffstat: str) -> str:
    """``git diff --stat``'s last line, short: ``2 files, +10 -3``."""
    match = _STAT.search(diffstat)
    if match is None:
        return "no changes" if not diffstat.strip() else "changed"
    files, plus, minus = match.group(1), match.group(2) or "0", match.group(3) or "0"
    return f"{files} file{'s' if files != '1' else ''}, +{plus} -{minus}"


def _checks_summary(checks: list[CheckResult]) -> str:
    if not checks:
        return "not run"
    passed = sum(c.passed for c in checks)
    failed = len(checks) - passed
    parts = [f"{passed} passed"] if passed else []
    if failed:
        parts.append(f"{failed} failed")
    return ", ".join(parts)


def _verdict_summary(verdicts: list[Verdict]) -> str:
    if not verdicts:
        return "not reviewed"
    last = verdicts[-1]
    word = "approved" if last.approved else "changes requested"
    return f"{word} ({md_cell(last.model, 40)})" if last.model else word


def _check_line(check: CheckResult) -> str:
    return f"{check.outcome} in {duration(check.seconds)}: {md_code(check.command)}"


def md_code(text: str, limit: int = 200) -> str:
    """A short value (a command, a branch, a path) as an inline code span: one line, bounded, delimited by a
    run of backticks longer than any inside it (so it cannot close early). Not for table cells."""
    flat = _SPACE.sub(" ", _INVISIBLE.sub("", text)).strip()
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    if not flat:
        return "` `"
    ticks = "`" * (max((len(m.group(0)) for m in re.finditer(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def _bullets(items: Iterable[str], prefix: str = "") -> list[str]:
    values = [v for v in items if str(v).strip()]
    lines = [f"- {prefix}{md_text(v)}" for v in values[:MAX_ITEMS]]
    if len(values) > MAX_ITEMS:
        lines.append(f"- … and {len(values) - MAX_ITEMS} more")
    return lines


def _subtasks(record: RunRecord, plan: WorkPlan) -> list[tuple[Subtask | None, SubtaskRecord]]:
    """Plan order; a subtask the record has not reached yet is pending; one the plan lacks comes last."""
    rows: list[tuple[Subtask | None, SubtaskRecord]] = [
        (s, record.subtasks.get(s.id) or SubtaskRecord(id=s.id)) for s in plan.subtasks]
    known = {s.id for s in plan.subtasks}
    rows += [(None, r) for sid, r in record.subtasks.items() if sid not in known]
    return rows


def _outcome(record: RunRecord, rows: list[tuple[Subtask | None, SubtaskRecord]]) -> list[str]:
    counts = Counter(r.status for _, r in rows)
    merged = counts.get("merged", 0)
    others = ", ".join(f"{n} {STATUS_WORDS.get(status, status)}" for status, n in sorted(counts.items())
                       if status != "merged")
    lines = [
        f"**Outcome:** {RUN_WORDS.get(record.status, md_text(record.status, 40))}. "
        f"{merged} of {len(rows)} subtask{'s' if len(rows) != 1 else ''} merged into "
        f"{md_code(record.integration_branch)}" + (f"; {others}." if others else "."),
        "",
        f"- Package: {md_code(record.package)} in {md_code(record.repo)}, "
        f"from commit {md_code(record.base[:12])}",
        f"- Run {md_code(record.run_id)}: preset {md_text(record.preset, 40)}, "
        f"worker {md_text(record.worker, 40)}, up to {record.max_parallel} at once",
    ]
    if record.plan_file:
        lines.append(f"- Plan: {md_code(record.plan_file)}")
    check = record.integration_check
    if check is None:
        lines.append("- Integration check: not run")
    else:
        lines.append(f"- Integration check: {_check_line(check)}")
        if not check.passed and check.output.strip():
            lines += ["", md_block(check.output[-OUTPUT_CHARS:])]
    return lines


def _table(rows: list[tuple[Subtask | None, SubtaskRecord]]) -> list[str]:
    lines = ["| Subtask | Status | Rounds | Worker model | Changes | Checks | Review |",
             "|---|---|---:|---|---|---|---|"]
    for subtask, rec in rows:
        title = md_text(subtask.title, CELL_CHARS) if subtask is not None else ""
        name = md_cell(rec.id, 40) + (f" — {title}" if title else "")
        cells = [name, STATUS_WORDS.get(rec.status, md_cell(rec.status, 30)), str(rec.rounds),
                 md_cell(rec.worker_model or "—", 50), md_cell(diffstat_summary(rec.diffstat)),
                 _checks_summary(rec.checks), _verdict_summary(rec.verdicts)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _details(subtask: Subtask | None, rec: SubtaskRecord, statuses: dict[str, str]) -> list[str]:
    named = md_text(subtask.title, 200) if subtask is not None else ""
    title = f" — {named}" if named else "" if subtask is not None else " (not in the plan)"
    lines = [f"### {md_text(rec.id, 40)}{title}", "",
             f"Status: **{STATUS_WORDS.get(rec.status, md_text(rec.status, 30))}** after {rec.rounds} "
             f"round{'s' if rec.rounds != 1 else ''}"
             + (f", in {duration(rec.seconds)}" if rec.seconds else "")
             + (f"; branch {md_code(rec.branch)}" if rec.branch else "")
             + (f" at {md_code(rec.commit[:12])}" if rec.commit else "") + "."]
    if rec.cost:
        spent = ", ".join(f"{md_text(role, 20)} {money(c)}" for role, c in rec.cost.items())
        lines += ["", f"Cost: {spent}."]
    if rec.status == "blocked" and subtask is not None and subtask.depends_on:
        waits = ", ".join(f"{md_text(d, 40)} ({STATUS_WORDS.get(s, md_text(s, 30))})"
                          for d, s in ((d, statuses.get(d, "pending")) for d in subtask.depends_on))
        lines += ["", f"Not started: it depends on {waits}, which did not merge."]
    if rec.diffstat.strip():
        stat = rec.diffstat.rstrip("\n").splitlines()
        if len(stat) > DIFFSTAT_LINES:
            stat = [*stat[: DIFFSTAT_LINES - 1], f"… {len(stat) - DIFFSTAT_LINES + 1} more lines", stat[-1]]
        lines += ["", "Changes:", "", md_block("\n".join(stat))]
    if rec.checks:
        last = rec.checks[-1]
        lines += ["", f"Last check: {_check_line(last)}"]
        if not last.passed and last.output.strip():
            tail = last.output[-OUTPUT_CHARS:]
            cut = len(last.output) - len(tail)
            lines += ["", f"Its output{f' (the last {len(tail):,} characters)' if cut else ''}:", "",
                      md_block(tail)]
    for i, verdict in enumerate(rec.verdicts, 1):
        by = f" by {md_text(verdict.model, 60)}" if verdict.model else ""
        where = f" ({md_text(verdict.provider, 40)})" if verdict.provider else ""
        word = "approved" if verdict.approved else "changes requested"
        lines += ["", f"Review {i} of {len(rec.verdicts)}{by}{where}: **{word}**"]
        if verdict.reasons:
            lines += ["", "Reasons:", "", *_bullets(verdict.reasons)]
        if verdict.changes:
            lines += ["", "Changes asked for:", "", *_bullets(verdict.changes)]
    if rec.status == "conflict" or rec.conflict_files:
        lines += ["", "Did not merge cleanly into the integration branch (left for a person to resolve; never "
                  "force-resolved). Conflicting files:", ""]
        lines += _bullets(rec.conflict_files) or ["- (git named none)"]
    if rec.worker_notes:
        lines += ["", "Worker:", ""]
        lines += [f"- round {i}: {md_text(note)}" for i, note in enumerate(rec.worker_notes[:MAX_ITEMS], 1)]
    if rec.error:
        lines += ["", f"Error: {md_text(rec.error)}"]
    return lines


def _costs(record: RunRecord, baseline_model: str | None) -> list[str]:
    costs = record.costs
    roles = list(ROLES) + sorted((set(costs.cost) | set(costs.calls)) - set(ROLES))
    lines = ["| Role | Calls | Tokens | Cost | Time in calls |", "|---|---:|---:|---:|---:|"]
    for role in dict.fromkeys(roles):
        lines.append(f"| {md_cell(role, 30)} | {costs.calls.get(role, 0):,} | {costs.tokens.get(role, 0):,} | "
                     f"{money(costs.cost.get(role, 0.0))} | {duration(costs.seconds.get(role, 0.0))} |")
    total = costs.total
    lines.append(f"| **Total** | {sum(costs.calls.values()):,} | {sum(costs.tokens.values()):,} | "
                 f"**{money(total)}** | {duration(sum(costs.seconds.values()))} |")
    lines.append("")
    if record.budget:
        lines.append(f"- Budget: {money(total)} of {money(record.budget)} spent "
                     f"({total / record.budget * 100:.0f} %)")
    else:
        lines.append(f"- Budget: none set; {money(total)} spent")
    on = f" on {md_text(baseline_model, 80)}" if baseline_model else " on the conductor's model"
    if record.baseline_cost is None:
        lines.append("- Saving against running every call on the conductor's model: not known")
    elif record.baseline_cost <= 0:
        lines.append(f"- Saving: not known (the same calls{on} would have cost {money(record.baseline_cost)})")
    else:
        saving = (record.baseline_cost - total) / record.baseline_cost * 100
        comparison = f"{saving:.0f} % cheaper" if saving >= 0 else f"{-saving:.0f} % dearer"
        lines.append(f"- Saving: {comparison} than all calls{on} "
                     f"({money(total)} against {money(record.baseline_cost)})")
    return lines


def render_report(record: RunRecord, plan: WorkPlan, *, baseline_model: str | None = None) -> str:
    """The run's report as Markdown. ``baseline_model`` names the conductor's model in the saving line
    (default: a ``baseline_model`` attribute of the record, if it has one)."""
    baseline_model = baseline_model or getattr(record, "baseline_model", None)
    rows = _subtasks(record, plan)
    title = plan.title or record.package
    lines = [f"# Work report: {md_text(title, 200)}", "", *_outcome(record, rows), "", "## Subtasks", "",
             *_table(rows), "", "## Details"]
    statuses: dict[str, str] = {r.id: r.status for _, r in rows}
    for subtask, rec in rows:
        lines += ["", *_details(subtask, rec, statuses)]
    lines += ["", "## Cost per role", "", *_costs(record, baseline_model), "", "## Time", ""]
    lines.append(f"- Started {_when(record.started_at)}")
    if record.finished_at is not None:
        lines.append(f"- Finished {_when(record.finished_at)}: wall time "
                     f"{duration(record.finished_at - record.started_at)}")
    else:
        lines.append("- Not finished")
    if record.notes:
        lines += ["", "## Notes", "", *_bullets(record.notes)]
    return "\n".join(lines) + "\n"
