"""Synthetic hourly operating data of the aerated basin of a wastewater treatment plant.

The plant is a fictional activated-sludge plant of about 60,000 population equivalents (p.e.)
with one 12,000 m³ aerated basin and fine-bubble diffusers. All data are synthetic, for
demonstration only.

Influent (what reaches the biological basin):

- dry-weather flow 7,500 m³/day (312.5 m³/h on average) with a diurnal profile made of a constant
  and two Gaussian bumps (centred on 11:00 and 20:00, widths 2.5 h and 2 h), normalised to a
  mean of 1: minimum 0.52 x the mean around 02:00, peaks 1.63 x at 10:00-12:00 and 1.40 x at
  19:00-21:00;
- ammonium (NH4-N) load 450 kg N/day (7.5 g N per p.e. and day) with the same timing but a
  sharper profile (minimum 0.41 x, peaks 1.80 x and 1.46 x): the night water is weaker;
- weekly pattern: Saturday and Sunday -8 % of flow and load;
- annual pattern: -6 % of flow and load from 20 July to 20 August (holidays);
- noise: multiplicative AR(1) noise, hourly correlation 0.9, 6 % on flow and 8 % on load;
- rain events: about 55 a year (a Poisson process, 1.3 x the mean rate from October to March,
  0.7 x from April to September); each adds storm flow of 0.5 to 2.5 x the mean dry-weather
  flow (uniform), half of it in the first hour, all of it in the second, then receding
  exponentially with a 10-hour time constant; the ammonium load
  is unchanged except a first flush of +25 % during the first 3 hours, so the influent is diluted;
- water temperature: 16.5 + 5.5 cos(2 pi (day of year - 220) / 365) °C (11 °C in February,
  22 °C in August) plus a slow AR(1) deviation of 0.8 °C.

Plant model (`plant`, also used by the template to evaluate aeration policies):

- the basin mixes the influent: the flow and load it sees are exponential moving averages of
  the influent with a time constant of `mixing_h` = 6 hours;
- nitrification in a completely mixed basin at steady state within the hour, with Monod
  kinetics in ammonium and oxygen:
  Q (S_in - S) = r_max20 theta_n^(T - 20) V capacity S / (K_NH + S) DO / (K_O + DO),
  solved exactly for the effluent ammonium S (a quadratic), with r_max20 = 6.0 g N/m³/h,
  theta_n = 1.07, K_NH = 0.7 mg/L, K_O = 0.5 mg/L, V = 12,000 m³; `capacity` (1 on average)
  is the nitrifiers' condition. This is a quasi-steady state: an hour's effluent depends on
  that hour's DO only (the DO is not carried over from one hour to the next);
- oxygen demand (kg O2/h) = 4.57 x nitrified NH4-N + 5.0 x influent NH4-N load (carbonaceous
  demand, via a fixed COD/N ratio);
- oxygen transfer of the blowers and diffusers: field efficiency (kg O2/kWh) =
  SAE x alpha x (beta x DO_sat(T) - DO) / DO_sat(20) x 1.024^(T - 20), with SAE = 4.0 kg O2/kWh
  (standard conditions), alpha = 0.6, beta = 0.95 and DO_sat(T) the saturation concentration
  of clean water; energy (kWh) = oxygen demand / field efficiency, never less than 35 kWh/h
  (the minimum air flow that keeps the basin mixed).

Operation in the history: the operators changed the dissolved-oxygen (DO) set-point every 1 to
6 days (trials, seasonal settings, manual overrides), uniformly among 0.8, 0.9, ..., 3.0 mg/L;
the measured DO is the set-point plus 0.12 mg/L Gaussian noise (control loop). The nitrifiers'
condition `capacity` is a slow log-normal AR(1) process (10 %, 3-day correlation time).
Measured effluent ammonium = plant value x log-normal noise (8 %) + 0.03 mg/L analyser noise;
measured energy = plant value x (1 + 3 % Gaussian noise). The series is complete (no gaps).

Columns: `time` (hour), `flow_m3h`, `nh4_in_mgl`, `temp_c`, `do_mgl`, `nh4_out_mgl`, `energy_kwh`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLUMNS = {
    "time": "start of the hour, ISO date-time",
    "flow_m3h": "influent flow into the biological basin, m³/h",
    "nh4_in_mgl": "influent ammonium NH4-N, mg/L",
    "temp_c": "water temperature in the basin, °C",
    "do_mgl": "dissolved oxygen measured in the aerated basin, mg/L",
    "nh4_out_mgl": "effluent ammonium NH4-N, mg/L",
    "energy_kwh": "blower electricity used in the hour, kWh",
}

PLANT = {
    "volume_m3": 12_000.0,  # aerated basin volume
    "rmax20": 6.0,  # maximum nitrification rate at 20 °C, g N/m³/h
    "theta_n": 1.07,  # temperature coefficient of nitrification
    "k_nh": 0.7,  # ammonium half-saturation, mg N/L
    "k_o": 0.5,  # oxygen half-saturation, mg O2/L
    "mixing_h": 6.0,  # time constant of the basin's mixing of the influent, hours
    "carbon_o2_per_n": 5.0,  # carbonaceous oxygen demand per kg of influent NH4-N, kg O2
    "sae": 4.0,  # standard aeration efficiency of blowers and diffusers, kg O2/kWh
    "alpha": 0.6,  # ratio of process water to clean water oxygen transfer
    "beta": 0.95,  # ratio of process water to clean water oxygen saturation
    "theta_a": 1.024,  # temperature coefficient of oxygen transfer
    "min_kwh": 35.0,  # minimum blower energy per hour (mixing), kWh
}


def do_saturation(temp_c: Any) -> np.ndarray:
    """Oxygen saturation of clean water at sea level (mg/L) for a temperature in °C."""
    import numpy as np

    t = np.asarray(temp_c, dtype=float)
    return 14.652 - 0.41022 * t + 0.007991 * t**2 - 0.000077774 * t**3


def _ewma(values: np.ndarray, time_constant_h: float) -> np.ndarray:
    import numpy as np

    a = 1.0 - np.exp(-1.0 / max(time_constant_h, 1e-9))
    out = np.empty_like(values, dtype=float)
    level = float(values[0])
    for i, v in enumerate(values):
        level += a * (float(v) - level)
        out[i] = level
    return out


def plant(
    flow_m3h: Any,
    nh4_in_mgl: Any,
    temp_c: Any,
    do_mgl: Any,
    capacity: Any = 1.0,
    **params: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Effluent NH4-N (mg/L) and blower energy (kWh) per hour of the plant model.

    The inputs are hourly series in time order (the basin's mixing links consecutive hours);
    `params` override `PLANT`. The module docstring states the equations.
    """
    import numpy as np

    p = {**PLANT, **params}
    unknown = set(params) - set(PLANT)
    if unknown:
        raise TypeError(f"unknown plant parameter(s): {', '.join(sorted(unknown))}")
    flow = np.asarray(flow_m3h, dtype=float)
    load = flow * np.asarray(nh4_in_mgl, dtype=float)  # g N/h
    temp = np.asarray(temp_c, dtype=float)
    do = np.asarray(do_mgl, dtype=float)
    q = _ewma(flow, p["mixing_h"])
    s_in = _ewma(load, p["mixing_h"]) / q
    rate = (
        p["rmax20"]
        * p["theta_n"] ** (temp - 20)
        * p["volume_m3"]
        * np.asarray(capacity, dtype=float)
        * do
        / (p["k_o"] + do)
    )  # g N/h at saturating ammonium
    # Q (s_in - s) (k_nh + s) = rate s  <=>  Q s^2 + (Q k_nh - Q s_in + rate) s - Q s_in k_nh = 0
    b = q * p["k_nh"] - q * s_in + rate
    s = (-b + np.sqrt(b**2 + 4 * q**2 * s_in * p["k_nh"])) / (2 * q)
    nitrified = q * (s_in - s) / 1000  # kg N/h
    o2 = 4.57 * nitrified + p["carbon_o2_per_n"] * q * s_in / 1000  # kg O2/h
    field = (
        p["sae"]
        * p["alpha"]
        * (p["beta"] * do_saturation(temp) - do)
        / do_saturation(20.0)
        * p["theta_a"] ** (temp - 20)
    )
    energy = np.maximum(o2 / field, p["min_kwh"])
    return s, energy


def capacity_disturbance(
    rng: np.random.Generator, hours: int, sd: float = 0.10, correlation_h: float = 72.0
) -> np.ndarray:
    """Nitrifiers' condition: log-normal AR(1), mean about 1, `sd` in log, hourly steps."""
    import numpy as np

    return np.exp(_ar1(rng, hours, float(np.exp(-1.0 / correlation_h)), sd) - sd**2 / 2)


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    """Stationary Gaussian AR(1) series of `n` steps, lag-1 correlation `phi`, sd `sd`."""
    import numpy as np

    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), n)
    x = np.empty(n)
    x[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + shocks[i]
    return x


def generate(seed: int = 0, days: int = 365, start: str = "2023-01-01") -> pd.DataFrame:
    """`days` days of synthetic hourly plant data, deterministic for `seed`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = days * 24
    time = pd.date_range(start, periods=n, freq="h")
    hour = time.hour.to_numpy()
    doy = time.day_of_year.to_numpy()

    def profile(base: float, morning: float, evening: float) -> np.ndarray:
        """Diurnal shape of each hour: a constant and two Gaussian bumps, mean 1 over a day."""
        h = np.arange(24) + 0.5
        shape = np.full(24, base)
        for height, centre, width in ((morning, 11, 2.5), (evening, 20, 2.0)):
            d = (h - centre + 12) % 24 - 12
            shape = shape + height * np.exp(-0.5 * (d / width) ** 2)
        return (shape / shape.mean())[hour]

    flow_shape = profile(0.45, 1.0, 0.8)
    load_shape = profile(0.35, 1.25, 0.95)
    weekend = np.where(time.day_of_week.to_numpy() >= 5, 0.92, 1.0)
    holidays = np.where(
        ((time.month == 7) & (time.day >= 20)) | ((time.month == 8) & (time.day <= 20)), 0.94, 1.0
    )
    flow_dry = 312.5 * flow_shape * weekend * holidays * np.exp(_ar1(rng, n, 0.9, 0.06))
    load = 18_750.0 * load_shape * weekend * holidays * np.exp(_ar1(rng, n, 0.9, 0.08))  # g N/h

    # Rain events: storm flow and a first flush of ammonium.
    wet_season = np.isin(time.month.to_numpy(), [10, 11, 12, 1, 2, 3])
    start_prob = 55 / (365 * 24) * np.where(wet_season, 1.3, 0.7)
    storm = np.zeros(n)
    flush = np.ones(n)
    lag = np.arange(72)
    shape = np.where(lag < 2, (lag + 1) / 2, np.exp(-(lag - 1) / 10.0))
    for t0 in map(int, np.flatnonzero(rng.random(n) < start_prob)):
        peak = rng.uniform(0.5, 2.5) * 312.5
        end = min(n, t0 + len(lag))
        storm[t0:end] += peak * shape[: end - t0]
        flush[t0 : min(n, t0 + 3)] = 1.25
    flow = flow_dry + storm
    load = load * flush
    nh4_in = load / flow
    temp = 16.5 + 5.5 * np.cos(2 * np.pi * (doy - 220) / 365) + _ar1(rng, n, 0.995, 0.8)

    # Operators' DO set-points, changed every 1 to 6 days.
    setpoint = np.empty(n)
    i = 0
    while i < n:
        length = 24 * int(rng.integers(1, 7))
        setpoint[i : i + length] = rng.integers(8, 31) / 10
        i += length
    do = np.clip(setpoint + rng.normal(0.0, 0.12, n), 0.2, None)

    capacity = capacity_disturbance(rng, n)
    nh4_out, energy = plant(flow, nh4_in, temp, do, capacity)
    nh4_out = np.clip(
        nh4_out * np.exp(rng.normal(0.0, 0.08, n)) + rng.normal(0.0, 0.03, n), 0.02, None
    )
    energy = energy * (1 + rng.normal(0.0, 0.03, n))
    return pd.DataFrame(
        {
            "time": time,
            "flow_m3h": flow.round(1),
            "nh4_in_mgl": nh4_in.round(2),
            "temp_c": temp.round(2),
            "do_mgl": do.round(2),
            "nh4_out_mgl": nh4_out.round(3),
            "energy_kwh": energy.round(1),
        }
    )
