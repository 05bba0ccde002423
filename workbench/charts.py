"""The workbench's plotly figures, shared by the jury dashboards and the committee's report.

Builders return `plotly.graph_objects.Figure`s; how a figure reaches a page (an escaped
attribute on a dashboard, inline plotly.js in the report) is the caller's business.
plotly is imported inside the builders so that importing this module stays cheap.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.i18n import t
from workbench.notebooks import ALL_PHASES as PHASES

if TYPE_CHECKING:
    from workbench.results import ResultRow

MAX_PREDICTION_POINTS = 1500
# The look of plotly's "plotly_white" template, set explicitly on the workbench's figures.
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


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both less energy (x) and more gain (y), by x."""
    front: list[tuple[float, float]] = []
    best = -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


UNTAGGED = "phases_untagged"  # the run record's flag: no cell carries a phase tag
MAX_APART_SHOWN = 8  # dossiers named under the chart; the others are counted


def pareto_point(row: ResultRow) -> tuple[float, float] | None:
    """(Wh per 1,000 predictions, gain in %) of a run that has a place on the Pareto chart.

    Only runs that succeeded with a finite gain and a known energy per prediction; failures
    and runner faults (`error`, rerun by the next batch) get no point, and neither does a
    run whose phases are untagged (its AI energy is unknown, never 0).
    """
    energy = row.measured_energy()
    gain = row.gain
    if row.status != "succeeded" or gain is None or not math.isfinite(gain):
        return None
    if UNTAGGED in row.flags:
        return None
    if energy is None or energy.wh_per_1000_predictions is None:
        return None
    return energy.wh_per_1000_predictions, gain * 100


def pareto_apart(rows: Sequence[ResultRow], lang: str) -> list[tuple[ResultRow, str]]:
    """The runs that succeeded but have no point: each with why, in words.

    Their energy per prediction or their gain is unknown, or their phases are untagged;
    they are listed under the chart, never drawn at 0 nor on the front.
    """
    from workbench.i18n import reason_label
    from workbench.units import unknown

    apart = []
    for row in rows:
        if row.status != "succeeded" or pareto_point(row) is not None:
            continue
        energy = row.energy
        if UNTAGGED in row.flags:
            why = t("phases_untagged", lang)
        elif energy is None or not energy.measured:
            why = t("not_measured", lang)
        elif energy.wh_per_1000_predictions is None:
            reason = reason_label(energy.unknown.get("wh_per_1000_predictions"), lang)
            label = t("wh_per_1000_predictions", lang)
            why = t("labelled", lang, label=label, text=unknown(lang, reason))
        else:
            why = t("labelled", lang, label=t("gain_vs_baseline", lang), text=unknown(lang))
        apart.append((row, why))
    return apart


def energy_overlaps(rows: Sequence[ResultRow]) -> dict[str, list[str]]:
    """For each submission, the others its total energy cannot be told apart from.

    Two submissions are not distinguishable on energy when the 95 % intervals of their
    total energy (`total_kwh_ci95`, across repeated runs) overlap. Only comparable runs
    with an interval take part: a single run has none, and another machine's energy is
    not compared at all. Submissions that overlap with nobody are left out.
    """
    with_interval = [
        r for r in rows if r.total_kwh_ci95 is not None and r.comparable and r.status != "error"
    ]
    overlaps: dict[str, list[str]] = {}
    for row in with_interval:
        assert row.total_kwh_ci95 is not None
        low, high = row.total_kwh_ci95
        others = [
            other.submission
            for other in with_interval
            if other is not row
            and other.total_kwh_ci95 is not None
            and low <= other.total_kwh_ci95[1]
            and other.total_kwh_ci95[0] <= high
        ]
        if others:
            overlaps[row.submission] = others
    return overlaps


def separators(lang: str) -> str:
    """plotly's decimal and thousands separators in `lang`."""
    from workbench.units import NARROW_NBSP

    return f",{NARROW_NBSP}" if lang == "fr" else ".,"


def _hover(row: ResultRow, wh: float, gain: float, unit: Any, lang: str) -> str:
    from workbench.units import format_interval

    text = unit.format(wh, lang)
    interval = row.wh_per_1000_predictions_ci95
    if interval is not None:
        text += f" {format_interval(interval, unit, lang)}"
    elif row.repeats <= 1:
        text += f" ({t('one_run', lang)})"
    percent = f"{gain:+.1f} %"
    return f"{text}<br>{percent.replace('.', ',') if lang == 'fr' else percent}"


def pareto_figure(rows: Sequence[ResultRow], lang: str, *, labels: bool = False) -> Any:
    """Gain over the non-AI solution against energy per 1,000 predictions.

    With `labels`, each point carries its dossier's id beside it (the printed report,
    where there is no hovering); the dashboard's chart names them on hover only.

    The energy axis takes one readable unit for every point, named in its title. Runs
    whose energy is not comparable are drawn apart and stay off the front; runs with
    repeats carry their 95 % interval as error bars; runs that succeeded without a known
    energy per prediction or gain, or whose phases are untagged, are listed under the chart.
    """
    import plotly.graph_objects as go

    from workbench.units import ENERGY_PER_1000, scale

    plotted = [(r, *point) for r in rows if (point := pareto_point(r)) is not None]
    unit = scale([wh for _, wh, _ in plotted], ENERGY_PER_1000)
    figure = go.Figure()
    for comparable, name, symbol in (
        (True, t("pareto_points", lang), "circle"),
        (False, t("pareto_points_nc", lang), "x"),
    ):
        group = [p for p in plotted if p[0].comparable is comparable]
        if not group:
            continue
        intervals = [r.wh_per_1000_predictions_ci95 for r, _, _ in group]
        error_x = None
        if any(i is not None for i in intervals):
            error_x = {
                "type": "data",
                "symmetric": False,
                "array": [
                    None if i is None else unit.convert(max(0.0, i[1] - wh))
                    for i, (_, wh, _) in zip(intervals, group, strict=True)
                ],
                "arrayminus": [
                    None if i is None else unit.convert(max(0.0, wh - i[0]))
                    for i, (_, wh, _) in zip(intervals, group, strict=True)
                ],
                "thickness": 1.2,
                "width": 4,
            }
        figure.add_trace(
            go.Scatter(
                x=[unit.convert(wh) for _, wh, _ in group],
                y=[gain for _, _, gain in group],
                mode="markers+text" if labels else "markers",
                name=name,
                marker={"symbol": symbol, "size": 8, "opacity": 0.75},
                error_x=error_x,
                text=[f"{r.team} ({r.submission_id})" for r, _, _ in group],
                # Shown beside the point: the id alone, as plain text (a template without
                # any %{...} field is printed as it is, escaped by plotly).
                texttemplate=[html.escape(r.submission_id) for r, _, _ in group]
                if labels
                else None,
                textposition="top center",
                textfont={"size": 10},
                customdata=[_hover(r, wh, gain, unit, lang) for r, wh, gain in group],
                hovertemplate="%{text}<br>%{customdata}<extra></extra>",
            )
        )
    front = pareto_front([(unit.convert(wh), gain) for r, wh, gain in plotted if r.comparable])
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
    apart = pareto_apart(rows, lang)
    bottom = 50
    if apart:
        # plotly reads an annotation's text as markup: a team's name is escaped to stay text.
        lines = [
            t("labelled", lang, label=html.escape(f"{r.team} ({r.submission_id})"), text=why)
            for r, why in apart[:MAX_APART_SHOWN]
        ]
        if len(apart) > MAX_APART_SHOWN:
            lines.append(t("pareto_more", lang, n=len(apart) - MAX_APART_SHOWN))
        figure.add_annotation(
            text="<br>".join([f"<b>{t('pareto_apart', lang)}</b>", *lines]),
            xref="paper",
            yref="paper",
            x=0,
            y=-0.3,
            xanchor="left",
            yanchor="top",
            align="left",
            showarrow=False,
            name="apart",
        )
        bottom += 20 * (len(lines) + 2)
    figure.update_layout(
        title=t("pareto_title", lang),
        xaxis_title=unit.header(t("pareto_x", lang)),
        yaxis_title=t("pareto_y", lang),
        height=420 + bottom - 50,
        margin={"l": 60, "r": 20, "t": 50, "b": bottom},
        legend={"orientation": "h", "y": -0.2},
        separators=separators(lang),
        **LIGHT,
    )
    figure.update_xaxes(rangemode="tozero", zeroline=True, exponentformat="none")
    figure.update_yaxes(zeroline=True, zerolinecolor="#888")
    return figure


def predictions_figure(records: dict[str, Any], lang: str) -> Any | None:
    """Truth, AI and baseline of the run's `predictions` record (at most 1,500 points)."""
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
    """Energy per phase of a measured run, in one readable unit; None when nothing was measured."""
    import plotly.graph_objects as go

    from workbench.units import ENERGY, scale

    phases = energy.get("phases") or {}
    if not energy.get("measured") or not phases:
        return None
    names = [p for p in PHASES if p in phases] + sorted(set(phases) - set(PHASES))
    labels = [t(f"phase_{p}", lang) if p in PHASES else p for p in names]
    unit = scale(phases.values(), ENERGY)
    figure = go.Figure(
        go.Bar(
            x=labels,
            y=[unit.convert(phases[p]) for p in names],
            marker_color="#2e7d32",
            customdata=[unit.format(phases[p], lang) for p in names],
            hovertemplate="%{x}: %{customdata}<extra></extra>",
        )
    )
    figure.update_layout(
        title=t("energy_title", lang),
        xaxis_title=t("phase", lang),
        yaxis_title=unit.header(t("energy", lang)),
        height=320,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        separators=separators(lang),
        **LIGHT,
    )
    figure.update_yaxes(exponentformat="none")
    return figure
