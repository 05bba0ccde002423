"""Synthetic hourly vehicle counts of a permanent counting station on an urban road section.

The station counts both directions of a 2 x 1-lane urban arterial (a boulevard entering a
French town of about 80,000 people). All the data are synthetic, for demonstration only; the
generating assumptions are:

- hours: local time without daylight-saving jumps (24 hours every day), from `start`
  (default Monday 1 January 2024) for `days` days (default 366: one leap year, 8,784 hours);
- daily volume by day type: Monday-Thursday 15,000 vehicles/day, Friday 15,800, Saturday
  12,000, Sunday 8,500, public holiday 8,000 (a public holiday takes the Sunday profile);
- hourly profiles (sums of Gaussian bumps over the hour of day, normalised to the daily volume):
  working days have a morning peak centred at 08:00 (8.1 % of the day in the 07:00 hour,
  8.7 % in the 08:00 hour), a midday shoulder around 12:30 (about 5.5 % an hour) and a wider
  evening peak centred at 17:30 (8.3 % at 16:00, 9.3 % at 17:00); the Friday evening peak is
  about 18 % stronger and 30 minutes earlier; Saturday has one broad hump centred at 15:00
  (shopping, about 8.5 % an hour from 11:00 to 15:00) with a shoulder at 11:00; Sunday and
  public holidays a late-morning bump at 11:00 (6.4 %) and a broad return-trip hump at 17:30
  (9.3 % at 17:00); nights (01:00-04:00) carry 0.4-0.9 % of the day per hour;
- French public holidays: the 8 fixed-date ones (1 January, 1 May, 8 May, 14 July,
  15 August, 1 November, 11 November, 25 December) and the 3 moving ones (Easter Monday,
  Ascension Thursday, Whit Monday, from the Gregorian Easter date);
- school holidays (a rule-based calendar in the spirit of one French zone): ISO weeks 7-8
  (winter), 15-16 (spring), 43-44 (All Saints), 20 December - 3 January (Christmas) and
  6 July - 31 August (summer). On school-holiday days traffic is 8 % lower, and the
  07:00-08:59 hours a further 15 % lower (no school runs); 14 July - 20 August a further
  15 % lower (summer departures);
- annual cycle: +/- 3 % (cosine, highest mid-June, lowest mid-December); December Saturdays
  +10 % (Christmas shopping);
- day-to-day variation: a daily factor following an AR(1) process, persistence 0.6, standard
  deviation 4 % (local events, economic activity), shared by the 24 hours of the day;
- rain: hourly wet/dry Markov chain (a dry hour turns wet with probability 3 % in
  April-September and 4.5 % in October-March; a wet hour stays wet with probability 80 %:
  spells of 5 hours on average, about 15 % of hours wet); amounts exponential, mean 1.2 mm/h.
  A wet hour (>= 0.2 mm) lowers demand by 3 %, a heavy one (>= 4 mm) by 8 %, and lowers the
  road's capacity by 10 %;
- capacity: 1,900 vehicles/hour (both directions); the flow is a soft minimum of demand and
  capacity, flow = demand / (1 + (demand / capacity)^8)^(1/8): about 1 % below demand at the
  normal peaks, flattened to the capacity when roadworks or incidents cut it;
- roadworks: 4 periods a year on average (Poisson), each 5-15 consecutive days starting on a
  Monday, with a lane closure from 07:00 to 18:59 that cuts capacity to 55 % (about 1,050
  vehicles/hour) and demand by 10 % all day (drivers divert); not in the data columns;
- incidents (crashes, breakdowns, deliveries): 1 a week on average at a random hour between
  06:00 and 21:59, lasting 1-3 hours, capacity cut to 40-70 %; not in the data columns;
- counting noise: hourly multiplicative log-normal noise (4 %) then a Poisson draw of the count;
- the series is complete: counter outages and daylight-saving duplicates are *not* simulated.

Columns: `time` (hour start), `vehicles` (vehicles/hour, both directions), `rain_mm` (mm in the
hour), `public_holiday` (0/1), `school_holiday` (0/1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {
    "time": "hour start, local time, ISO date-time (e.g. 2024-03-18 08:00)",
    "vehicles": "vehicles counted in the hour, both directions, vehicles/hour",
    "rain_mm": "rainfall in the hour, mm (in operation, the forecast for the target day)",
    "public_holiday": "1 on a public holiday, else 0",
    "school_holiday": "1 on a school-holiday day of the local zone, else 0",
}

CAPACITY = 1_900.0  # vehicles/hour, both directions


def _easter(year: int) -> tuple[int, int]:
    """Month and day of Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return month, day + 1


def french_public_holidays(years: range) -> set:
    """The 11 French public holidays of `years`, as `datetime.date` values."""
    import datetime as dt

    days = set()
    for year in years:
        for month, day in ((1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)):
            days.add(dt.date(year, month, day))
        easter = dt.date(year, *_easter(year))
        for offset in (1, 39, 50):  # Easter Monday, Ascension Thursday, Whit Monday
            days.add(easter + dt.timedelta(days=offset))
    return days


def school_holiday_days(dates: pd.DatetimeIndex) -> pd.Series:
    """True on the days of the rule-based school-holiday calendar described above."""
    import pandas as pd

    week = dates.isocalendar().week.to_numpy()
    month, day = dates.month.to_numpy(), dates.day.to_numpy()
    holiday = (
        ((week >= 7) & (week <= 8))
        | ((week >= 15) & (week <= 16))
        | ((week >= 43) & (week <= 44))
        | ((month == 12) & (day >= 20))
        | ((month == 1) & (day <= 3))
        | ((month == 7) & (day >= 6))
        | (month == 8)
    )
    return pd.Series(holiday, index=dates)


def _bumps(hours, bumps, floor):
    """Night floor plus Gaussian bumps (centre, width in hours, weight) on the 24-hour circle."""
    import numpy as np

    out = np.full(len(hours), floor)
    for centre, width, weight in bumps:
        gap = np.abs(hours - centre)
        gap = np.minimum(gap, 24 - gap)
        out += weight * np.exp(-0.5 * (gap / width) ** 2)
    return out / out.sum()


def hourly_profiles() -> dict:
    """Share of the daily volume in each hour (hour start 0-23), by day type."""
    import numpy as np

    h = np.arange(24) + 0.5  # middle of each hour
    working = [(8.0, 0.9, 1.0), (12.5, 2.0, 0.35), (17.5, 1.5, 0.85), (14.0, 5.0, 0.35)]
    friday = [(8.0, 0.9, 1.0), (12.5, 2.0, 0.35), (17.0, 1.6, 1.0), (14.0, 5.0, 0.38)]
    saturday = [(11.0, 1.6, 0.4), (15.0, 3.5, 0.9)]
    sunday = [(11.0, 1.5, 0.5), (17.5, 2.8, 0.85), (14.0, 5.0, 0.1)]
    evening = (21.5, 2.5, 0.12)  # late-evening tail, wrapping past midnight
    return {
        "working": _bumps(h, [*working, evening], 0.03),
        "friday": _bumps(h, [*friday, evening], 0.03),
        "saturday": _bumps(h, [*saturday, (21.5, 2.5, 0.2)], 0.035),
        "sunday": _bumps(h, [*sunday, evening], 0.035),
    }


def generate(seed: int = 0, days: int = 366, start: str = "2024-01-01") -> pd.DataFrame:
    """`days` days of synthetic hourly counts and rain, deterministic for `seed`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    n = days * 24
    times = pd.date_range(start, periods=n, freq="h")
    hour = np.tile(np.arange(24), days)

    # Calendar, one value per day.
    holidays = french_public_holidays(range(dates[0].year, dates[-1].year + 1))
    public = np.array([d in holidays for d in dates.date])
    school = school_holiday_days(dates).to_numpy()
    weekday = dates.day_of_week.to_numpy()
    day_type = np.where(
        public | (weekday == 6),
        "sunday",
        np.where(weekday == 5, "saturday", np.where(weekday == 4, "friday", "working")),
    )
    volume = pd.Series(day_type).map(
        {"working": 15_000.0, "friday": 15_800.0, "saturday": 12_000.0, "sunday": 8_500.0}
    )
    volume = np.where(public, 8_000.0, volume.to_numpy())
    doy, month, mday = dates.day_of_year.to_numpy(), dates.month, dates.day
    volume = volume * (1 + 0.03 * np.cos(2 * np.pi * (doy - 167) / 365.25))
    volume = volume * np.where((month == 12) & (weekday == 5), 1.10, 1.0)
    volume = volume * np.where(school, 0.92, 1.0)
    summer_peak = ((month == 7) & (mday >= 14)) | ((month == 8) & (mday <= 20))
    volume = volume * np.where(summer_peak, 0.85, 1.0)
    daily = np.empty(days)
    daily[0] = rng.normal(0, 0.04)
    for i in range(1, days):
        daily[i] = 0.6 * daily[i - 1] + rng.normal(0, 0.04 * np.sqrt(1 - 0.6**2))
    volume = volume * (1 + daily)

    # Hourly demand from the day-type profiles.
    profiles = hourly_profiles()
    share = np.concatenate([profiles[t] for t in day_type])
    demand = np.repeat(volume, 24) * share
    school_h = np.repeat(school, 24)
    demand = demand * np.where(school_h & (hour >= 7) & (hour <= 8), 0.85, 1.0)

    # Rain: a wet/dry Markov chain per hour, wetter in October-March.
    month_h = times.month.to_numpy()
    p_start = np.where((month_h >= 4) & (month_h <= 9), 0.03, 0.045)
    u = rng.random(n)
    wet = np.zeros(n, dtype=bool)
    for i in range(1, n):
        wet[i] = u[i] < (0.8 if wet[i - 1] else p_start[i])
    rain = np.where(wet, rng.exponential(1.2, n), 0.0).round(1)
    demand = demand * np.where(rain >= 4, 0.92, np.where(rain >= 0.2, 0.97, 1.0))
    capacity = np.full(n, CAPACITY) * np.where(rain >= 0.2, 0.9, 1.0)

    # Roadworks: lane closures of 5-15 days starting on a Monday.
    mondays = np.flatnonzero(weekday == 0)
    for _ in range(rng.poisson(4 * days / 365)):
        first = int(rng.choice(mondays)) * 24
        span = slice(first, min(n, first + int(rng.integers(5, 16)) * 24))
        demand[span] *= 0.90
        daytime = (hour[span] >= 7) & (hour[span] <= 18)
        capacity[span] = np.where(daytime, capacity[span] * 0.55, capacity[span])

    # Incidents: 1 a week, 1-3 hours, 06:00-21:59.
    for _ in range(rng.poisson(days / 7)):
        first = int(rng.integers(days)) * 24 + int(rng.integers(6, 22))
        span = slice(first, min(n, first + int(rng.integers(1, 4))))
        capacity[span] *= rng.uniform(0.4, 0.7)

    flow = demand / (1 + (demand / capacity) ** 8) ** (1 / 8)  # soft minimum
    flow = flow * rng.lognormal(0, 0.04, n)
    vehicles = rng.poisson(flow)
    return pd.DataFrame(
        {
            "time": times,
            "vehicles": vehicles.astype(int),
            "rain_mm": rain,
            "public_holiday": np.repeat(public, 24).astype(int),
            "school_holiday": school_h.astype(int),
        }
    )
