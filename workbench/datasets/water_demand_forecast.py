"""Synthetic daily drinking-water demand of a mid-sized French town (about 60,000 people).

Generating assumptions (all synthetic, for demonstration only):

- base demand 12,000 m³/day with a slow trend of +0.5 % a year;
- weekly pattern: Saturday -5 %, Sunday -9 % (fewer offices and schools);
- annual cycle: +18 % at the end of July, -8 % in late January (a cosine);
- summer holidays (15 July - 20 August): -6 % as residents leave;
- temperature: daily mean follows a cosine between 4 °C and 22 °C with 3 °C noise; each
  degree above 25 °C adds 2.5 % (garden watering, showers);
- rain: 30 % of days are wet, amounts exponential with mean 6 mm; a wet day removes 3 %
  and the day after 1.5 % (no garden watering);
- multiplicative noise: 3 % (Gaussian);
- a few metering gaps are *not* simulated: the series is complete.

Columns: `date` (day), `demand_m3` (m³/day), `temp_c` (°C, daily mean), `rain_mm` (mm/day).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {
    "date": "day, ISO date",
    "demand_m3": "drinking water put into distribution, m³/day",
    "temp_c": "daily mean air temperature, °C",
    "rain_mm": "daily rainfall, mm",
}


def generate(seed: int = 0, days: int = 3 * 365, start: str = "2022-01-01") -> pd.DataFrame:
    """`days` days of synthetic demand and weather, deterministic for `seed`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    doy = dates.day_of_year.to_numpy()
    season = np.cos(2 * np.pi * (doy - 205) / 365.25)
    temp = 13 + 9 * season + rng.normal(0, 3, days)
    wet = rng.random(days) < 0.3
    rain = np.where(wet, rng.exponential(6.0, days), 0.0)
    weekday = dates.day_of_week.to_numpy()
    weekly = np.select([weekday == 5, weekday == 6], [0.95, 0.91], 1.0)
    annual = 1 + np.where(season > 0, 0.18, 0.08) * season
    holidays = np.where(
        ((dates.month == 7) & (dates.day >= 15)) | ((dates.month == 8) & (dates.day <= 20)),
        0.94,
        1.0,
    )
    heat = 1 + 0.025 * np.clip(temp - 25, 0, None)
    after_rain = np.concatenate([[False], wet[:-1]])
    rain_effect = np.where(wet, 0.97, 1.0) * np.where(after_rain, 0.985, 1.0)
    trend = 1 + 0.005 * np.arange(days) / 365.25
    noise = 1 + rng.normal(0, 0.03, days)
    demand = 12_000 * trend * weekly * annual * holidays * heat * rain_effect * noise
    return pd.DataFrame(
        {
            "date": dates,
            "demand_m3": demand.round(1),
            "temp_c": temp.round(1),
            "rain_mm": rain.round(1),
        }
    )
