"""The workbench's HTML: templates autoescape, hostile values come out escaped, no page or
report queries the database itself, the report stands without the dashboards, and runner
faults are kept off the ranking and the Pareto chart."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, MakeSubmission
from tests.test_reports import _record
from workbench.jury import add_juror, save_score
from workbench.results import ResultRow
from workbench.store import Store, open_store
from workbench.submissions import load_submission
from workbench.workspace import Workspace

PACKAGE = ROOT / "workbench"
TEMPLATES = PACKAGE / "html" / "templates"
HOSTILE = '<script>alert(1)</script>" onmouseover="x'
# Every expression a template may print unescaped, and why.
SAFE_ALLOWED = {
    'static("dashboard.css")': "the dashboards' own stylesheet (package data)",
    'static("ranking.js")': "the ranking's own sorting script (package data)",
    'static("report.css")': "the report's own stylesheet (package data)",
    "item.content": "an applicant's output sanitised by dashboards.outputs (nh3, base64)",
    "chart": "plotly's markup for the report's own figure, its strings JSON-encoded",
}
TAG = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)
SAFE = re.compile(r"^\s*(.*?)\s*\|\s*safe\s*$", re.DOTALL)


def test_templates_autoescape_and_every_safe_is_reviewed() -> None:
    from workbench.html.render import environment

    env = environment()
    assert env.autoescape is True
    found: set[str] = set()
    names = sorted(TEMPLATES.rglob("*.j2"))
    assert len(names) >= 5
    for path in names:
        text = path.read_text(encoding="utf-8")
        for printed, statement in TAG.findall(text):
            assert "safe" not in statement and "autoescape" not in statement, (path, statement)
            if "safe" in printed:
                match = SAFE.match(printed)
                assert match is not None, (path, printed)  # `|safe` last, on a whole value
                found.add(match.group(1))
        env.get_template(str(path.relative_to(TEMPLATES)))  # every template compiles
    assert found <= set(SAFE_ALLOWED), found - set(SAFE_ALLOWED)
    assert found, "the allow-list check must see the templates' |safe"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_report_does_not_depend_on_the_dashboards() -> None:
    for module in ("reports.py", "charts.py", "i18n.py", "html/render.py"):
        imported = _imports(PACKAGE / module)
        assert not {n for n in imported if n.startswith("workbench.dashboards")}, module


def test_pages_and_report_leave_queries_to_the_store() -> None:
    paths = [PACKAGE / "reports.py", *sorted((PACKAGE / "dashboards").rglob("*.py"))]
    for path in paths:
        assert not {n for n in _imports(path) if n.split(".")[0] == "sqlalchemy"}, path
        assert ".session(" not in path.read_text(encoding="utf-8"), path


def test_no_module_of_the_pages_or_report_is_over_600_lines() -> None:
    paths = [PACKAGE / "reports.py", PACKAGE / "charts.py", PACKAGE / "i18n.py"]
    for path in [*paths, *sorted((PACKAGE / "dashboards").rglob("*.py"))]:
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 600, path


# ---------------------------------------------------------------- hostile values


def _hostile_workspace(workspace: Workspace, make_submission: MakeSubmission) -> tuple[str, str]:
    """A scored submission whose team, title, comment and audit reason are hostile."""
    from workbench.dossiers import decide

    call = workspace.call("test-call")
    folder = make_submission("evil", team=HOSTILE, organisation=HOSTILE, title=HOSTILE)
    store = open_store(workspace.db_url)
    try:
        store.register(call, load_submission(folder))
        store.add_run(_record("test-call/evil", 8.0, 10.0, 0.002))
    finally:
        store.close()
    _, token = add_juror(workspace, "test-call", "Ann")
    store = open_store(workspace.db_url)
    try:
        save_score(store, call, token, "test-call/evil", {"benefit": 4, "frugality": 3}, HOSTILE)
    finally:
        store.close()
    decide(workspace, "test-call/evil", "in_review", actor="Lou", reason=HOSTILE)
    return "test-call/evil", token


def _shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Collect what the pages display: HTML outputs, and the HTML of their widgets."""
    import IPython.display
    import ipywidgets

    shown: list[str] = []

    def collect(obj: Any) -> None:
        if hasattr(obj, "children"):
            for child in obj.children:
                collect(child)
        elif isinstance(obj, ipywidgets.HTML):  # a text field's value is not markup
            shown.append(obj.value)
        elif hasattr(obj, "data"):
            shown.append(str(obj.data))

    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_: [collect(o) for o in objs])
    return shown


def _assert_escaped(markup: str) -> None:
    at = markup.find("<script>alert(1)")
    assert at == -1, markup[max(0, at - 300) : at + 50]
    assert '" onmouseover="x' not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup


def _context(workspace: Workspace, store: Store) -> Any:
    from workbench.dashboards.pages.common import Context

    call = workspace.call("test-call")
    hostile_title = call.title.model_copy(update={"fr": HOSTILE})
    return Context(workspace, store, call.model_copy(update={"title": hostile_title}), "fr")


def test_hostile_values_are_escaped_on_both_pages(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.dashboards.pages.call import call_page
    from workbench.dashboards.pages.submission import submission_page
    from workbench.jury import authenticate

    key, token = _hostile_workspace(workspace, make_submission)
    shown = _shown(monkeypatch)
    store = open_store(workspace.db_url)
    try:
        ctx = _context(workspace, store)
        juror = authenticate(store, "test-call", token)
        call_page(ctx, juror, token)
        call_markup = "".join(shown)
        shown.clear()
        submission_page(ctx, juror, token, key)
        submission_markup = "".join(shown)
    finally:
        store.close()
    for markup in (call_markup, submission_markup):
        _assert_escaped(markup)
    assert 'id="wb-ranking"' in call_markup and 'data-submission="test-call/evil"' in call_markup
    assert "&#34; onmouseover=&#34;x" in call_markup  # in a cell, and in the figure's attribute
    assert 'id="wb-saves"' in submission_markup  # the hostile comment is in the saves table
    assert submission_markup.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4


def test_hostile_values_are_escaped_in_the_html_report(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    from workbench.reports import report_data, write_html

    _hostile_workspace(workspace, make_submission)
    call = workspace.call("test-call")
    call = call.model_copy(update={"title": call.title.model_copy(update={"fr": HOSTILE})})
    store = open_store(workspace.db_url)
    try:
        data = report_data(store, call, "fr")
    finally:
        store.close()
    out = tmp_path / "report.html"
    write_html(data, out)
    markup = out.read_text(encoding="utf-8")
    # plotly's own markup carries the team in the figure JSON, with < escaped as \u003c
    _assert_escaped(markup)
    assert markup.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # title x2, team, reason


# ---------------------------------------------------------------- queries


def _add_submissions(workspace: Workspace, make_submission: MakeSubmission, ids: range) -> None:
    """Submissions with a run, a juror's score and an audit log row, through the store."""
    from workbench.store import TransitionRow

    call = workspace.call("test-call")
    _, token = add_juror(workspace, "test-call", f"Juror {ids.start}")
    store = open_store(workspace.db_url)
    try:
        for i in ids:
            key = f"test-call/s{i:03d}"
            store.register(call, load_submission(make_submission(f"s{i:03d}")))
            store.add_run(_record(key, 8.0 + i % 3, 10.0, 0.001 * (1 + i % 4)))
            save_score(store, call, token, key, {"benefit": i % 6, "frugality": 2}, "ok")
            with store.session() as s:  # an audit log row, as dossiers.decide writes it
                s.add(TransitionRow(submission_key=key, from_state="submitted",
                                    to_state="in_review", actor="Lou", reason=""))  # fmt: skip
    finally:
        store.close()


def _report_statements(workspace: Workspace) -> tuple[int, int, int]:
    """(SQL statements, ranked rows, audit rows) of one `report_data`."""
    from sqlalchemy import event

    from workbench.reports import report_data

    store = open_store(workspace.db_url)
    statements: list[str] = []
    event.listen(
        store.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql)
    )
    try:
        data = report_data(store, workspace.call("test-call"))
    finally:
        store.close()
    return len(statements), len(data.ranking), len(data.audit)


def test_the_report_makes_as_many_statements_for_50_submissions_as_for_5(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    _add_submissions(workspace, make_submission, range(5))
    five, ranked, audit = _report_statements(workspace)
    assert (ranked, audit) == (5, 5)
    _add_submissions(workspace, make_submission, range(5, 50))
    fifty, ranked, audit = _report_statements(workspace)
    assert (ranked, audit) == (50, 50)
    assert five == fifty


# ---------------------------------------------------------------- runner faults


def _row(sub_id: str, status: str) -> ResultRow:
    record = _record(f"test-call/{sub_id}", 5.0, 10.0, 0.002)
    return ResultRow(
        submission=f"test-call/{sub_id}",
        team=f"Team {sub_id}",
        organisation="o",
        title="t",
        template="ok",
        state="submitted",
        run_id=record.run_id,
        status=status,
        metrics=record.metrics,
        score=record.score,
        energy=record.energy,
        message="worker lost" if status == "error" else "",
    )


def test_a_runner_fault_has_no_point_on_the_pareto_chart() -> None:
    from workbench.charts import pareto_figure, pareto_point

    good, fault = _row("good", "succeeded"), _row("fault", "error")
    assert pareto_point(good) is not None and pareto_point(fault) is None
    figure = pareto_figure([good, fault], "en")
    texts = [text for trace in figure.data for text in (trace.text or ())]
    assert "Team good (good)" in texts and not any("fault" in str(t) for t in texts)


def test_a_runner_fault_gets_no_rank_in_the_report_and_is_shown_apart(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import workbench.results
    from workbench.reports import report_data, write_csv, write_html

    rows = [_row("good", "succeeded"), _row("fault", "error")]
    monkeypatch.setattr(workbench.results, "call_results", lambda *_args: rows)
    store = open_store(workspace.db_url)
    try:
        data = report_data(store, workspace.call("test-call"), "en")
    finally:
        store.close()
    assert [(r["submission"], r["rank"]) for r in data.ranking] == [("test-call/good", 1)]
    assert [(r["submission"], r["rank"]) for r in data.faults] == [("test-call/fault", None)]
    assert "faults" in data.sheets()
    out = tmp_path / "report.html"
    write_html(data, out)
    markup = out.read_text(encoding="utf-8")
    assert "Runner fault, rerun by the next batch" in markup and "worker lost" in markup
    assert "<h2>1. test-call/good" in markup and "<h2>test-call/fault" in markup
    write_csv(data, tmp_path / "report.csv")
    lines = (tmp_path / "report.csv").read_text(encoding="utf-8").splitlines()
    assert lines[1].startswith("1,test-call/good") and lines[2].startswith(",test-call/fault")
