"""Synthetic hourly rainfall and river flow of a small Mediterranean catchment (25 km²).

The catchment is fictional: 25 km² of hills, vineyards, scrub and a small town, drained by a
stream whose outlet gauge records the hourly flow. All data are synthetic, for demonstration only.

Rainfall (catchment mean, mm per hour) is a sum of storms starting at random hours:

- frontal rain: 28 storms a year, most in winter (rate x (1 + 0.8 cos(2 pi (day of year - 15) /
  365))); duration 4 h + Gamma(shape 2, scale 5 h) (mean 14 h); depth Gamma(shape 1.5, scale
  13.3 mm) (mean 20 mm); spread evenly over the hours (Dirichlet weights, concentration 3);
- summer thunderstorms: 14 a year, rate proportional to max(0, cos(2 pi (day of year - 200) /
  365))^2 (June to August); duration 1 h + Poisson(1.5) h; depth Gamma(1.3, 14 mm) (mean
  18 mm); concentrated in one or two hours (Dirichlet concentration 0.6);
- Mediterranean ("cévenol") episodes: 2 a year, from 15 September to 15 December; duration
  12 h + Gamma(2, 8 h) (mean 28 h); depth Gamma(2.5, 40 mm) (mean 100 mm); in bursts
  (Dirichlet concentration 1.5);
- light rain: 50 a year, all seasons; duration 1 to 6 h; depth exponential, mean 2 mm
  (Dirichlet concentration 2);
- storms may overlap; hourly amounts are rounded to 0.1 mm (a tipping-bucket gauge).

Hydrology (hourly, in mm over the catchment; 1 mm/h = 6.94 m³/s for 25 km²):

- the rain gauge misses part of the catchment's rain: the rain that really falls is the
  recorded rain x a log-normal factor drawn for each event (10 %);
- a soil store W (capacity 150 mm, wetness w = W / 150) loses evapotranspiration
  min(1, 2 w) x PET, with PET from 0.5 mm/day (mid-January) to 5 mm/day (mid-July), a cosine,
  and percolation 0.1 w^3 mm/h to a groundwater store that drains linearly with a 20-day time
  constant (baseflow);
- quick runoff of an event (an event starts with rain after at least 6 dry hours) follows a
  curve-number law whose curve number varies continuously with the wetness at the start of the
  event, CN = 40 + 50 w (CN 65 for a half-full soil): cumulative runoff
  Q = (P - 0.2 S)^2 / (P + 0.8 S), S = 25400 / CN - 254 mm, P the event's cumulative rain;
- intense bursts add infiltration-excess runoff: 60 % of the rain above 30 mm/h;
- the rest of the rain fills the soil store; when it is full, the overflow runs off too;
- quick runoff is routed with a gamma unit hydrograph (shape 3, scale 1 h: peak after 2 h,
  24 h long, normalised to 1);
- observed flow = (quick flow + baseflow) x a gauging error: a multiplicative log-normal AR(1)
  (5 %, hourly correlation 0.98: the rating curve drifts) x hourly noise (3 %).

The curve-number method of the template's baseline is therefore close to the truth but not
equal to it: it knows the wetness only through 3 classes of 5-day antecedent rain, ignores
intense bursts and full soils, and uses a triangular unit hydrograph.

Columns: `time` (hour), `rain_mm` (mm in the hour), `flow_m3s` (mean flow in the hour, m³/s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {
    "time": "start of the hour, ISO date-time",
    "rain_mm": "catchment mean rainfall in the hour, mm",
    "flow_m3s": "mean river flow at the outlet gauge in the hour, m³/s",
}

AREA_KM2 = 25.0


def generate(seed: int = 0, years: int = 12, start: str = "2015-01-01") -> pd.DataFrame:
    """`years` years of synthetic hourly rain and flow, deterministic for `seed`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=round(years * 365.25 * 24), freq="h")
    n = len(time)
    doy = time.day_of_year.to_numpy()
    hours_per_year = 365.25 * 24

    def starts(rate_per_year: float, weight: np.ndarray) -> np.ndarray:
        """Start hours of storms whose yearly rate is `rate_per_year`, shaped by `weight`."""
        p = rate_per_year / hours_per_year * weight / weight.mean()
        return np.flatnonzero(rng.random(n) < p)

    season = 2 * np.pi * doy / 365
    storm_types: list[tuple[float, Any, Callable[[], Any], Callable[[], Any], float]] = [
        # rate/year, seasonal weight, duration (h), depth (mm), Dirichlet concentration
        (28, 1 + 0.8 * np.cos(season - 2 * np.pi * 15 / 365),
         lambda: 4 + rng.gamma(2, 5), lambda: rng.gamma(1.5, 13.3), 3.0),
        (14, np.clip(np.cos(season - 2 * np.pi * 200 / 365), 0, None) ** 2,
         lambda: 1 + rng.poisson(1.5), lambda: rng.gamma(1.3, 14.0), 0.6),
        (2, ((doy >= 258) & (doy <= 349)).astype(float),
         lambda: 12 + rng.gamma(2, 8), lambda: rng.gamma(2.5, 40.0), 1.5),
        (50, np.ones(n), lambda: rng.integers(1, 7), lambda: rng.exponential(2.0), 2.0),
    ]  # fmt: skip
    rain = np.zeros(n)
    for rate, weight, duration, depth, concentration in storm_types:
        for t0 in starts(rate, weight):
            hours = max(1, round(float(duration())))
            amount = depth()
            shares = rng.dirichlet(np.full(hours, concentration))
            end = min(n, t0 + hours)
            rain[t0:end] += amount * shares[: end - t0]
    rain = np.round(rain, 1)

    pet = (0.5 + 4.5 * (0.5 - 0.5 * np.cos(2 * np.pi * (doy - 15) / 365))) / 24  # mm/h
    capacity = 150.0  # soil store, mm
    k_ground = 1 / (20 * 24)  # groundwater outflow rate, per hour
    soil, ground = 0.5 * capacity, 30.0
    quick = np.empty(n)
    base = np.empty(n)
    dry_hours, event_rain, event_runoff, retention, gauge_error = 99, 0.0, 0.0, 0.0, 1.0
    for t in range(n):
        w = soil / capacity
        if rain[t] >= 0.2 and dry_hours >= 6:
            # A new event: its retention follows the soil wetness; the gauge misses part of it.
            retention = 25400 / (40 + 50 * w) - 254
            event_rain, event_runoff = 0.0, 0.0
            gauge_error = float(np.exp(rng.normal(0.0, 0.10)))
        dry_hours = 0 if rain[t] >= 0.2 else dry_hours + 1
        r = rain[t] * gauge_error  # rain that really fell on the catchment
        event_rain += r
        ia = 0.2 * retention
        if event_rain > ia:
            cumulative = (event_rain - ia) ** 2 / (event_rain - ia + retention)
        else:
            cumulative = 0.0
        runoff = cumulative - event_runoff
        event_runoff = cumulative
        runoff += 0.6 * max(0.0, r - runoff - 30.0)  # intense bursts: infiltration excess
        percolation = 0.1 * w**3
        soil += r - runoff - percolation - min(1.0, w / 0.5) * pet[t]
        overflow = max(0.0, soil - capacity)
        soil = min(max(soil, 0.0), capacity)
        ground += percolation - k_ground * ground
        quick[t] = runoff + overflow
        base[t] = k_ground * ground
    lag = np.arange(24) + 0.5
    uh = lag**2 * np.exp(-lag)  # gamma, shape 3, scale 1 h
    uh /= uh.sum()
    routed = np.convolve(quick, uh)[:n]
    to_m3s = AREA_KM2 * 1e6 / 1000 / 3600  # mm/h over the catchment -> m³/s
    drift = np.empty(n)
    phi, sd = 0.98, 0.05
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    drift[0] = rng.normal(0.0, sd)
    for t in range(1, n):
        drift[t] = phi * drift[t - 1] + shocks[t]
    flow = (routed + base) * to_m3s * np.exp(drift + rng.normal(0.0, 0.03, n))
    return pd.DataFrame({"time": time, "rain_mm": rain, "flow_m3s": flow.round(3)})
