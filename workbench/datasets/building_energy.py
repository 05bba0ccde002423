"""Synthetic monthly heating consumption of a local authority's public buildings.

A portfolio of `n_buildings` (default 60) public buildings of a French agglomeration in a
temperate oceanic climate, with their heating-meter readings (gas or heat network, hot water
included) in kWh per calendar month over `years` years (default 4: 2021-2024). All the data
are synthetic, for demonstration only; the generating assumptions are:

- building types and shares: school 40 %, gym 17 %, office 17 % (town hall, technical
  services), cultural 13 % (media library, music school, hall), nursery 8 %, swimming pool
  5 %, rounded down, the remainder going to schools (with 60 buildings: 26 schools, 10 gyms,
  10 offices, 7 cultural buildings, 4 nurseries, 3 swimming pools);
- heated floor area, uniform by type, rounded to 10 m²: school 600-3,500, gym 800-2,500,
  office 500-4,000, cultural 400-2,000, nursery 300-900, swimming pool 1,500-3,500;
- weather: one station for the whole territory; daily mean temperature
  11.2 + 7.3 cos(2 pi (day of year - 200) / 365.25) °C (about 4 °C in mid-January, 18.5 °C
  in mid-July) plus an AR(1) daily anomaly (persistence 0.8, standard deviation 3 °C) and a
  yearly offset (standard deviation 0.6 °C). Heating degree days (DJU, base 18 °C):
  max(0, 18 - daily mean) summed over the month, about 2,400-3,000 a year;
- heating: each building heats, on the days of its heating season, in proportion to how far
  the daily mean falls below its own balance temperature (internal and solar gains make it
  lower than 18 °C), with a heating slope in kWh per m² per kelvin-day (K·day):

  | type | balance (°C) | slope (kWh/m²/K·day) | heating season | base (kWh/m²/open day) |
  |---|---|---|---|---|
  | school | 16 ± 1 | 0.070 | 15 Oct - 15 May | 0.030 |
  | gym | 14 ± 1 | 0.060 | 15 Oct - 15 May | 0.045 |
  | office | 16 ± 1 | 0.065 | 15 Oct - 15 May | 0.015 |
  | cultural | 15.5 ± 1 | 0.060 | 15 Oct - 15 May | 0.010 |
  | nursery | 17 ± 1 | 0.060 | 1 Oct - 31 May | 0.090 |
  | swimming pool | 20 ± 1 | 0.055 | all year | 1.200 |

  (± 1: uniform per building; each building's slope and base load are the type's value times
  a log-normal factor, 25 % and 30 %; the base load covers hot water, kitchens and pool
  water). The result is 55-190 kWh/m² a year for the buildings, 450-800 for the pools;
- occupancy: schools are closed on weekends and during school holidays (ISO weeks 7-8, 15-16
  and 43-44, 20 December - 3 January, 6 July - 31 August); gyms, cultural buildings and
  nurseries on Sundays, offices on Saturdays and Sundays; nurseries and cultural buildings
  1-21 August, gyms 1-25 August; swimming pools close 1-14 September for draining. A closed
  day has no base load and heats at 50 % (reduced set-point); public holidays are not
  simulated;
- noise: each month the heating part varies by 5 % and the base load by 8 % (Gaussian,
  multiplicative: wind, sun, occupant behaviour, events);
- anomalies: `anomaly_share` (default 10 %) of the buildings, drawn at random, get a fault that
  starts in one of the first 2 of the last `anomaly_window` months (default 12) and lasts to
  the end, one of: a drifting boiler (every use +15-40 %, reached linearly over 4 months), a
  broken control running the heating nights and weekends, or windows or ventilation left open
  (heating +20-50 % at once, i.e. about +15-40 % of the consumption in the heating months), a
  hot-water loop left running (a constant 15-40 % of the building's mean monthly consumption
  added every month). The column `anomaly` is 1 on the building-months from the fault's start;
- no renovation, change of use, metering gap or estimated reading in the period.

Columns: `building`, `type`, `floor_area_m2` (m²), `month` (first day), `dju` (degree days,
base 18 °C), `consumption_kwh` (kWh in the month) and, for the demo, `anomaly` (0/1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {
    "building": "building identifier (text)",
    "type": "building type, free labels (e.g. school, gym, office, swimming_pool)",
    "floor_area_m2": "heated floor area, m²",
    "month": "month, ISO date of its first day (e.g. 2024-01-01)",
    "dju": "heating degree days of the month, base 18 °C (DJU), from the nearest weather station",
    "consumption_kwh": "heating-meter consumption in the month (gas or heat network, hot water "
    "included), kWh",
}
OPTIONAL_COLUMNS = {
    "anomaly": "1 on the building-months of a known fault (from the maintenance log), else 0",
}
BALANCE_BASE_C = 18.0  # base temperature of the degree days (DJU)

# type: share, area range (m²), balance temperature (°C), slope (kWh/m²/K·day),
# heating season (first, last as (month, day)), base load (kWh/m² per open day)
TYPES = {
    "school": (0.40, (600, 3500), 16.0, 0.070, ((10, 15), (5, 15)), 0.030),
    "gym": (0.17, (800, 2500), 14.0, 0.060, ((10, 15), (5, 15)), 0.045),
    "office": (0.17, (500, 4000), 16.0, 0.065, ((10, 15), (5, 15)), 0.015),
    "cultural": (0.13, (400, 2000), 15.5, 0.060, ((10, 15), (5, 15)), 0.010),
    "nursery": (0.08, (300, 900), 17.0, 0.060, ((10, 1), (5, 31)), 0.090),
    "swimming_pool": (0.05, (1500, 3500), 20.0, 0.055, ((1, 1), (12, 31)), 1.200),
}
FAULTS = {  # fault: (what it raises, lowest and highest size)
    "boiler_drift": ("all", 0.15, 0.40),  # every use of the boiler, reached over 4 months
    "control_failure": ("heating", 0.20, 0.50),  # heating runs nights and weekends
    "open_windows": ("heating", 0.20, 0.50),  # windows or ventilation left open
    "hot_water_loop": ("constant", 0.15, 0.40),  # a share of the mean monthly consumption
}


def type_counts(n_buildings: int) -> dict[str, int]:
    """How many buildings of each type: the shares rounded down, the rest as schools."""
    counts = {name: int(spec[0] * n_buildings) for name, spec in TYPES.items()}
    counts["school"] += n_buildings - sum(counts.values())
    return counts


def _in_window(month: Any, day: Any, first: tuple[int, int], last: tuple[int, int]) -> Any:
    """True on the days from `first` to `last` (month, day), wrapping over the new year."""
    key = month * 100 + day
    lo, hi = first[0] * 100 + first[1], last[0] * 100 + last[1]
    return (key >= lo) & (key <= hi) if lo <= hi else (key >= lo) | (key <= hi)


def generate(
    seed: int = 0,
    n_buildings: int = 60,
    years: int = 4,
    start_year: int = 2021,
    anomaly_share: float = 0.10,
    anomaly_window: int = 12,
) -> pd.DataFrame:
    """Monthly consumption of `n_buildings` buildings over `years` years, seeded by `seed`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    days = pd.date_range(f"{start_year}-01-01", f"{start_year + years - 1}-12-31", freq="D")
    nd = len(days)
    month, mday = days.month.to_numpy(), days.day.to_numpy()
    weekday = days.day_of_week.to_numpy()
    week = days.isocalendar().week.to_numpy()

    # Weather: seasonal cosine + AR(1) daily anomaly + yearly offset.
    doy = days.day_of_year.to_numpy()
    anomaly = np.empty(nd)
    anomaly[0] = rng.normal(0, 3.0)
    innovations = rng.normal(0, 3.0 * np.sqrt(1 - 0.8**2), nd)
    for i in range(1, nd):
        anomaly[i] = 0.8 * anomaly[i - 1] + innovations[i]
    year_index = days.year.to_numpy() - start_year
    temp = (
        11.2
        + 7.3 * np.cos(2 * np.pi * (doy - 200) / 365.25)
        + anomaly
        + rng.normal(0, 0.6, years)[year_index]
    )
    dju_day = np.clip(BALANCE_BASE_C - temp, 0, None)

    school_holiday = (
        ((week >= 7) & (week <= 8))
        | ((week >= 15) & (week <= 16))
        | ((week >= 43) & (week <= 44))
        | ((month == 12) & (mday >= 20))
        | ((month == 1) & (mday <= 3))
        | ((month == 7) & (mday >= 6))
        | (month == 8)
    )
    closed = {
        "school": (weekday >= 5) | school_holiday,
        "gym": (weekday == 6) | ((month == 8) & (mday <= 25)),
        "office": weekday >= 5,
        "cultural": (weekday == 6) | ((month == 8) & (mday <= 21)),
        "nursery": (weekday == 6) | ((month == 8) & (mday <= 21)),
        "swimming_pool": (month == 9) & (mday <= 14),
    }

    month_start = days.to_period("M").to_timestamp()
    months = month_start.unique()
    month_of_day = np.searchsorted(months.to_numpy(), month_start.to_numpy())
    n_months = len(months)
    dju_month = np.bincount(month_of_day, weights=dju_day, minlength=n_months)

    counts = type_counts(n_buildings)
    kinds = [name for name, c in counts.items() for _ in range(c)]
    rng.shuffle(kinds)
    faulty = set(
        rng.choice(n_buildings, size=round(anomaly_share * n_buildings), replace=False).tolist()
    )
    first_window_month = n_months - anomaly_window
    rows = []
    for b, kind in enumerate(kinds):
        _, (lo, hi), balance, slope, season, base = TYPES[kind]
        area = float(round(rng.uniform(lo, hi), -1))
        balance_b = balance + rng.uniform(-1, 1)
        slope_b = slope * rng.lognormal(0, 0.25)
        base_b = base * rng.lognormal(0, 0.30)
        heating_on = _in_window(month, mday, *season)
        open_day = ~closed[kind]
        heat_day = slope_b * area * np.clip(balance_b - temp, 0, None) * heating_on
        heat_day = heat_day * np.where(open_day, 1.0, 0.5)
        base_day = base_b * area * open_day
        heat = np.bincount(month_of_day, weights=heat_day, minlength=n_months)
        base_m = np.bincount(month_of_day, weights=base_day, minlength=n_months)
        heat = heat * rng.normal(1, 0.07, n_months).clip(0.5)
        base_m = base_m * rng.normal(1, 0.10, n_months).clip(0.5)
        flag = np.zeros(n_months, dtype=int)
        if b in faulty:
            fault = list(FAULTS)[int(rng.integers(len(FAULTS)))]
            part, low, high = FAULTS[fault]
            size = rng.uniform(low, high)
            onset = first_window_month + int(rng.integers(2))
            step = np.arange(n_months) >= onset
            ramp = np.clip((np.arange(n_months) - onset + 1) / 4, 0, 1) * step
            extra = size * (ramp if fault == "boiler_drift" else step)
            if part == "all":
                heat, base_m = heat * (1 + extra), base_m * (1 + extra)
            elif part == "heating":
                heat = heat * (1 + extra)
            else:
                base_m = base_m + extra * float(np.mean(heat + base_m))
            flag = step.astype(int)
        for m in range(n_months):
            rows.append(
                (
                    f"B{b + 1:03d}",
                    kind,
                    area,
                    months[m],
                    round(float(dju_month[m]), 1),
                    round(float(heat[m] + base_m[m])),
                    int(flag[m]),
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "building",
            "type",
            "floor_area_m2",
            "month",
            "dju",
            "consumption_kwh",
            "anomaly",
        ],
    )
