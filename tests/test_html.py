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


# ---------------------------------------------------------------- units, unknowns, intervals

UNTAGGED_REASON = "no cell is tagged train or inference"


def _figures_row(sub_id: str, kwh: float, **update: Any) -> ResultRow:
    """A succeeded row of `kwh` in total; `update` sets the row's fields, `energy` its energy's."""
    row = _row(sub_id, "succeeded")
    assert row.energy is not None
    energy = row.energy.model_copy(
        update={"total_kwh": kwh, "co2e_g": kwh * 56.0, "wh_per_1000_predictions": kwh * 2.5e3}
        | update.pop("energy", {})
    )
    return row.model_copy(update={"energy": energy, **update})


def _untagged(sub_id: str) -> ResultRow:
    """A run with no phase tag: its AI and per-prediction energy are unknown, never 0."""
    unknown = {"ai_kwh": UNTAGGED_REASON, "wh_per_1000_predictions": UNTAGGED_REASON}
    return _figures_row(
        sub_id,
        4.0e-6,
        flags=["phases_untagged"],
        energy={"wh_per_1000_predictions": None, "ai_kwh": None, "unknown": unknown},
    )


def _repeated() -> list[ResultRow]:
    """a and b overlap on energy, c does not; d ran once; u has untagged phases."""
    return [
        _figures_row("a", 4.2e-6, repeats=3, total_kwh_ci95=(3.9e-6, 4.6e-6),
                     wh_per_1000_predictions_ci95=(9.0e-3, 1.2e-2)),
        _figures_row("b", 4.5e-6, repeats=3, total_kwh_ci95=(4.4e-6, 4.8e-6)),
        _figures_row("c", 9.0e-6, repeats=3, total_kwh_ci95=(8.5e-6, 9.5e-6)),
        _figures_row("d", 4.3e-6),
        _untagged("u"),
    ]  # fmt: skip


def test_overlapping_energy_intervals_are_not_distinguishable() -> None:
    from workbench.charts import energy_overlaps

    rows = _repeated()
    assert energy_overlaps(rows) == {"test-call/a": ["test-call/b"], "test-call/b": ["test-call/a"]}
    other_machine = rows[1].model_copy(update={"comparable_reason": "other machine"})
    assert energy_overlaps([rows[0], other_machine]) == {}  # not compared at all


def test_the_pareto_chart_has_readable_axes_error_bars_and_puts_unknowns_apart() -> None:
    from workbench.charts import pareto_figure

    figure = pareto_figure(_repeated(), "fr")
    # per 1,000 predictions: 10.5, 11.3, 22.5, 10.8 mWh; the axis says so, in mWh, not "20µ"
    assert figure.layout.xaxis.title.text == "Énergie / 1 000 prédictions (mWh)"
    assert figure.layout.xaxis.exponentformat == "none"
    assert figure.layout.separators == ",\u202f"
    (points,) = [trace for trace in figure.data if trace.name == "Dossiers"]
    assert list(points.text) == ["Team a (a)", "Team b (b)", "Team c (c)", "Team d (d)"]
    assert list(points.x) == pytest.approx([10.5, 11.25, 22.5, 10.75])
    assert list(points.error_x.arrayminus) == pytest.approx([1.5, None, None, None])
    assert list(points.error_x.array) == pytest.approx([1.5, None, None, None])
    assert points.customdata[0] == "10,5 mWh [9,00 ; 12,0]<br>+50,0 %"
    assert points.customdata[3] == "10,8 mWh (1 exécution : pas d'intervalle)<br>+50,0 %"
    # The untagged run is listed under the chart, never drawn at 0 nor on the front.
    texts = [str(text) for trace in figure.data for text in (trace.text or ())]
    assert not any("(u)" in text for text in texts)
    (note,) = figure.layout.annotations
    assert "Hors du graphique" in note.text
    assert "Team u (u) : phases non étiquetées : énergie de l'IA inconnue" in note.text
    front = next(trace for trace in figure.data if trace.name == "Front de Pareto")
    assert 0.0 in front.x and min(x for x in front.x if x > 0) == pytest.approx(10.5)


def test_a_run_with_an_unknown_energy_per_prediction_is_apart_with_its_reason() -> None:
    from workbench.charts import pareto_apart, pareto_figure
    from workbench.runner.metering import unknown_figures

    # The meter's own wording for a run that recorded no count of predictions.
    said = unknown_figures({"inference"}, {}, 0.1)["wh_per_1000_predictions"]
    reason = {"wh_per_1000_predictions": said}
    row = _figures_row("p", 4.0e-6, energy={"wh_per_1000_predictions": None, "unknown": reason})
    ((apart, why),) = pareto_apart([row, _figures_row("q", 1e-6)], "en")
    assert apart is row
    assert why == "Energy / 1,000 predictions: unknown: number of predictions not recorded"
    figure = pareto_figure([row.model_copy(update={"team": "<a href='x'>T</a>"})], "en")
    assert figure.layout.xaxis.title.text == "Energy / 1,000 predictions (Wh)"
    note = figure.layout.annotations[0].text
    assert "Off the chart" in note and "&lt;a href=&#x27;x&#x27;&gt;T&lt;/a&gt; (p): Energy" in note


def test_the_ranking_shows_units_intervals_overlaps_and_unknowns() -> None:
    from workbench.charts import energy_overlaps
    from workbench.html.render import TableUnits, macros

    rows = _repeated()
    links = {r.submission: f"?submission={r.submission}" for r in rows}
    markup = str(
        macros("dashboard/call.html.j2").ranking(
            rows, set(), links, energy_overlaps(rows), TableUnits.of(rows), "fr"
        )
    )
    for header in ("Énergie (mWh)", "Énergie / 1 000 prédictions (mWh)", "Émissions (µg CO2e)"):
        assert f"<th>{header}</th>" in markup
    a = markup[markup.index('data-submission="test-call/a"') :]
    a = a[: a.index("</tr>")]
    assert '4,20 mWh</span> <span class="wb-ci">[3,90 ; 4,60]</span>' in a
    assert "≈ indiscernable" in a and "indiscernable en énergie de b" in a
    assert '10,5 mWh</span> <span class="wb-ci">[9,00 ; 12,0]</span>' in a
    d = markup[markup.index('data-submission="test-call/d"') :]
    assert d[: d.index("</tr>")].count("(1 exécution : pas d&#39;intervalle)") == 1
    u = markup[markup.index('data-submission="test-call/u"') :]
    u = u[: u.index("</tr>")]
    assert "phases non étiquetées : énergie de l&#39;IA inconnue" in u
    assert "inconnu : aucune cellule étiquetée train ou inference" in u
    assert 'data-sort="4.2e-06"' in a  # sorting still on the stored number


def test_the_submission_pages_energy_block_in_units_with_unknowns_and_flags() -> None:
    from workbench.html.render import energy_lines, macros

    row = _untagged("u")
    assert row.energy is not None
    energy = row.energy.model_dump(mode="json")
    lines = energy_lines(energy, "en")
    assert ("Total", "4.00 mWh") in lines and ("Emissions", "224 µg CO2e") in lines
    assert ("AI (training and inference)", "unknown: no cell tagged train or inference") in lines
    markup = str(macros("dashboard/submission.html.j2").energy(energy, lines, row.flags, "", "en"))
    assert 'id="wb-untagged"' in markup and "phases untagged: AI energy unknown" in markup
    assert "0 Wh" not in markup
