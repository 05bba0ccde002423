"""Repeated runs of the same input: the figure shown is their median, with a 95 % interval.

The method, the same for every figure (total, each phase, Wh per 1,000 predictions, AI minus
baseline):

    figure   = the median of the K runs' values
    interval = mean ± t(0.975, K-1) · s / √K

with `s` the sample standard deviation and `t` Student's quantile at K-1 degrees of freedom
(a t-interval on the K values). The median is shown because one disturbed run moves it less
than the mean. The interval is widened, if ever needed, to contain the median: with skewed
runs and K of 7 or more the median can fall outside mean ± t·s/√K, and a figure outside its
own error bar would mislead. An energy's interval is cut at 0, which no energy is below
(a difference of energies, AI minus baseline, is not cut). With fewer than two runs there is
no interval (None).

`energy_summary` computes every figure of a result row from the runs' `Energy` records.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.runner.metering import Energy

Interval = tuple[float, float]

# t(0.975, df) for df = 1..30, Student's distribution (beyond: scipy if installed, else a
# normal approximation with its first correction terms).
T_975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip

# The energy figures that are the median of the runs; the others come from the latest run.
MEDIAN_FIGURES = (
    "total_kwh",
    "cpu_kwh",
    "ram_kwh",
    "cpu_seconds",
    "co2e_g",
    "water_l",
    "wh_per_1000_predictions",
    "ai_kwh",
    "baseline_kwh",
    "wh_per_gain_point",
)


def t_quantile(df: int) -> float:
    """Student's t quantile at 0.975 with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")
    if df <= len(T_975):
        return T_975[df - 1]
    try:
        from scipy.stats import t  # type: ignore[import-untyped]
    except ImportError:
        z = 1.959964
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    return float(t.ppf(0.975, df))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ci95(values: Sequence[float], floor: float | None = None) -> Interval | None:
    """mean ± t(0.975, K-1)·s/√K, widened to contain the median and cut at `floor` (an
    energy is never below 0); None for fewer than two values."""
    k = len(values)
    if k < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile(k - 1) * statistics.stdev(values) / math.sqrt(k)
    middle = median(values)
    low, high = min(mean - half, middle), max(mean + half, middle)
    return (low if floor is None else max(low, floor), high)


@dataclass(frozen=True)
class EnergySummary:
    """The figures of K runs of one input (see the module's docstring for the method)."""

    runs: int
    energy: Energy | None
    total_kwh_ci95: Interval | None = None
    wh_per_1000_predictions_ci95: Interval | None = None
    ai_minus_baseline_kwh: float | None = None
    ai_minus_baseline_kwh_ci95: Interval | None = None
    phases_ci95: dict[str, Interval] = field(default_factory=dict)


def _known(values: list[float | None]) -> list[float] | None:
    """The values when every run knows the figure, else None: a median never hides a gap."""
    if not values or any(v is None for v in values):
        return None
    return [v for v in values if v is not None]


def energy_summary(energies: Sequence[Energy], latest: Energy | None = None) -> EnergySummary:
    """Medians and intervals over the measured `energies` of K runs of the same input.

    `latest` (default: the last of `energies`) gives every field that is not a median: the
    method, the machine, the unknown figures and their reasons. A figure unknown in any run
    is None.
    """
    measured = [e for e in energies if e.measured]
    latest = latest if latest is not None else (energies[-1] if energies else None)
    if not measured or latest is None or not latest.measured:
        return EnergySummary(runs=len(measured), energy=latest)
    update: dict[str, object] = {}
    for name in MEDIAN_FIGURES:
        values = _known([getattr(e, name) for e in measured])
        update[name] = median(values) if values is not None else None
    phases: dict[str, float] = {}
    phases_ci95: dict[str, Interval] = {}
    for phase in sorted({p for e in measured for p in e.phases}):
        values = [e.phases.get(phase, 0.0) for e in measured]  # a phase a run lacks cost 0
        phases[phase] = median(values)
        interval = ci95(values, floor=0.0)
        if interval is not None:
            phases_ci95[phase] = interval
    update["phases"] = phases
    totals = _known([e.total_kwh for e in measured])
    per_prediction = _known([e.wh_per_1000_predictions for e in measured])
    differences = _known(
        [
            e.ai_kwh - e.baseline_kwh
            if e.ai_kwh is not None and e.baseline_kwh is not None
            else None
            for e in measured
        ]
    )
    return EnergySummary(
        runs=len(measured),
        energy=latest.model_copy(update=update),
        total_kwh_ci95=ci95(totals, floor=0.0) if totals else None,
        wh_per_1000_predictions_ci95=ci95(per_prediction, floor=0.0) if per_prediction else None,
        ai_minus_baseline_kwh=median(differences) if differences else None,
        ai_minus_baseline_kwh_ci95=ci95(differences) if differences else None,
        phases_ci95=phases_ci95,
    )
