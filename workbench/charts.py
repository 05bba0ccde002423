"""The workbench's plotly figures, shared by the jury dashboards and the committee's report.

Builders return `plotly.graph_objects.Figure`s; how a figure reaches a page (an escaped
attribute on a dashboard, inline plotly.js in the report) is the caller's business.
plotly is imported inside the builders so that importing this module stays cheap.
"""

from __future__ import annotations

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


def pareto_point(row: ResultRow) -> tuple[float, float] | None:
    """(Wh per 1,000 predictions, gain in %) of a run that has a place on the Pareto chart.

    Only runs that succeeded with a finite gain and a measured energy per prediction;
    failures and runner faults (`error`, rerun by the next batch) get no point.
    """
    energy = row.measured_energy()
    gain = row.gain
    if row.status != "succeeded" or gain is None or not math.isfinite(gain):
        return None
    if energy is None or energy.wh_per_1000_predictions is None:
        return None
    return energy.wh_per_1000_predictions, gain * 100


def pareto_figure(rows: Sequence[ResultRow], lang: str) -> Any:
    """Gain over the non-AI solution against Wh per 1,000 predictions.

    Runs whose energy is not comparable are drawn apart and stay off the front.
    """
    import plotly.graph_objects as go

    plotted = [(r, *point) for r in rows if (point := pareto_point(r)) is not None]
    figure = go.Figure()
    for comparable, name, symbol in (
        (True, t("pareto_points", lang), "circle"),
        (False, t("pareto_points_nc", lang), "x"),
    ):
        group = [p for p in plotted if p[0].comparable is comparable]
        if not group:
            continue
        figure.add_trace(
            go.Scatter(
                x=[wh for _, wh, _ in group],
                y=[gain for _, _, gain in group],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 8, "opacity": 0.75},
                text=[f"{r.team} ({r.submission_id})" for r, _, _ in group],
                hovertemplate="%{text}<br>%{x:.3g} Wh<br>%{y:+.1f} %<extra></extra>",
            )
        )
    front = pareto_front([(wh, gain) for r, wh, gain in plotted if r.comparable])
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
    """Wh per phase of a measured run; None when nothing was measured."""
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
