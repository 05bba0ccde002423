"""The jury dashboard's two pages, rendered inside the dashboard notebook's kernel.

The notebook (`dashboard.ipynb`) calls `warm_up()` in its first cell, which a preheated
kernel runs before any request (imports, the store, the call, a first plotly figure),
and `render(query_string)` in its second cell, once Voilà hands it the request's query
string. `render` checks the token against the store, then shows the call page (the
ranking) or, with `submission=CALL/ID`, that submission's page and its scoring form.

Pages only read the store and stored artifacts; nothing here executes a submission.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from workbench.dashboards.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from workbench.errors import NotFoundError

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.jury import Juror
    from workbench.results import ResultRow
    from workbench.store import Store
    from workbench.workspace import Workspace

log = logging.getLogger(__name__)

CALL_ENV = "WORKBENCH_CALL"
LANG_ENV = "WORKBENCH_LANG"
PHASES = ("data", "train", "inference", "baseline", "evaluate", "untagged")
MAX_PREDICTION_POINTS = 1500
# The look of plotly's "plotly_white" template, set explicitly on the dashboard's figures.
_GRID = {"gridcolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "linecolor": "#EBF0F8"}
LIGHT: dict[str, Any] = {
    "plot_bgcolor": "white",
    "paper_bgcolor": "white",
    "font": {"color": "#2a3f5f"},
    "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3"],
    "xaxis": dict(_GRID),
    "yaxis": dict(_GRID),
    "hovermode": "closest",
}

STYLE = """
<style>
.wb-page { font-family: system-ui, sans-serif; font-size: 14px; color: #1b1b1b; }
.wb-page h1 { font-size: 22px; margin: 0 0 4px 0; }
.wb-page h2 { font-size: 17px; margin: 18px 0 6px 0; }
.wb-muted { color: #555; }
.wb-notice { background: #fff6d6; border-left: 4px solid #e0b000; padding: 6px 10px; }
.wb-denied { background: #fde7e7; border-left: 4px solid #c00; padding: 10px 14px; }
.wb-page table.wb-table { border-collapse: collapse; width: 100%; font-size: 13px;
  table-layout: auto; margin: 0; }
.wb-page table.wb-table th, .wb-page table.wb-table td { border-bottom: 1px solid #ddd;
  padding: 3px 6px; text-align: left !important; vertical-align: top; max-width: 22em; }
.wb-page table.wb-table th { background: #f2f4f7; position: sticky; top: 0; cursor: pointer; }
.wb-page table.wb-table td.num { text-align: right !important;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
.wb-table input { width: 100%; box-sizing: border-box; font-size: 12px; }
.wb-scroll { max-height: 70vh; overflow: auto; border: 1px solid #ddd; }
.wb-ok { color: #11702f; } .wb-bad { color: #b00020; } .wb-warn { color: #8a5a00; }
.wb-badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 12px;
  background: #eee; }
.wb-badge.wb-conflict { background: #fde7e7; color: #b00020; }
.wb-badge.wb-nc { background: #fff0cc; color: #8a5a00; }
.wb-output { border-left: 3px solid #ccd; margin: 6px 0; padding: 2px 8px; overflow: auto;
  max-height: 480px; }
.wb-output pre { white-space: pre-wrap; margin: 0; font-size: 12px; }
.wb-output-image { max-width: 100%; }
</style>
"""

SORT_SCRIPT = """
<script>
(function () {
  var table = document.getElementById("wb-ranking");
  if (!table || table.dataset.ready) { return; }
  table.dataset.ready = "1";
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var count = document.getElementById("wb-shown");
  var heads = table.tHead.rows[0].cells;
  var filters = table.tHead.rows[1].querySelectorAll("input");
  function key(row, col) {
    var cell = row.cells[col];
    var v = cell.getAttribute("data-sort");
    if (v === null) { return cell.textContent.trim().toLowerCase(); }
    var n = parseFloat(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      var dir = th.dataset.dir === "asc" ? "desc" : "asc";
      Array.prototype.forEach.call(heads, function (h) { delete h.dataset.dir; });
      th.dataset.dir = dir;
      rows.sort(function (a, b) {
        var x = key(a, col), y = key(b, col);
        var empty = (x === "" || x === "-") - (y === "" || y === "-");
        if (empty) { return empty; }
        if (x < y) { return dir === "asc" ? -1 : 1; }
        if (x > y) { return dir === "asc" ? 1 : -1; }
        return 0;
      });
      var frag = document.createDocumentFragment();
      rows.forEach(function (r) { frag.appendChild(r); });
      body.appendChild(frag);
    });
  });
  function applyFilters() {
    var wanted = Array.prototype.map.call(filters, function (f) {
      return f.value.trim().toLowerCase();
    });
    var shown = 0;
    rows.forEach(function (r) {
      var ok = wanted.every(function (w, col) {
        return !w || r.cells[col].textContent.toLowerCase().indexOf(w) !== -1;
      });
      r.style.display = ok ? "" : "none";
      shown += ok;
    });
    count.textContent = shown;
  }
  Array.prototype.forEach.call(filters, function (f) {
    f.addEventListener("input", applyFilters);
  });
})();
</script>
"""


@dataclass
class Context:
    workspace: Workspace
    store: Store
    call: Call
    lang: str


_context: Context | None = None


def _show_html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


def figure_html(spec: dict[str, Any]) -> str:
    """A chart's placeholder and the call that draws it once with the page's plotly.js.

    The figure's JSON travels in an attribute, HTML-escaped: none of its strings (an
    applicant's included) can close the element or open a script. `wbPlot` is defined
    by the page template (`share/voila/templates/workbench/static/workbench.js`).
    """
    data = html.escape(json.dumps(spec, separators=(",", ":")), quote=True)
    return (
        f'<div class="wb-plot" data-figure="{data}"></div>'
        "<script>wbPlot(document.currentScript.previousElementSibling);</script>"
    )


def show_figure(figure: Any) -> None:
    """Display a plotly figure: an object of the dashboard's own, or an applicant's JSON.

    The dashboard's own figures are sent without plotly.py's layout template: their few
    styles are set explicitly (`LIGHT`), and a template makes the browser apply defaults
    for every trace type it lists. An applicant's figure (a dict) is drawn as it was saved.
    """
    if isinstance(figure, dict):
        spec = figure
    else:
        spec = json.loads(figure.to_json())
        spec.get("layout", {}).pop("template", None)
    _show_html(figure_html(spec))


def context() -> Context:
    """The page context from the environment `workbench serve` sets; opened once per kernel."""
    global _context
    if _context is None:
        from workbench.store import open_store
        from workbench.workspace import Workspace

        workspace = Workspace.from_env()
        call = workspace.call(os.environ[CALL_ENV])
        lang = os.environ.get(LANG_ENV, DEFAULT_LANGUAGE)
        store = open_store(workspace.db_url)
        _context = Context(workspace, store, call, lang if lang in LANGUAGES else "fr")
    return _context


def warm_up() -> None:
    """Everything that does not depend on the request, done before it arrives."""
    import ipywidgets  # noqa: F401
    import nbformat  # noqa: F401
    import nh3  # noqa: F401
    import plotly.graph_objects as go

    import workbench.jury
    import workbench.results

    ctx = context()
    figure = go.Figure([go.Scatter(x=[0, 1], y=[0, 1]), go.Bar(x=["a"], y=[1])])
    figure.update_layout(title="warm-up", xaxis_title="x", yaxis_title="y")
    figure.to_json()
    workbench.jury.jury_summary(ctx.store, ctx.call.id)  # first query: connection, mappers


def render(query_string: str | None) -> None:
    """Render the page the query string asks for, for the juror whose token it carries."""
    from workbench.jury import AccessDenied, authenticate

    ctx = context()
    params = parse_qs(query_string or "")
    token = next(iter(params.get("token") or []), None)
    try:
        juror = authenticate(ctx.store, ctx.call.id, token)
    except AccessDenied:
        _show_html(
            f'{STYLE}<div class="wb-page wb-denied" id="wb-denied">'
            f"<h1>{t('access_denied', ctx.lang)}</h1>"
            f"<p>{t('access_denied_text', ctx.lang)}</p></div>"
        )
        return
    assert token is not None
    submission = next(iter(params.get("submission") or []), None)
    try:
        if submission:
            submission_page(ctx, juror, token, submission)
        else:
            call_page(ctx, juror, token)
    except NotFoundError:
        _show_html(f'<div class="wb-page wb-denied">{t("not_found", ctx.lang)}</div>')
    except Exception:
        log.exception("dashboard page failed")
        _show_html(f'<div class="wb-page wb-denied">{t("error", ctx.lang)}</div>')


# ---------------------------------------------------------------- formatting helpers


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}"


def fmt_gain(gain: float | None) -> str:
    if gain is None:
        return "-"
    if math.isinf(gain):
        return "+∞" if gain > 0 else "-∞"
    return f"{gain * 100:+.1f} %"


def status_label(status: str, lang: str) -> str:
    key = f"status_{status}"
    return t(key, lang) if key in _status_keys() else status


def _status_keys() -> set[str]:
    from workbench.dashboards.i18n import TEXTS

    return {k for k in TEXTS if k.startswith("status_")}


def reproduction_label(result: dict[str, Any] | None, lang: str) -> tuple[str, str]:
    """(text, css class) of a reproduction verdict."""
    if not result:
        return t("not_reproduced_yet", lang), "wb-muted"
    if result["verdict"] == "reproduced":
        return t("reproduced", lang), "wb-ok"
    metrics = sorted({d["metric"] for d in result.get("differences", [])})
    shown = ", ".join(metrics[:3]) + (", ..." if len(metrics) > 3 else "")
    return t("diverged", lang, metrics=shown), "wb-bad"


def page_link(token: str, submission: str | None = None) -> str:
    query = {"token": token}
    if submission:
        query["submission"] = submission
    return "?" + urlencode(query)


def header(ctx: Context, juror: Juror) -> str:
    call = ctx.call
    notice = ""
    if call.notice is not None:
        notice = f'<p class="wb-notice">{esc(call.notice.get(ctx.lang))}</p>'
    return (
        f"<h1>{esc(call.title.get(ctx.lang))}</h1>"
        f'<p class="wb-muted">{esc(call.funder)} · {esc(call.programme)} · '
        f'<span id="wb-juror">{esc(t("signed_in_as", ctx.lang, name=juror.name))}</span></p>'
        f"{notice}"
    )


# ---------------------------------------------------------------- the call page


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both less energy (x) and more gain (y), by x."""
    front: list[tuple[float, float]] = []
    best = -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def ranking_rows(results: list[ResultRow], juror: Juror) -> list[dict[str, Any]]:
    """One flat row per submission for the ranking table and the Pareto chart."""
    rows = []
    for r in results:
        score = r.score
        energy = r.measured_energy()
        rows.append(
            {
                "submission": r.submission,
                "id": r.submission_id,
                "team": r.team,
                "template": r.template,
                "status": r.status,
                "metric": score.metric if score else None,
                "ai": score.ai if score else None,
                "baseline": score.baseline if score else None,
                "gain": r.gain,
                "disagrees": bool(score and score.disagrees),
                "wh_1000": energy.wh_per_1000_predictions if energy else None,
                "co2e_g": energy.co2e_g if energy else None,
                "method": energy.method if energy else None,
                "comparable": r.comparable,
                "comparable_reason": r.comparable_reason,
                "reproduction": r.reproduction,
                "jurors": r.jurors,
                "jury_score": r.jury_score,
                "conflict": juror.has_conflict(r.submission),
            }
        )
    return rows


def pareto_figure(rows: list[dict[str, Any]], lang: str) -> Any:
    import plotly.graph_objects as go

    def usable(row: dict[str, Any]) -> bool:
        return (
            row["status"] == "succeeded"
            and row["gain"] is not None
            and math.isfinite(row["gain"])
            and row["wh_1000"] is not None
        )

    plotted = [r for r in rows if usable(r)]
    figure = go.Figure()
    for comparable, name, symbol in (
        (True, t("pareto_points", lang), "circle"),
        (False, t("pareto_points_nc", lang), "x"),
    ):
        group = [r for r in plotted if bool(r["comparable"]) is comparable]
        if not group:
            continue
        figure.add_trace(
            go.Scatter(
                x=[r["wh_1000"] for r in group],
                y=[r["gain"] * 100 for r in group],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 8, "opacity": 0.75},
                text=[f"{r['team']} ({r['id']})" for r in group],
                hovertemplate="%{text}<br>%{x:.3g} Wh<br>%{y:+.1f} %<extra></extra>",
            )
        )
    front = pareto_front([(r["wh_1000"], r["gain"] * 100) for r in plotted if r["comparable"]])
    if front:
        figure.add_trace(
            go.Scatter(
                x=[0.0] + [x for x, _ in front],
                y=[0.0] + [y for _, y in front],
                mode="lines",
                line={"shape": "hv", "color": "#c0392b", "width": 2},
                name=t("pareto_front", lang),
                hoverinfo="skip",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=[0],
            y=[0],
            mode="markers+text",
            marker={"symbol": "diamond", "size": 12, "color": "black"},
            text=[t("pareto_baseline", lang)],
            textposition="top right",
            name=t("pareto_baseline", lang),
        )
    )
    figure.update_layout(
        title=t("pareto_title", lang),
        xaxis_title=t("pareto_x", lang),
        yaxis_title=t("pareto_y", lang),
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        **LIGHT,
    )
    figure.update_xaxes(rangemode="tozero", zeroline=True)
    figure.update_yaxes(zeroline=True, zerolinecolor="#888")
    return figure


def ranking_table(rows: list[dict[str, Any]], token: str, lang: str) -> str:
    columns = [
        ("col_submission", None),
        ("col_team", None),
        ("col_template", None),
        ("col_status", None),
        ("col_metric", None),
        ("col_ai", "num"),
        ("col_baseline", "num"),
        ("col_gain", "num"),
        ("col_wh_1000", "num"),
        ("col_co2", "num"),
        ("col_method", None),
        ("col_reproduction", None),
        ("col_jurors", "num"),
        ("col_jury_score", "num"),
    ]
    heads = "".join(f"<th>{esc(t(key, lang))}</th>" for key, _ in columns)
    filters = "".join(
        f'<th><input type="search" placeholder="{esc(t("filter", lang))}" '
        f'aria-label="{esc(t(key, lang))}"></th>'
        for key, _ in columns
    )
    body = []
    for r in rows:
        gain = r["gain"]
        gain_class = "" if gain is None else ("wb-ok" if gain > 0 else "wb-bad")
        gain_note = (
            f' <span title="{esc(t("disagrees", lang))}">(!)</span>' if r["disagrees"] else ""
        )
        if r["method"] is None:
            method = f'<span class="wb-muted">{esc(t("not_measured", lang))}</span>'
        elif r["comparable"]:
            method = esc(r["method"])
        else:
            method = (
                f'{esc(r["method"])} <span class="wb-badge wb-nc" '
                f'title="{esc(r["comparable_reason"])}">{esc(t("not_comparable", lang))}</span>'
            )
        repro_text, repro_class = reproduction_label(r["reproduction"], lang)
        conflict = (
            f' <span class="wb-badge wb-conflict">{esc(t("conflict", lang))}</span>'
            if r["conflict"]
            else ""
        )
        status_class = "wb-ok" if r["status"] == "succeeded" else "wb-bad"
        link = esc(page_link(token, r["submission"]))
        gain_sort = "" if gain is None or not math.isfinite(gain) else f"{gain:.9g}"
        cells = [
            f'<td data-sort="{esc(r["id"])}"><a href="{link}" target="_self">{esc(r["id"])}</a>'
            f"{conflict}</td>",
            f"<td>{esc(r['team'])}</td>",
            f"<td>{esc(r['template'])}</td>",
            f'<td class="{status_class}">{esc(status_label(r["status"], lang))}</td>',
            f"<td>{esc(r['metric'] or '-')}</td>",
            f'<td class="num" data-sort="{_sort(r["ai"])}">{fmt(r["ai"])}</td>',
            f'<td class="num" data-sort="{_sort(r["baseline"])}">{fmt(r["baseline"])}</td>',
            f'<td class="num {gain_class}" data-sort="{gain_sort}">'
            f"{fmt_gain(gain)}{gain_note}</td>",
            f'<td class="num" data-sort="{_sort(r["wh_1000"])}">{fmt(r["wh_1000"], 3)}</td>',
            f'<td class="num" data-sort="{_sort(r["co2e_g"])}">{fmt(r["co2e_g"], 3)}</td>',
            f"<td>{method}</td>",
            f'<td class="{repro_class}">{esc(repro_text)}</td>',
            f'<td class="num" data-sort="{r["jurors"]}">{r["jurors"]}</td>',
            f'<td class="num" data-sort="{_sort(r["jury_score"])}">{fmt(r["jury_score"], 3)}</td>',
        ]
        body.append(f'<tr data-submission="{esc(r["submission"])}">{"".join(cells)}</tr>')
    return (
        f'<p class="wb-muted"><span id="wb-shown">{len(rows)}</span> / '
        f"{esc(t('n_submissions', lang, n=len(rows)))} {esc(t('shown', lang))} · "
        f"{esc(t('sort_hint', lang))}</p>"
        f'<div class="wb-scroll"><table class="wb-table" id="wb-ranking">'
        f"<thead><tr>{heads}</tr><tr>{filters}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _sort(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.9g}"


def call_page(ctx: Context, juror: Juror, token: str) -> None:
    from workbench.results import call_results

    results = call_results(ctx.store, ctx.call.id, ctx.call.protocol.reference_machine)
    rows = ranking_rows(results, juror)
    rows.sort(key=lambda r: (r["gain"] is None, -(r["gain"] or 0.0)))
    _show_html(f'{STYLE}<div class="wb-page" id="wb-call-page">{header(ctx, juror)}</div>')
    show_figure(pareto_figure(rows, ctx.lang))
    _show_html(
        f'<div class="wb-page"><h2>{esc(t("ranking", ctx.lang))}</h2>'
        f"{ranking_table(rows, token, ctx.lang)}</div>{SORT_SCRIPT}"
    )


# ---------------------------------------------------------------- the submission page


def latest_comparability(store: Store, call_id: str, run_id: str, reference: str | None) -> str:
    """Why a run's energy is not comparable with the call's other latest runs ('' if it is).

    Reads only the indexed energy columns, not the records, so it stays cheap.
    """
    from sqlalchemy import select

    from workbench.runner.metering import comparability
    from workbench.store import RunRow

    query = (
        select(
            RunRow.submission_key,
            RunRow.run_id,
            RunRow.energy_method,
            RunRow.machine_fingerprint,
        )
        .where(RunRow.call_id == call_id)
        .order_by(RunRow.started_at, RunRow.run_id)
    )
    with store.session() as s:
        latest = {key: (rid, method, machine) for key, rid, method, machine in s.execute(query)}
    runs = list(latest.values())
    energies: list[dict[str, Any] | None] = [
        {"measured": method is not None, "method": method, "machine_fingerprint": machine}
        for _rid, method, machine in runs
    ]
    reasons = dict(
        zip([rid for rid, _, _ in runs], comparability(energies, reference), strict=True)
    )
    return reasons.get(run_id, "")


def predictions_figure(records: dict[str, Any], lang: str) -> Any | None:
    import plotly.graph_objects as go

    table = (records.get("predictions") or {}).get("value")
    if not isinstance(table, dict):
        return None
    columns = table.get("columns") or []
    if not {"truth", "ai", "baseline"} <= set(columns):
        return None
    data = table.get("data") or []
    step = max(1, math.ceil(len(data) / MAX_PREDICTION_POINTS))
    data = data[::step]
    x_column = next((c for c in ("time", "date", "timestamp") if c in columns), None)
    if x_column is not None:
        x = [row[columns.index(x_column)] for row in data]
    else:
        index = table.get("index") or list(range(len(table.get("data") or [])))
        x = list(index)[::step]
    figure = go.Figure()
    for column, colour, width in (
        ("truth", "#222222", 2),
        ("ai", "#1f77b4", 1.5),
        ("baseline", "#ff7f0e", 1.5),
    ):
        figure.add_trace(
            go.Scatter(
                x=x,
                y=[row[columns.index(column)] for row in data],
                mode="lines",
                name=t(column, lang),
                line={"color": colour, "width": width},
            )
        )
    figure.update_layout(
        title=t("predictions_title", lang),
        xaxis_title=x_column or t("row", lang),
        height=360,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        **LIGHT,
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def energy_figure(energy: dict[str, Any], lang: str) -> Any | None:
    import plotly.graph_objects as go

    phases = energy.get("phases") or {}
    if not energy.get("measured") or not phases:
        return None
    names = [p for p in PHASES if p in phases] + sorted(set(phases) - set(PHASES))
    labels = [t(f"phase_{p}", lang) if p in PHASES else p for p in names]
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=[phases[p] * 1000 for p in names],
            marker_color="#2e7d32",
            hovertemplate="%{x}: %{y:.3g} Wh<extra></extra>",
        )
    )
    figure.update_layout(
        title=t("energy_title", lang),
        xaxis_title=t("phase", lang),
        yaxis_title="Wh",
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        **LIGHT,
    )
    return figure


def metrics_table(record: dict[str, Any], lang: str) -> str:
    metrics: dict[str, float] = record.get("metrics") or {}
    score = record.get("score") or {}
    names = sorted({n.split(".", 1)[1] for n in metrics if n.startswith(("ai.", "baseline."))})
    rows = []
    if score:
        gain = score.get("gain_vs_baseline")
        gain_class = "wb-ok" if (gain or 0) > 0 else "wb-bad"
        note = (
            f' <span class="wb-warn">({esc(t("disagrees", lang))})</span>'
            if score.get("disagrees")
            else ""
        )
        rows.append(
            f"<tr><td><b>{esc(score['metric'])}</b></td>"
            f'<td class="num">{fmt(score["ai"])}</td><td class="num">{fmt(score["baseline"])}</td>'
            f'<td class="num {gain_class}">{fmt_gain(gain)}{note}</td></tr>'
        )
    for name in names:
        if score and name == score.get("metric"):
            continue
        rows.append(
            f"<tr><td>{esc(name)}</td><td class='num'>{fmt(metrics.get(f'ai.{name}'))}</td>"
            f"<td class='num'>{fmt(metrics.get(f'baseline.{name}'))}</td><td></td></tr>"
        )
    others = {n: v for n, v in metrics.items() if not n.startswith(("ai.", "baseline."))}
    for name, value in sorted(others.items()):
        if name == "gain_vs_baseline":
            continue
        rows.append(
            f"<tr><td>{esc(name)}</td><td class='num'>{fmt(value)}</td><td></td><td></td></tr>"
        )
    return (
        f'<table class="wb-table" id="wb-metrics" style="width:auto"><thead><tr>'
        f"<th>{esc(t('metric', lang))}</th><th>{esc(t('ai', lang))}</th>"
        f"<th>{esc(t('baseline', lang))}</th><th>{esc(t('col_gain', lang))}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def answers_html(ctx: Context, document: dict[str, Any]) -> str:
    items = []
    answers = document.get("answers") or {}
    for question in ctx.call.questionnaire:
        value = answers.get(question.id)
        if value is None or value == "":
            text = f'<span class="wb-muted">{esc(t("no_answer", ctx.lang))}</span>'
        elif isinstance(value, bool):
            text = esc(t("yes" if value else "no", ctx.lang))
        else:
            text = esc(value)
        items.append(f"<dt><b>{esc(question.text.get(ctx.lang))}</b></dt><dd>{text}</dd>")
    return f"<dl>{''.join(items)}</dl>"


def history_table(runs: list[Any], lang: str) -> str:
    rows = []
    for run in reversed(runs):
        status_class = "wb-ok" if run.status == "succeeded" else "wb-bad"
        started = run.started_at.strftime("%Y-%m-%d %H:%M") if run.started_at else "-"
        message = (run.record or {}).get("message", "")
        rows.append(
            f"<tr><td>{esc(run.run_id)}</td>"
            f'<td class="{status_class}">{esc(status_label(run.status, lang))}</td>'
            f"<td>{esc(started)}</td><td class='num'>{fmt(run.duration_s, 3)}</td>"
            f"<td>{esc(message[:200])}</td></tr>"
        )
    return (
        f'<table class="wb-table" id="wb-history"><thead><tr><th>{esc(t("run", lang))}</th>'
        f"<th>{esc(t('col_status', lang))}</th><th>{esc(t('started', lang))}</th>"
        f"<th>{esc(t('duration', lang))}</th><th>{esc(t('message', lang))}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def show_outputs(ctx: Context, record: dict[str, Any]) -> None:
    from pathlib import Path

    from workbench.dashboards.outputs import read_items

    _show_html(f'<div class="wb-page"><h2>{esc(t("outputs", ctx.lang))}</h2></div>')
    path = Path(record.get("notebook") or "")
    if record.get("notebook") and not path.is_absolute():
        path = ctx.workspace.root / path
    items = read_items(path) if record.get("notebook") and path.is_file() else None
    if items is None:
        _show_html(f'<p class="wb-page wb-muted">{esc(t("outputs_missing", ctx.lang))}</p>')
        return
    chunk: list[str] = []
    last_cell = None

    def flush() -> None:
        if chunk:
            _show_html(f'<div class="wb-page wb-applicant">{"".join(chunk)}</div>')
            chunk.clear()

    for item in items:
        if item.cell != last_cell:
            chunk.append(f'<p class="wb-muted">{esc(t("cell", ctx.lang, n=item.cell))}</p>')
            last_cell = item.cell
        if item.kind == "plotly":
            flush()
            show_figure(item.content)
        elif item.kind == "text":
            chunk.append(f'<div class="wb-output"><pre>{esc(item.content)}</pre></div>')
        elif item.kind == "withheld":
            note = t("output_withheld", ctx.lang, kind=item.content)
            chunk.append(f'<div class="wb-output wb-muted">{esc(note)}</div>')
        else:  # html already sanitised, image tags built from checked base64
            chunk.append(f'<div class="wb-output">{item.content}</div>')
    flush()


def submission_page(ctx: Context, juror: Juror, token: str, key: str) -> None:
    from workbench.store import SubmissionRow

    with ctx.store.session() as s:
        sub = s.get(SubmissionRow, key)
    if sub is None or sub.call_id != ctx.call.id:
        raise NotFoundError(key)
    lang = ctx.lang
    runs = ctx.store.runs(submission_key=key)
    latest = runs[-1] if runs else None
    record: dict[str, Any] = latest.record if latest is not None else {}
    back = esc(page_link(token))
    conflict = (
        f' <span class="wb-badge wb-conflict">{esc(t("conflict", lang))}</span>'
        if juror.has_conflict(key)
        else ""
    )
    _show_html(
        f'{STYLE}<div class="wb-page" id="wb-submission-page">'
        f'<p><a href="{back}" target="_self" id="wb-back">{esc(t("back", lang))}</a></p>'
        f"{header(ctx, juror)}"
        f'<h1 id="wb-title">{esc(sub.title)}{conflict}</h1>'
        f"<p>{esc(t('organisation', lang))} : <b>{esc(sub.organisation)}</b> · "
        f"{esc(t('team', lang))} : <b>{esc(sub.team)}</b> · "
        f"{esc(t('template', lang))} : {esc(sub.template)}</p>"
        f"<h2>{esc(t('questionnaire', lang))}</h2>{answers_html(ctx, sub.document)}"
        f"<h2>{esc(t('ai_vs_baseline', lang))}</h2>"
        + (metrics_table(record, lang) if latest else f"<p>{esc(t('no_run', lang))}</p>")
        + "</div>"
    )
    if latest is not None:
        figure = predictions_figure(record.get("records") or {}, lang)
        if figure is not None:
            show_figure(figure)
        energy = record.get("energy") or {}
        _show_html(energy_html(ctx, latest, energy))
        energy_fig = energy_figure(energy, lang)
        if energy_fig is not None:
            show_figure(energy_fig)
    repro = ctx.store.latest_reproductions(ctx.call.id).get(key)
    repro_text, repro_class = reproduction_label(repro, lang)
    _show_html(
        f'<div class="wb-page"><h2>{esc(t("history", lang))}</h2>{history_table(runs, lang)}'
        f"<h2>{esc(t('reproducibility', lang))}</h2>"
        f'<p class="{repro_class}" id="wb-reproduction">{esc(repro_text)}</p></div>'
    )
    scoring_form(ctx, juror, token, key)
    if latest is not None:
        show_outputs(ctx, record)


def energy_html(ctx: Context, run: Any, energy: dict[str, Any]) -> str:
    lang = ctx.lang
    parts = [f'<div class="wb-page"><h2>{esc(t("energy", lang))}</h2>']
    if not energy.get("measured"):
        parts.append(f'<p class="wb-warn">{esc(t("not_measured", lang))}')
        if energy.get("reason"):
            parts.append(f" ({esc(energy['reason'])})")
        parts.append("</p></div>")
        return "".join(parts)
    reason = latest_comparability(
        ctx.store, ctx.call.id, run.run_id, ctx.call.protocol.reference_machine
    )
    total = energy.get("total_kwh")
    wh = fmt(total * 1000 if total is not None else None, 3)
    parts.append(f"<p>{esc(t('total_wh', lang, wh=wh, co2=fmt(energy.get('co2e_g'), 3)))} · ")
    parts.append(f"{esc(t('col_wh_1000', lang))} : {fmt(energy.get('wh_per_1000_predictions'), 3)}")
    parts.append(f'</p><p id="wb-method">{esc(t("method", lang, method=energy.get("method")))}')
    if reason:
        parts.append(
            f' <span class="wb-badge wb-nc" title="{esc(reason)}">'
            f"{esc(t('not_comparable', lang))}: {esc(reason)}</span>"
        )
    parts.append("</p></div>")
    return "".join(parts)


# ---------------------------------------------------------------- scoring


def _scale_options(scale: Any) -> list[float]:
    count = round((scale.max - scale.min) / scale.step)
    return [round(scale.min + i * scale.step, 9) for i in range(count + 1)]


def saves_table(rows: list[Any], ctx: Context) -> str:
    if not rows:
        return ""
    lang = ctx.lang
    heads = "".join(f"<th>{esc(c.label.get(lang))}</th>" for c in ctx.call.rubric)
    body = []
    for row in reversed(rows):
        values = "".join(
            f"<td class='num'>{fmt(row.values.get(c.id))}</td>" for c in ctx.call.rubric
        )
        body.append(
            f"<tr><td>{esc(_local_time(row.created_at))}</td>{values}"
            f"<td class='num'>{fmt(row.weighted_total, 3)}</td><td>{esc(row.comment)}</td></tr>"
        )
    return (
        f'<div class="wb-page"><h3>{esc(t("your_history", lang))}</h3>'
        f'<table class="wb-table" id="wb-saves"><thead><tr><th>{esc(t("saved_at", lang))}</th>'
        f"{heads}<th>{esc(t('weighted_total', lang))}</th><th>{esc(t('comment', lang))}</th>"
        f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _local_time(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def scoring_form(ctx: Context, juror: Juror, token: str, key: str) -> None:
    """One input per rubric criterion, a comment and Save; conflicts see a notice instead.

    The juror is the one the token proved at render time, and `save_score` proves it
    again against the store on every save; the browser only sends the widget values.
    """
    import ipywidgets as widgets
    from IPython.display import display

    from workbench.errors import WorkbenchError
    from workbench.jury import history, save_score

    lang = ctx.lang
    _show_html(f'<div class="wb-page"><h2>{esc(t("scoring", lang))}</h2></div>')
    if juror.has_conflict(key):
        _show_html(
            f'<p class="wb-page wb-denied" id="wb-conflict">{esc(t("conflict_notice", lang))}</p>'
        )
        return
    mine = history(ctx.store, key, juror.id)
    previous = mine[-1] if mine else None
    inputs: dict[str, Any] = {}
    rows = []
    for criterion in ctx.call.rubric:
        options = _scale_options(criterion.scale)
        current = previous.values.get(criterion.id) if previous else None
        if len(options) <= 11:
            field: Any = widgets.ToggleButtons(
                options=[(f"{v:g}", v) for v in options],
                value=current if current in options else None,
                style={"button_width": "42px"},
            )
        else:
            field = widgets.BoundedFloatText(
                value=current if current is not None else criterion.scale.min,
                min=criterion.scale.min,
                max=criterion.scale.max,
                step=criterion.scale.step,
                layout={"width": "120px"},
            )
        field.add_class(f"wb-criterion-{criterion.id}")
        inputs[criterion.id] = field
        label = widgets.HTML(
            f"<b>{esc(criterion.label.get(lang))}</b> "
            f'<span class="wb-muted">({criterion.weight:.0%})</span>',
            layout={"width": "420px"},
        )
        rows.append(widgets.HBox([label, field]))
    comment = widgets.Textarea(
        value=previous.comment if previous else "",
        placeholder=t("comment", lang),
        layout={"width": "720px", "height": "80px"},
    )
    comment.add_class("wb-comment")
    save = widgets.Button(description=t("save", lang), button_style="primary", icon="")
    save.add_class("wb-save")
    status = widgets.HTML()
    status.add_class("wb-status")
    saves = widgets.HTML(saves_table(mine, ctx))
    if previous is not None:
        status.value = esc(
            t(
                "saved",
                lang,
                time=_local_time(previous.created_at),
                total=fmt(previous.weighted_total, 3),
            )
        )

    def on_save(_button: Any) -> None:
        values = {cid: field.value for cid, field in inputs.items()}
        missing = [c.label.get(lang) for c in ctx.call.rubric if values.get(c.id) is None]
        if missing:
            reason = "; ".join(t("not_scored", lang, label=m) for m in missing)
            status.value = (
                f'<span class="wb-bad">{esc(t("save_failed", lang, reason=reason))}</span>'
            )
            return
        try:
            row = save_score(ctx.store, ctx.call, token, key, values, comment.value)
        except WorkbenchError as exc:
            status.value = f'<span class="wb-bad">{esc(t("save_failed", lang, reason=exc))}</span>'
            return
        saved = t("saved", lang, time=_local_time(row.created_at), total=fmt(row.weighted_total, 3))
        status.value = f'<span class="wb-ok" id="wb-saved">{esc(saved)}</span>'
        saves.value = saves_table(history(ctx.store, key, juror.id), ctx)

    save.on_click(on_save)
    display(widgets.VBox([*rows, comment, widgets.HBox([save, status]), saves]))
