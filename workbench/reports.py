"""Reports for the funding committee: one set of tables, written as xlsx, HTML or CSV.

Every number comes from the same rows as `workbench results --format json` (the latest
run of each submission, its recomputed score, its energy and its reproduction verdict),
plus the jury's scores and the dossiers' states and audit log from the store.

Ranking: the jury's weighted score (highest first), ties broken by the measured
`gain_vs_baseline` (highest first), then by energy (lowest first); submissions nobody
scored yet come after, in the same order of gain and energy.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls import Call
    from workbench.store import Store
    from workbench.workspace import Workspace

FORMATS = ("xlsx", "html", "csv")


@dataclass
class ReportData:
    """The report's tables, with stable English column names; labels are applied on output."""

    call: Call
    lang: str
    generated_at: dt.datetime
    ranking: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    energy: list[dict[str, Any]] = field(default_factory=list)
    reproducibility: list[dict[str, Any]] = field(default_factory=list)
    jury: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)

    def sheets(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "ranking": self.ranking,
            "metrics": self.metrics,
            "energy": self.energy,
            "reproducibility": self.reproducibility,
            "jury": self.jury,
            "states": self.states,
            "audit": self.audit,
        }


def _rank_key(row: dict[str, Any]) -> tuple[float, float, float]:
    def value(x: Any, missing: float) -> float:
        return missing if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    return (
        -value(row["jury_score"], -math.inf),
        -value(row["gain_vs_baseline"], -math.inf),
        value(row["energy_kwh"], math.inf),
    )


def jury_table(call: Call, by_submission: dict[str, dict[int, Any]]) -> list[dict[str, Any]]:
    """Per submission and criterion: mean, median and spread of the jurors' current scores."""
    threshold = call.disagreement_spread
    rows = []
    for key in sorted(by_submission):
        scores = list(by_submission[key].values())
        totals = [s.weighted_total for s in scores]
        for criterion in call.rubric:
            values = [float(s.values[criterion.id]) for s in scores if criterion.id in s.values]
            if not values:
                continue
            spread = max(values) - min(values)
            rows.append(
                {
                    "submission": key,
                    "criterion": criterion.id,
                    "weight": criterion.weight,
                    "jurors": len(values),
                    "mean": statistics.fmean(values),
                    "median": statistics.median(values),
                    "spread": spread,
                    "disagreement": spread > threshold,
                    "weighted_total": statistics.fmean(totals),
                }
            )
    return rows


def report_data(store: Store, call: Call, lang: str = "fr") -> ReportData:
    """Gather every table of a call's report from the store."""
    from workbench.dossiers import history
    from workbench.jury import current_scores
    from workbench.results import call_results

    data = ReportData(call=call, lang=lang, generated_at=dt.datetime.now(dt.UTC))
    results = call_results(store, call.id, call.protocol.reference_machine)
    scores = current_scores(store, call.id)
    data.jury = jury_table(call, scores)
    for row in results:
        key = row.submission
        score = row.score
        energy = row.measured_energy()
        reproduction = row.reproduction or {}
        transitions = history(store, key)
        state = row.state
        data.ranking.append(
            {
                "submission": key,
                "team": row.team,
                "template": row.template,
                "state": state,
                "status": row.status,
                "metric": score.metric if score else None,
                "ai": score.ai if score else None,
                "baseline": score.baseline if score else None,
                "gain_vs_baseline": row.gain,
                "disagrees": score.disagrees if score else None,
                "jury_score": row.jury_score,
                "jurors": row.jurors,
                "energy_kwh": energy.total_kwh if energy else None,
                "wh_per_1000_predictions": energy.wh_per_1000_predictions if energy else None,
                "co2e_g": energy.co2e_g if energy else None,
                "method": energy.method if energy else None,
                "comparable": row.comparable if row.energy is not None else None,
                "comparable_reason": row.comparable_reason,
                "reproduction": row.verdict,
                "run_id": row.run_id,
            }
        )
        for name, value in sorted(row.metrics.items()):
            data.metrics.append(
                {"submission": key, "run_id": row.run_id, "metric": name, "value": value}
            )
        if energy is not None:
            for phase, kwh in sorted(energy.phases.items()):
                data.energy.append(
                    {
                        "submission": key,
                        "run_id": row.run_id,
                        "phase": phase,
                        "energy_kwh": kwh,
                        "method": energy.method,
                        "machine": energy.machine_fingerprint,
                        "comparable": row.comparable,
                    }
                )
        elif row.energy is not None:
            data.energy.append(
                {"submission": key, "run_id": row.run_id, "phase": "total", "energy_kwh": None,
                 "method": None, "machine": None, "comparable": False}
            )  # fmt: skip
        if reproduction:
            data.reproducibility.append(
                {
                    "submission": key,
                    "verdict": reproduction["verdict"],
                    "reference_run": reproduction["reference_run_id"],
                    "runs": ", ".join(reproduction["run_ids"]),
                    "differences": "; ".join(
                        f"{d['metric']}: {d['reference']} -> {d['value']}"
                        if d.get("delta") is not None
                        else f"{d['metric']}: {d.get('reason', '')}"
                        for d in reproduction["differences"]
                    ),
                }
            )
        data.states.append({"submission": key, "state": state, "team": row.team})
        for transition in transitions:
            data.audit.append(
                {
                    "submission": key,
                    "at": transition.at.replace(tzinfo=None),
                    "actor": transition.actor,
                    "from": transition.from_state,
                    "to": transition.to_state,
                    "reason": transition.reason,
                }
            )
    data.ranking.sort(key=_rank_key)
    for position, ranked in enumerate(data.ranking, start=1):
        ranked["rank"] = position
    return data


def label(key: str, lang: str) -> str:
    """A column or section label of the exports, from the workbench's one translation table."""
    from workbench.dashboards.i18n import t

    return t(f"report_{key}", lang)


def _frame(rows: list[dict[str, Any]], lang: str, first: tuple[str, ...] = ()) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    ordered = [c for c in first if c in frame.columns] + [
        c for c in frame.columns if c not in first
    ]
    return frame[ordered].rename(columns={c: label(c, lang) for c in ordered})


_PERCENT = {"gain_vs_baseline"}
_DECIMALS = {"ai", "baseline", "mean", "median", "spread", "weighted_total", "jury_score", "weight"}
_SMALL = {"energy_kwh", "wh_per_1000_predictions", "co2e_g", "value"}


def write_xlsx(data: ReportData, path: Path) -> None:
    """One sheet per topic, frozen header rows, sized columns, number formats."""
    import pandas as pd
    from openpyxl.utils import get_column_letter

    lang = data.lang
    formats = {label(k, lang): "0.0%" for k in _PERCENT}
    formats |= {label(k, lang): "0.00" for k in _DECIMALS}
    formats |= {label(k, lang): "0.000E+00" for k in _SMALL}
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, rows in data.sheets().items():
            first = ("rank",) if name == "ranking" else ()
            frame = _frame(rows, lang, first)
            if frame.empty:
                frame = pd.DataFrame({label("no_rows", lang): []})
            sheet = label(f"sheet_{name}", lang)[:31]
            frame.to_excel(writer, sheet_name=sheet, index=False)
            ws = writer.sheets[sheet]
            ws.freeze_panes = "A2"
            for index, column in enumerate(frame.columns, start=1):
                letter = get_column_letter(index)
                values = [str(column), *(str(v) for v in frame[column].head(200))]
                ws.column_dimensions[letter].width = min(60, max(8, max(map(len, values)) + 2))
                number_format = formats.get(str(column))
                if number_format:
                    for cell in ws[letter][1:]:
                        cell.number_format = number_format


def write_csv(data: ReportData, path: Path) -> None:
    """The ranking table: what a committee sorts and filters in a spreadsheet."""
    _frame(data.ranking, data.lang, ("rank",)).to_csv(path, index=False)


def _table(rows: list[dict[str, Any]], lang: str, first: tuple[str, ...] = ()) -> str:
    if not rows:
        return f"<p>{html.escape(label('no_rows', lang))}</p>"
    columns = [c for c in first if c in rows[0]] + [c for c in rows[0] if c not in first]

    def cell(column: str, value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, bool):
            return html.escape(label("yes" if value else "no", lang))
        if column in _PERCENT and isinstance(value, int | float):
            return f"{value:+.1%}"
        if isinstance(value, float):
            return f"{value:.4g}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(label(c, lang))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(c, row.get(c))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
th { background: #f0f0f0; }
section.submission { page-break-inside: avoid; }
@media print { body { margin: 0.5cm; } section.submission { page-break-before: always; } }
"""


def pareto_html(data: ReportData) -> str:
    """The Pareto chart of gain against energy, inline, with its own plotly.js."""
    from workbench.dashboards.pages import pareto_figure

    rows = [
        {
            "status": r["status"],
            "gain": r["gain_vs_baseline"],
            "wh_1000": r["wh_per_1000_predictions"],
            "comparable": bool(r["comparable"]),
            "team": r["team"],
            "id": r["submission"].split("/", 1)[1],
        }
        for r in data.ranking
    ]
    figure = pareto_figure(rows, data.lang)
    return str(figure.to_html(full_html=False, include_plotlyjs=True, div_id="pareto"))


def write_html(data: ReportData, path: Path) -> None:
    """One self-contained page (plotly.js inline), printable to PDF from a browser."""
    lang = data.lang
    call = data.call
    parts = [
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>",
        f"<title>{html.escape(call.title.get(lang))}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(label('title', lang))}: {html.escape(call.title.get(lang))}</h1>",
        f"<p>{html.escape(call.funder)} · {html.escape(call.programme)} · "
        f"{html.escape(label('generated', lang))} {data.generated_at:%Y-%m-%d %H:%M} UTC</p>",
    ]
    if call.notice is not None:
        parts.append(f"<p><em>{html.escape(call.notice.get(lang))}</em></p>")
    parts += [
        f"<h2 id='ranking'>{html.escape(label('sheet_ranking', lang))}</h2>",
        _table(data.ranking, lang, ("rank",)),
        f"<div class='chart'>{pareto_html(data)}</div>",
    ]
    for row in data.ranking:
        key = row["submission"]
        pick = [r for r in data.metrics if r["submission"] == key]
        parts += [
            f"<section class='submission' id='{html.escape(key)}'>",
            f"<h2>{row['rank']}. {html.escape(key)} — {html.escape(row['team'])}</h2>",
            f"<h3>{html.escape(label('sheet_metrics', lang))}</h3>",
            _table(pick, lang),
            f"<h3>{html.escape(label('sheet_energy', lang))}</h3>",
            _table([r for r in data.energy if r["submission"] == key], lang),
            f"<h3>{html.escape(label('sheet_jury', lang))}</h3>",
            _table([r for r in data.jury if r["submission"] == key], lang),
            f"<h3>{html.escape(label('sheet_reproducibility', lang))}</h3>",
            _table([r for r in data.reproducibility if r["submission"] == key], lang),
            f"<h3>{html.escape(label('sheet_audit', lang))}</h3>",
            _table([r for r in data.audit if r["submission"] == key], lang),
            "</section>",
        ]
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")


def export_report(workspace: Workspace, call_id: str, out: Path, lang: str = "fr") -> Path:
    """Write a call's report to `out`; the format follows its extension."""
    from workbench.store import open_store

    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"{out}: the report format follows the extension: .xlsx, .html or .csv")
    if lang not in ("fr", "en"):
        raise InputError(f"unknown language {lang!r} (fr or en)")
    call = workspace.call(call_id)
    store = open_store(workspace.db_url)
    try:
        data = report_data(store, call, lang)
    finally:
        store.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    {"xlsx": write_xlsx, "html": write_html, "csv": write_csv}[fmt](data, out)
    return out
