"""Synthetic 15-minute inflow of one district metered area (DMA) of a drinking-water network.

The DMA is fictional: about 2,300 service connections (some 5,000 residents), one inflow
meter. Two years of data by default. Everything below is synthetic, for demonstration only.

Generating assumptions:

- customer demand: 22 m³/h on average (about 530 m³/day), times an annual cycle
  (+15 % in mid-July, -15 % in mid-January, a cosine), a weekday factor (Saturday +3 %,
  Sunday +6 %) and a day-to-day "weather" factor (AR(1), coefficient 0.8, 4 % standard
  deviation); a summer day whose weather factor is above +3 % is a hot day;
- daily profile (mean 1): morning peak at 07:30 on weekdays (2.3 times the mean), at 09:30
  at weekends (2.1 times), evening peak at 20:00 (1.6 times); the legitimate customer use
  between 02:00 and 04:00 is about 9 % of the mean, some 2 m³/h;
- legitimate night use that a leak detector must not confuse with a leak:
  garden sprinklers from 1 June to 15 September on 35 % of nights (70 % of hot nights),
  0.3-1.0 m³/h between 01:00 and 05:00; a large night user (a farm filling its tanks)
  on 6 % of nights, 1.0-3.0 m³/h for 1-5 hours starting between 00:00 and 03:00;
- background leakage (many small undetectable leaks): 3.0 m³/h at the start, rising by
  0.5 m³/h a year as the pipes age;
- pressure: leak flows depend on pressure, which is higher when demand is low: leak and
  background flows are 12 % above their mean at night (00:00-05:00) and 8 % below it when
  demand exceeds 1.3 times its mean;
- detectable leaks ("bursts" and growing leaks): start at a random time, 6 a year on average
  (Poisson process), first rate log-uniform between 0.5 and 2.5 m³/h, growing by 0-4 % a day,
  capped at 3.5 m³/h, running for 3 days plus an exponential duration of mean 12 days (at most
  45) until repaired; two leaks may overlap;
- meter noise: Gaussian, standard deviation 0.15 m³/h plus 3 % of the flow;
- the series is complete (no metering gaps are simulated).

Columns: `time` (start of the 15-minute interval), `flow_m3h` (mean inflow over the interval,
m³/h), `leak` (1 while a detectable leak is running, from the repair records).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {
    "time": "start of the metering interval (15 min or 1 h), ISO date-time, local time",
    "flow_m3h": "mean DMA inflow over the interval, m³/h",
    "leak": "1 while a known leak was running (from the repair records), else 0",
}

LEAKS_PER_YEAR = 6.0


def _profile(hours, weekend):
    """Daily consumption profile (mean about 1) at fractional `hours`."""
    import numpy as np

    def bump(centre, width, height):
        return height * np.exp(-0.5 * ((hours - centre) / width) ** 2)

    morning = np.where(weekend, bump(9.5, 1.6, 1.2), bump(7.5, 1.1, 1.35))
    evening = bump(20.0, 1.8, 0.75)
    midday = bump(12.5, 1.5, 0.45)
    day = 0.62 / (1 + np.exp(-(hours - 6.0) * 2.2)) / (1 + np.exp((hours - 23.0) * 1.6))
    return 0.08 + day + morning + evening + midday


def generate(
    seed: int = 0,
    days: int = 2 * 365,
    start: str = "2024-01-01",
    leaks_per_year: float = LEAKS_PER_YEAR,
) -> pd.DataFrame:
    """`days` days (two years by default) of synthetic 15-minute DMA inflow with leaks.

    Deterministic for `seed`.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    steps = 96
    n = days * steps
    times = pd.date_range(start, periods=n, freq="15min")
    hours = (np.arange(n) % steps) / 4.0 + 0.125
    dates = pd.date_range(start, periods=days, freq="D")
    doy = dates.day_of_year.to_numpy()
    weekday = dates.day_of_week.to_numpy()

    # Daily factors: season, weekday, weather (AR(1)) and hot spells.
    season = 1 + 0.15 * np.cos(2 * np.pi * (doy - 196) / 365.25)
    week = np.select([weekday == 5, weekday == 6], [1.03, 1.06], 1.0)
    weather = np.zeros(days)
    for d in range(1, days):
        weather[d] = 0.8 * weather[d - 1] + rng.normal(0, 0.04 * np.sqrt(1 - 0.8**2))
    summer = (dates.month >= 6) & ~((dates.month == 9) & (dates.day > 15)) & (dates.month <= 9)
    hot = summer & (weather > 0.03)
    daily = 22.0 * season * week * (1 + weather)

    weekend = np.repeat(weekday >= 5, steps)
    profile = _profile(hours, weekend)
    profile = profile / profile.mean()
    demand = np.repeat(daily, steps) * profile

    # Legitimate night use.
    sprinkle = summer & (rng.random(days) < np.where(hot, 0.7, 0.35))
    sprinkle_rate = rng.uniform(0.3, 1.0, days) * sprinkle
    night_use = np.repeat(sprinkle_rate, steps) * ((hours >= 1) & (hours < 5))
    big_user = rng.random(days) < 0.06
    for d in map(int, np.flatnonzero(big_user)):
        begin = rng.uniform(0, 3)
        length = rng.uniform(1, 5)
        rate = rng.uniform(1.0, 3.0)
        in_use = (hours[d * steps : (d + 1) * steps] >= begin) & (
            hours[d * steps : (d + 1) * steps] < begin + length
        )
        night_use[d * steps : (d + 1) * steps] += rate * in_use

    # Pressure effect on leak flows: higher at night, lower at the peaks.
    pressure = 1 + 0.12 * ((hours >= 0) & (hours < 5)) - 0.08 * (profile > 1.3)
    pressure = pressure / pressure.mean()
    background = 3.0 + 0.5 * np.arange(n) / (365 * steps)

    # Detectable leaks.
    leak_flow = np.zeros(n)
    leak_on = np.zeros(n, dtype=bool)
    n_leaks = rng.poisson(leaks_per_year * days / 365)
    for _ in range(n_leaks):
        begin = int(rng.integers(0, n))
        duration = min(3 + rng.exponential(12.0), 45.0)
        end = min(n, begin + int(duration * steps))
        first = np.exp(rng.uniform(np.log(0.5), np.log(2.5)))
        growth = rng.uniform(0, 0.04)
        age = np.arange(end - begin) / steps
        leak_flow[begin:end] += np.minimum(first * (1 + growth * age), 3.5)
        leak_on[begin:end] = True

    flow = demand + night_use + (background + leak_flow) * pressure
    flow = flow + rng.normal(0, 1, n) * (0.15 + 0.03 * flow)
    return pd.DataFrame(
        {
            "time": times,
            "flow_m3h": np.clip(flow, 0, None).round(3),
            "leak": leak_on.astype(int),
        }
    )
