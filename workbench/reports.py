"""Reports for the funding committee: one set of tables, written as xlsx, HTML or CSV.

Every number comes from the same rows as `workbench results --format json` (the latest
run of each submission, its recomputed score, its energy and its reproduction verdict),
plus the jury's scores and the dossiers' states and audit log from the store.

Ranking: the jury's weighted score (highest first), ties broken by the measured
`gain_vs_baseline` (highest first), then by energy (lowest first); submissions nobody
scored yet come after, in the same order of gain and energy. A run whose status is
`error` (a runner fault, not the team's; the next batch runs it again) gets no rank and
no point on the Pareto chart: such submissions are listed apart, under `faults`.

Labels come from `workbench.i18n`, figures from `workbench.charts`, the HTML from the
`report/report.html.j2` template (autoescaped); every query is a `Store` method.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from workbench.calls import Call
    from workbench.results import ResultRow
    from workbench.store import Store
    from workbench.units import Unit
    from workbench.workspace import Workspace

FORMATS = ("xlsx", "html", "csv")
PRINT_WIDTH_PX = 680  # A4 portrait is 794 CSS px wide; less its margins
RUNNER_FAULT = "error"  # a run status: the runner failed, not the team's notebook
# The columns that hold a figure, and its kind (`workbench.units`): stored in base units,
# shown in one readable unit per column, named in the header.
FIGURES = {
    "energy_kwh": "energy",
    "energy_low": "energy",
    "energy_high": "energy",
    "wh_per_1000_predictions": "energy_per_1000",
    "co2e_g": "carbon",
}
BOUNDS = ("energy_low", "energy_high")  # the 95 % interval of `energy_kwh`
ENERGY_FIELDS = {  # ranking column -> the `Energy` field it shows
    "energy_kwh": "total_kwh",
    "wh_per_1000_predictions": "wh_per_1000_predictions",
    "co2e_g": "co2e_g",
}


@dataclass
class ReportData:
    """The report's tables, with stable English column names; labels are applied on output."""

    call: Call
    lang: str
    generated_at: dt.datetime
    ranking: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)  # runner faults, unranked
    metrics: list[dict[str, Any]] = field(default_factory=list)
    energy: list[dict[str, Any]] = field(default_factory=list)
    reproducibility: list[dict[str, Any]] = field(default_factory=list)
    jury: list[dict[str, Any]] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    # The jury's work: current assignments, syntheses (current, then every save), and
    # every score save's note and message. The report is the committee's, so the private
    # notes for the jury are in it (never in the teams' letters).
    assignments: list[dict[str, Any]] = field(default_factory=list)
    syntheses: list[dict[str, Any]] = field(default_factory=list)
    synthesis_history: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # submission -> answers
    results: list[ResultRow] = field(default_factory=list)  # the rows the tables come from
    # submission -> column -> what a missing figure reads instead: unknown with its
    # reason, or not measured (in the report's language); never 0, never blank
    unknown: dict[str, dict[str, str]] = field(default_factory=dict)
    # submission -> the submissions whose energy intervals overlap its own
    overlaps: dict[str, list[str]] = field(default_factory=dict)

    def sheets(self) -> dict[str, list[dict[str, Any]]]:
        faults = {"faults": self.faults} if self.faults else {}  # a sheet only when needed
        return {
            "ranking": self.ranking,
            **faults,
            "metrics": self.metrics,
            "energy": self.energy,
            "reproducibility": self.reproducibility,
            "jury": self.jury,
            "states": self.states,
            "audit": self.audit,
            "assignments": self.assignments,
            "syntheses": self.syntheses,
            "synthesis_history": self.synthesis_history,
            "messages": self.messages,
        }


def units(data: ReportData) -> dict[str, Unit]:
    """One unit per figure column for the whole report, from every value of that column.

    An interval's bounds take the unit of the figure they bound.
    """
    from workbench.units import scale

    values: dict[str, list[float | None]] = {}
    for rows in data.sheets().values():
        for row in rows:
            for column in FIGURES.keys() & row.keys():
                values.setdefault(column, []).append(row[column])
    chosen = {c: scale(v, FIGURES[c]) for c, v in values.items()}
    for bound in BOUNDS:
        if "energy_kwh" in chosen:
            chosen[bound] = chosen["energy_kwh"]
    return chosen


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


def _spread(by_juror: dict[int, Any]) -> float | None:
    """max - min of the jurors' current weighted totals; None with fewer than two jurors."""
    totals = [score.weighted_total for score in by_juror.values()]
    return max(totals) - min(totals) if len(totals) > 1 else None


def report_data(store: Store, call: Call, lang: str = "fr") -> ReportData:
    """Gather every table of a call's report from the store."""
    from workbench.charts import UNTAGGED, energy_overlaps
    from workbench.feedback import jury_work
    from workbench.i18n import reason_label, t
    from workbench.jury import current_scores
    from workbench.results import call_results
    from workbench.units import unknown

    data = ReportData(call=call, lang=lang, generated_at=dt.datetime.now(dt.UTC))
    results = call_results(store, call.id, call.protocol.reference_machine)
    data.results = results
    data.overlaps = energy_overlaps(results)
    saves = store.scores(call_id=call.id)  # one query, in saving order
    scores = current_scores(store, call.id, saves)
    data.jury = jury_table(call, scores)
    work = jury_work(store, call.id, saves)
    data.assignments, data.syntheses = work.assignments, work.syntheses
    data.synthesis_history, data.messages = work.synthesis_history, work.messages
    current_syntheses = work.proposed
    data.answers = {
        key: document.get("answers") or {}
        for key, document in store.submission_documents(call.id).items()
    }
    transitions: dict[str, list[Any]] = {}
    for transition in store.transitions(call_id=call.id):  # one query, in the log's order
        transitions.setdefault(transition.submission, []).append(transition)
    for row in results:
        key = row.submission
        score = row.score
        energy = row.measured_energy()
        reproduction = row.reproduction or {}
        state = row.state
        if row.status == RUNNER_FAULT:
            data.faults.append(
                {"rank": None, "submission": key, "team": row.team, "template": row.template,
                 "state": state, "status": row.status, "run_id": row.run_id,
                 "message": row.message}
            )  # fmt: skip
        else:
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
                    "spread_total": _spread(scores.get(key, {})),
                    "proposed_decision": current_syntheses.get(key),
                    "energy_kwh": energy.total_kwh if energy else None,
                    "energy_low": row.total_kwh_ci95[0] if row.total_kwh_ci95 else None,
                    "energy_high": row.total_kwh_ci95[1] if row.total_kwh_ci95 else None,
                    "repeats": row.repeats,
                    "wh_per_1000_predictions": energy.wh_per_1000_predictions if energy else None,
                    "co2e_g": energy.co2e_g if energy else None,
                    "method": energy.method if energy else None,
                    "comparable": row.comparable if row.energy is not None else None,
                    "comparable_reason": row.comparable_reason,
                    "reproduction": row.verdict,
                    "overlaps": ", ".join(o.split("/", 1)[1] for o in data.overlaps.get(key, [])),
                    "notes": t("phases_untagged", data.lang) if UNTAGGED in row.flags else "",
                    "run_id": row.run_id,
                }
            )
            if energy is not None:  # measured: a missing figure is unknown, with its reason
                data.unknown[key] = {
                    column: unknown(data.lang, reason_label(energy.unknown.get(name), data.lang))
                    for column, name in ENERGY_FIELDS.items()
                    if getattr(energy, name) is None
                }
            elif row.energy is not None:  # ran, but its energy could not be measured
                why = t("not_measured", data.lang)
                why += f" ({row.energy.reason})" if row.energy.reason else ""
                data.unknown[key] = dict.fromkeys(ENERGY_FIELDS, why)
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
        for transition in transitions.get(key, []):
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
    from workbench.i18n import t

    return t(key, lang)


def header(key: str, lang: str, scaled: dict[str, Unit] | None = None) -> str:
    """A column's header; a figure's names its unit: the column's, else its base unit."""
    from workbench.units import base_unit

    if key not in FIGURES:
        return label(key, lang)
    unit = (scaled or {}).get(key) or base_unit(FIGURES[key])
    return unit.header(label(key, lang))


def _frame(
    rows: list[dict[str, Any]],
    lang: str,
    first: tuple[str, ...] = (),
    scaled: dict[str, Unit] | None = None,
    words: bool = False,
) -> pd.DataFrame:
    """The rows as a table with labelled headers; figures scaled to `scaled`'s units."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    if "rank" in frame.columns:  # runner faults have none: an integer column with blanks
        frame["rank"] = frame["rank"].astype("Int64")
    ordered = [c for c in first if c in frame.columns] + [
        c for c in frame.columns if c not in first
    ]
    frame = frame[ordered].copy()
    if words:  # states and statuses in the report's language
        for column in frame.columns:
            frame[column] = [_word(column, v, lang) for v in frame[column]]
    for column, unit in (scaled or {}).items():
        if column in frame.columns:
            frame[column] = [None if pd.isna(v) else unit.convert(v) for v in frame[column]]
    return frame.rename(columns={c: header(c, lang, scaled) for c in ordered})


_PERCENT = {"gain_vs_baseline"}
_DECIMALS = {"ai", "baseline", "mean", "median", "spread", "weighted_total", "jury_score", "weight"}


def _figure_format(unit: Unit, values: list[Any]) -> str:
    """An xlsx number format with the unit, three significant digits at the column's median."""
    import statistics

    from workbench.units import DIGITS

    shown = [abs(v) for v in values if isinstance(v, int | float) and v == v and v != 0]
    magnitude = statistics.median(shown) if shown else 1.0
    decimals = max(0, DIGITS - 1 - math.floor(math.log10(magnitude)))
    return ("0." + "0" * decimals if decimals else "0") + f'" {unit.symbol}"'


def write_xlsx(data: ReportData, path: Path) -> None:
    """One sheet per topic, frozen header rows, sized columns, number formats.

    Figures stay numbers, scaled to one readable unit per column (named in the header and
    in the number format); a figure that cannot be known reads as such, with its reason.
    """
    import pandas as pd
    from openpyxl.utils import get_column_letter

    lang = data.lang
    chosen = units(data)
    formats = {label(k, lang): "0.0%" for k in _PERCENT}
    formats |= {label(k, lang): "0.00" for k in _DECIMALS}
    figures = {header(k, lang, chosen): k for k in chosen}
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, rows in data.sheets().items():
            first = ("rank",) if name in ("ranking", "faults") else ()
            frame = _frame(rows, lang, first, chosen, words=True)
            if frame.empty:
                frame = pd.DataFrame({label("no_rows", lang): []})
            sheet = label(f"sheet_{name}", lang)[:31]
            frame.to_excel(writer, sheet_name=sheet, index=False)
            ws = writer.sheets[sheet]
            ws.freeze_panes = "A2"
            for index, column in enumerate(frame.columns, start=1):
                letter = get_column_letter(index)
                figure = figures.get(str(column))
                number_format = formats.get(str(column))
                if figure is not None:
                    number_format = _figure_format(chosen[figure], list(frame[column]))
                    for source, cell in zip(rows, ws[letter][1:], strict=False):
                        text = data.unknown.get(source.get("submission", ""), {}).get(figure)
                        if cell.value in (None, "") and text and name == "ranking":
                            cell.value = text
                values = [str(column), *(str(c.value) for c in ws[letter][1:200])]
                ws.column_dimensions[letter].width = min(60, max(8, max(map(len, values)) + 2))
                if number_format:
                    for cell in ws[letter][1:]:
                        cell.number_format = number_format


def write_csv(data: ReportData, path: Path) -> None:
    """The ranking table: what a committee sorts and filters in a spreadsheet.

    Figures in their base units (kWh, Wh per 1,000 predictions, g CO2e), named in the
    headers, as `results --format json` has them. Runner faults follow the ranked rows,
    with no rank.
    """
    _frame(data.ranking + data.faults, data.lang, ("rank",)).to_csv(path, index=False)


def _columns(
    rows: list[dict[str, Any]], first: tuple[str, ...] = (), skip: tuple[str, ...] = ()
) -> list[str]:
    """A table's columns in the HTML report; an interval is shown beside its figure."""
    shown = [c for c in rows[0] if c not in BOUNDS and c not in skip]
    return [c for c in first if c in shown] + [c for c in shown if c not in first]


# The HTML ranking as tables narrow enough for an A4 page in portrait, each led by the
# rank and the dossier; a column no group names goes to the last one.
RANKING_GROUPS = (
    ("team", "state", "status", "jury_score", "jurors", "spread_total", "proposed_decision"),
    ("metric", "ai", "baseline", "gain_vs_baseline", "disagrees", "reproduction"),
    ("energy_kwh", "repeats", "wh_per_1000_predictions", "co2e_g", "method", "comparable"),
    ("template", "comparable_reason", "overlaps", "notes", "run_id"),
)


def ranking_tables(rows: list[dict[str, Any]]) -> list[list[str]]:
    """The columns of each of the ranking's tables (nothing when there is no row)."""
    if not rows:
        return []
    shown = _columns(rows, ("rank", "submission"))
    named = {c for group in RANKING_GROUPS for c in group}
    groups = [[c for c in group if c in shown] for group in RANKING_GROUPS]
    groups[-1] += [c for c in shown if c not in named and c not in ("rank", "submission")]
    lead = [c for c in ("rank", "submission") if c in shown]
    return [lead + group for group in groups if group]


def _word(column: str, value: Any, lang: str) -> Any:
    """A value of the workbench's vocabularies (state, status, verdict) in the language."""
    from workbench.i18n import TEXTS, state_label, status_label, t

    if not isinstance(value, str):
        return value
    if column in ("state", "from", "to", "proposed_decision"):
        return state_label(value, lang)
    if column == "status":
        return status_label(value, lang)
    if column in ("reproduction", "verdict") and f"verdict_{value}" in TEXTS:
        return t(f"verdict_{value}", lang)
    return value


def _cell(data: ReportData, chosen: dict[str, Unit]) -> Any:
    from workbench.i18n import t
    from workbench.units import format_interval

    lang = data.lang
    criteria = {c.id: c.label.get(lang) for c in data.call.rubric}

    def cell(column: str, row: dict[str, Any]) -> str:
        """A table cell's text; the template escapes it."""
        value = row.get(column)
        if column in chosen:
            if value is None:
                return data.unknown.get(row.get("submission", ""), {}).get(column) or "–"
            text = str(chosen[column].format(value, lang))
            if column == "energy_kwh" and "repeats" in row:
                low, high = row.get("energy_low"), row.get("energy_high")
                if low is not None and high is not None:
                    text += f" {format_interval((low, high), chosen[column], lang)}"
                elif row["repeats"] == 1:
                    text += f" ({t('one_run', lang)})"
            return text
        if value is None:
            return "–"
        value = _word(column, value, lang)
        if isinstance(value, bool):
            return label("yes" if value else "no", lang)
        if column in _PERCENT and isinstance(value, int | float):
            text = f"{value * 100:+.1f} %"
            return text.replace(".", ",") if lang == "fr" else text
        if column == "criterion" and value in criteria:
            return criteria[value]
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    return cell


def pareto_html(data: ReportData) -> str:
    """The Pareto chart of gain against energy, inline, with its own plotly.js."""
    from workbench.charts import pareto_figure

    figure = pareto_figure(data.results, data.lang, labels=True)
    figure.update_layout(width=PRINT_WIDTH_PX)  # fits an A4 page in portrait, on screen too
    return str(figure.to_html(full_html=False, include_plotlyjs=True, div_id="pareto"))


def write_html(data: ReportData, path: Path) -> None:
    """One self-contained page (plotly.js inline), printable to PDF from a browser."""
    from workbench.html.render import render

    def by_submission(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["submission"] == key]

    chosen = units(data)
    criteria = {c.id: c.label.get(data.lang) for c in data.call.rubric}
    markup = render(
        "report/report.html.j2",
        lang=data.lang,
        call=data.call,
        generated_at=data.generated_at,
        chart=pareto_html(data),
        cell=_cell(data, chosen),
        header=lambda column: header(column, data.lang, chosen),
        overlaps=sorted(data.overlaps.items()),
        columns_of=_columns,
        ranking_tables=ranking_tables(data.ranking),
        by_submission=by_submission,
        current_synthesis={row["submission"]: row for row in data.syntheses},
        disagreements=lambda key: [
            criteria[r["criterion"]] for r in by_submission(data.jury, key) if r["disagreement"]
        ],
        answers=data.answers,
        titles={row.submission: row.title for row in data.results},
        **{**data.sheets(), "faults": data.faults},
    )
    path.write_text(markup, encoding="utf-8")


def export_report(workspace: Workspace, call_id: str, out: Path, lang: str = "fr") -> Path:
    """Write a call's report to `out`; the format follows its extension."""
    from workbench.store import open_store
    from workbench.vocabulary import LANGUAGES

    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        known = ", ".join(f".{f}" for f in FORMATS)
        raise InputError(f"{out}: the report format follows the extension: {known}")
    if lang not in LANGUAGES:
        raise InputError(f"unknown language {lang!r} ({' or '.join(LANGUAGES)})")
    call = workspace.call(call_id)
    with open_store(workspace.db_url) as store:
        data = report_data(store, call, lang)
    out.parent.mkdir(parents=True, exist_ok=True)
    {"xlsx": write_xlsx, "html": write_html, "csv": write_csv}[fmt](data, out)
    return out
