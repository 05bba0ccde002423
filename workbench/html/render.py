"""The one Jinja environment of the workbench's HTML: the dashboards' pages and the report.

Templates (`templates/`) and static files (`static/`) are package data of `workbench.html`.
Autoescaping is on for every template, so a value reaches the markup unescaped only
through an explicit `|safe`; `tests/test_html.py` holds the reviewed list of those.
The environment is built once per process: a dashboard kernel builds it in `warm_up`,
before any request.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from workbench.i18n import state_label, status_label, t

if TYPE_CHECKING:
    import jinja2

    from workbench.results import ResultRow
    from workbench.units import Unit


def fmt(value: float | None, digits: int = 4) -> str:
    """A number with `digits` significant digits; '-' for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}"


def fmt_gain(gain: float | None) -> str:
    """A gain over the baseline as a signed percentage."""
    if gain is None:
        return "-"
    if math.isinf(gain):
        return "+∞" if gain > 0 else "-∞"
    return f"{gain * 100:+.1f} %"


def sort_value(value: float | None) -> str:
    """The `data-sort` attribute of a number cell: '' when missing or infinite."""
    return "" if value is None or not math.isfinite(value) else f"{value:.9g}"


def local_time(moment: dt.datetime) -> str:
    """A stored (UTC) time in the server's local time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def reproduction_label(result: dict[str, Any] | None, lang: str) -> tuple[str, str]:
    """(text, css class) of a submission's latest reproduction verdict."""
    if not result:
        return t("not_reproduced_yet", lang), "wb-muted"
    if result["verdict"] == "reproduced":
        return t("reproduced", lang), "wb-ok"
    metrics = sorted({d["metric"] for d in result.get("differences", [])})
    shown = ", ".join(metrics[:3]) + (", ..." if len(metrics) > 3 else "")
    return t("diverged", lang, metrics=shown), "wb-bad"


def answer_text(question: Any, value: Any, lang: str) -> str:
    """A questionnaire answer in words: yes/no, a choice by its label, unanswered as such."""
    if value is None or value == "":
        return t("no_answer", lang)
    if isinstance(value, bool):
        return t("yes" if value else "no", lang)
    if question.type == "choice" and isinstance(value, str):
        return str(question.choice_label(value, lang))
    return str(value)


@dataclass(frozen=True)
class Figure:
    """A figure's cell: its text in the column's unit, its interval (or why none), a tooltip."""

    text: str
    interval: str = ""
    note: str = ""  # shown muted where an interval would be: "1 run: no interval"
    unknown: bool = False


def figure_cell(
    value: float | None,
    unit: Unit,
    lang: str,
    *,
    reason: str | None = None,
    interval: tuple[float, float] | None = None,
    repeats: int | None = None,
) -> Figure:
    """One figure of a table in its column's `unit`: '4,19 mWh' and '[3,90 ; 4,60]'.

    Unknown (None) reads 'inconnu : <reason>', never 0. When the figure has intervals
    (`repeats` given), a single run says it has none.
    """
    from workbench.i18n import reason_label
    from workbench.units import format_interval

    if value is None:
        return Figure(unit.format(None, lang, reason_label(reason, lang)), unknown=True)
    if interval is not None:
        return Figure(unit.format(value, lang), format_interval(interval, unit, lang))
    return Figure(unit.format(value, lang), note=t("one_run", lang) if repeats == 1 else "")


@dataclass(frozen=True)
class TableUnits:
    """The units of a table's figure columns, each chosen once from all its rows."""

    energy: Unit
    per_1000: Unit
    carbon: Unit

    @classmethod
    def of(cls, rows: Iterable[ResultRow]) -> TableUnits:
        from workbench.units import CARBON, ENERGY, ENERGY_PER_1000, scale

        measured = [e for row in rows if (e := row.measured_energy()) is not None]
        return cls(
            scale([e.total_kwh for e in measured], ENERGY),
            scale([e.wh_per_1000_predictions for e in measured], ENERGY_PER_1000),
            scale([e.co2e_g for e in measured], CARBON),
        )

    def header(self, key: str, lang: str) -> str:
        """A figure column's label with its unit; other columns' labels as they are."""
        unit = {"energy_kwh": self.energy, "wh_per_1000_predictions": self.per_1000,
                "co2e_g": self.carbon}.get(key)  # fmt: skip
        return unit.header(t(key, lang)) if unit is not None else t(key, lang)


def energy_lines(energy: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    """(label, text) of a run's energy block: total, AI, baseline, per prediction, CO2e, water.

    Each figure in its own readable unit; an unknown one with its reason.
    """
    from workbench.i18n import reason_label
    from workbench.units import CARBON, ENERGY, ENERGY_PER_1000, WATER, format_quantity

    unknown = energy.get("unknown") or {}
    lines = []
    for key, kind, label in (
        ("total_kwh", ENERGY, "total"),
        ("ai_kwh", ENERGY, "ai_energy"),
        ("baseline_kwh", ENERGY, "baseline_energy"),
        ("wh_per_1000_predictions", ENERGY_PER_1000, "wh_per_1000_predictions"),
        ("co2e_g", CARBON, "co2e_g"),
        ("water_l", WATER, "water_l"),
    ):
        value = energy.get(key)
        if value is None and key not in unknown:
            continue  # not a figure of this run (no water use efficiency, say)
        reason = reason_label(unknown.get(key), lang)
        lines.append((t(label, lang), format_quantity(value, kind, lang, reason=reason)))
    return lines


@cache
def static_text(name: str) -> str:
    """A static file's text (CSS, script), read from package data once per process."""
    return resources.files("workbench.html").joinpath("static", name).read_text("utf-8")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("workbench.html", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        t=t,
        status_label=status_label,
        state_label=state_label,
        answer_text=answer_text,
        reproduction_label=reproduction_label,
        static=static_text,
        fmt=fmt,
        fmt_gain=fmt_gain,
        figure_cell=figure_cell,
    )
    env.filters.update(sort_value=sort_value, local_time=local_time)
    return env


def macros(name: str) -> Any:
    """A template's macros, called from Python: `macros("x.html.j2").header(...)`."""
    return environment().get_template(name).module


def render(name: str, **values: Any) -> str:
    return environment().get_template(name).render(**values)
