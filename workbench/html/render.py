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
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from workbench.i18n import status_label, t

if TYPE_CHECKING:
    import jinja2


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
        reproduction_label=reproduction_label,
        static=static_text,
        fmt=fmt,
        fmt_gain=fmt_gain,
    )
    env.filters.update(sort_value=sort_value, local_time=local_time)
    return env


def macros(name: str) -> Any:
    """A template's macros, called from Python: `macros("x.html.j2").header(...)`."""
    return environment().get_template(name).module


def render(name: str, **values: Any) -> str:
    return environment().get_template(name).render(**values)
