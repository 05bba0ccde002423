"""Synthetic hourly rainfall and river flow of a small Mediterranean catchment (25 km²).

The catchment is fictional: 25 km² of hills, vineyards, scrub and a small town, drained by a
stream whose outlet gauge records the hourly flow. All data are synthetic, for demonstration only.

Rainfall (catchment mean, mm per hour) is a sum of storms starting at random hours:

- frontal rain: 28 storms a year, most in winter (rate x (1 + 0.8 cos(2 pi (day of year - 15) /
  365))); duration 4 h + Gamma(shape 2, scale 5 h) (mean 14 h); depth Gamma(shape 1.5, scale
  13.3 mm) (mean 20 mm); spread evenly over the hours (Dirichlet weights, concentration 3);
- summer thunderstorms: 14 a year, rate proportional to max(0, cos(2 pi (day of year - 200) /
  365))^2 (June to August); duration 1 h + Poisson(1.5) h; depth Gamma(1.3, 14 mm) (mean
  18 mm); concentrated in one or two hours (Dirichlet concentration 0.4);
- Mediterranean ("cévenol") episodes: 2 a year, from 15 September to 15 December; duration
  12 h + Gamma(2, 8 h) (mean 28 h); depth Gamma(2.5, 50 mm) (mean 125 mm); in bursts
  (Dirichlet concentration 0.7);
- light rain: 50 a year, all seasons; duration 1 to 6 h; depth exponential, mean 2 mm.

Hydrology (hourly, in mm over the catchment; 1 mm/h = 6.94 m³/s for 25 km²):

- soil store W (capacity 150 mm, wetness w = W / 150); evapotranspiration w x PET with PET
  from 0.5 mm/day (mid-January) to 5 mm/day (mid-July), a cosine;
- infiltration excess (Horton): rain above the infiltration capacity
  f(w) = 3 + 37 (1 - w)^2 mm/h runs off (intense storms on dry soil);
- saturation excess: a share w^3 of the infiltrating rain runs off (wet soil);
- percolation 0.1 w^3 mm/h to a groundwater store that drains linearly with a 20-day time
  constant (baseflow); the rest of the infiltrated rain fills the soil store, overflow runs off;
- the quick runoff is routed with a gamma unit hydrograph (shape 3, scale 1 h: peak after
  2 h, 24 h long, normalised to 1);
- observed flow = (quick flow + baseflow) x a gauging error, multiplicative log-normal AR(1)
  (8 %, hourly correlation 0.98: the rating curve drifts) x hourly noise (3 %).

Together these make the peak flow depend on rain depth, intensity and antecedent wetness in a
nonlinear way that no single curve number reproduces.

Columns: `time` (hour), `rain_mm` (mm in the hour), `flow_m3s` (mean flow in the hour, m³/s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {
    "time": "start of the hour, ISO date-time",
    "rain_mm": "catchment mean rainfall in the hour, mm",
    "flow_m3s": "mean river flow at the outlet gauge in the hour, m³/s",
}

AREA_KM2 = 25.0


def generate(seed: int = 0, years: int = 10, start: str = "2015-01-01") -> pd.DataFrame:
    """`years` years of synthetic hourly rain and flow, deterministic for `seed`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    time = pd.date_range(start, periods=int(round(years * 365.25 * 24)), freq="h")
    n = len(time)
    doy = time.day_of_year.to_numpy()
    hours_per_year = 365.25 * 24

    def starts(rate_per_year: float, weight: np.ndarray) -> np.ndarray:
        """Start hours of storms whose yearly rate is `rate_per_year`, shaped by `weight`."""
        p = rate_per_year / hours_per_year * weight / weight.mean()
        return np.flatnonzero(rng.random(n) < p)

    season = 2 * np.pi * doy / 365
    storm_types = [
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
            hours = max(1, int(round(duration())))
            amount = depth()
            shares = rng.dirichlet(np.full(hours, concentration))
            end = min(n, t0 + hours)
            rain[t0:end] += amount * shares[: end - t0]
    rain = np.round(rain, 1)

    pet = (0.5 + 4.5 * (0.5 - 0.5 * np.cos(2 * np.pi * (doy - 15) / 365))) / 24  # mm/h
    # The gauge sees the catchment's rain with an error that changes from storm to storm.
    true_rain = rain * np.exp(rng.normal(0.0, 0.15, n))  # refined per event below
    capacity = 150.0
    soil, ground = 0.5 * capacity, 30.0
    quick = np.empty(n)
    base = np.empty(n)
    k_ground = 1 / (20 * 24)
    dry_hours, event_rain, event_runoff, s_event, factor = 99, 0.0, 0.0, 0.0, 1.0
    for t in range(n):
        w = soil / capacity
        if rain[t] >= 0.2 and dry_hours >= 6:  # a new event: its retention follows the wetness
            cn = 52 + 34 * w
            s_event = 25400 / cn - 254
            event_rain, event_runoff = 0.0, 0.0
            factor = float(np.exp(rng.normal(0.0, 0.15)))
        dry_hours = 0 if rain[t] >= 0.2 else dry_hours + 1
        r = rain[t] * factor
        true_rain[t] = r
        event_rain += r
        ia = 0.2 * s_event
        cumulative = (event_rain - ia) ** 2 / (event_rain - ia + s_event) if event_rain > ia else 0.0
        runoff = cumulative - event_runoff
        event_runoff = cumulative
        runoff += 0.6 * max(0.0, r - runoff - 30.0)  # intense bursts: infiltration excess
        soil += r - runoff
        percolation = 0.1 * w**3
        soil -= percolation + min(1.0, w / 0.5) * pet[t]
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
    phi, sd = 0.98, 0.08
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    drift[0] = rng.normal(0.0, sd)
    for t in range(1, n):
        drift[t] = phi * drift[t - 1] + shocks[t]
    flow = (routed + base) * to_m3s * np.exp(drift + rng.normal(0.0, 0.03, n))
    return pd.DataFrame({"time": time, "rain_mm": rain, "flow_m3s": flow.round(3)})
