"""Synthetic lookout-camera frames for early wildfire-smoke detection, summarised by features.

A fictional fire service runs 6 lookout cameras over a forest massif during the fire season
(1 June - 30 September). Each row is one daylight frame in which the camera's change detector
found a candidate region; no image is stored, only features of that region. Everything below
is synthetic, for demonstration only.

Generating assumptions:

- 12,000 frames by default, spread uniformly over the 122 days of the season, the 6 cameras
  and the hours 07:00-21:00; cameras look in fixed directions (bearings 60°, 120°, 180°, 210°,
  270° and 300°); cameras C2 and C5 overlook a quarry and dirt roads (three times more dust);
- weather: daily cloud cover (share of sky, AR(1) around 0.3), daily wind (gamma, mean
  4 m/s, stronger in the afternoon) and daily haze (0-1, around 0.25, higher before 10:00);
- sun glare (0-1): high when the sun is low (morning, evening) and within about 30° of the
  camera's bearing (sun azimuth moves 15° an hour from 97° at 07:00);
- smoke: 8 % of frames on average, more likely in the afternoon (peak near 16:00: about 14 %
  of frames against 3-4 % in the morning), with wind (+8 % per m/s) and under clear skies
  (70 % less likely under full overcast); the plume is 2-25 km away and its contrast falls
  with distance, haze and wind;
- the other frames show one of five scenes, drawn with weights that depend on the weather:
  clear sky with birds, vehicles or moving branches (weight 0.30); clouds (0.9 times the
  square of cloud cover); morning fog or haze banks (0.8 times haze around 08:00, plus 0.04
  times haze); dust raised by wind above 5 m/s (0.12 per 3 m/s, three times more at C2 and
  C5); sun glare (0.6 times the glare index). With seed 0: clear 52 %, clouds 21 %, fog 8 %,
  smoke 8 %, glare 7 %, dust 4 %;
- region features by scene (Gaussian noise around these means): blue/grey ratio 1.25 minus
  0.2 times haze for clear sky (sd 0.05), 1.05 plus 0.05 times haze for smoke (sd 0.04), 1.02
  for clouds, 1.07 for fog, 0.98 for dust, 1.15 for glare; contrast about 0.16 for glare,
  0.13 for clouds, 0.11 for smoke, 0.09 for dust, 0.06 for fog, 0.04 for clear sky; temporal
  change about 0.08 for dust, 0.05 for smoke and glare (smoke and dust grow with wind), 0.02
  for clouds, fog and clear sky. Smoke therefore looks like clouds, fog or dust on colour and
  contrast alone; the weather, the hour and the glare index tell them apart.

Columns: `time`, `camera`, `sky_contrast`, `blue_grey_ratio`, `temporal_change`, `haze_index`,
`cloud_cover`, `sun_glare`, `wind_ms` and the label `smoke` (1 when an operator confirmed
smoke). An extra column `scene` (clear, smoke, cloud, fog, dust, glare) tells what each frame
shows; real data need not have it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = {
    "time": "date and time of the frame, ISO date-time, local time",
    "camera": "camera identifier, text",
    "sky_contrast": "grey-level contrast of the candidate region against the sky band, 0-1",
    "blue_grey_ratio": "blue level over mean grey level in the region, ratio (clear sky above 1.2)",
    "temporal_change": "mean absolute grey-level change of the region over 5 minutes, 0-1",
    "haze_index": "haze over the whole frame, 0-1",
    "cloud_cover": "cloud cover from the weather service, share of sky 0-1",
    "sun_glare": "sun glare index from the sun position and camera bearing, 0-1",
    "wind_ms": "wind speed at the nearest weather station, m/s",
    "smoke": "1 when an operator confirmed smoke in the frame, else 0",
}

SMOKE_RATE = 0.08
BEARINGS = {"C1": 60, "C2": 120, "C3": 180, "C4": 210, "C5": 270, "C6": 300}
DUSTY = ("C2", "C5")


def generate(
    seed: int = 0, frames: int = 12_000, start: str = "2025-06-01", days: int = 122
) -> pd.DataFrame:
    """`frames` synthetic candidate frames over `days` days, deterministic for `seed`."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)

    # Daily weather.
    cloud_day = np.zeros(days)
    cloud_day[0] = 0.3
    for d in range(1, days):
        cloud_day[d] = 0.3 + 0.7 * (cloud_day[d - 1] - 0.3) + rng.normal(0, 0.18)
    cloud_day = np.clip(cloud_day, 0, 1)
    wind_day = rng.gamma(4.0, 1.0, days)
    haze_day = np.clip(rng.beta(2, 6, days), 0, 1)

    # Frames: day, camera, hour.
    day = rng.integers(0, days, frames)
    names = np.array(list(BEARINGS))
    camera = names[rng.integers(0, len(names), frames)]
    hour = rng.uniform(7, 21, frames)
    order = np.lexsort((hour, day))
    day, camera, hour = day[order], camera[order], hour[order]
    times = pd.Timestamp(start) + pd.to_timedelta(day, unit="D") + pd.to_timedelta(hour, unit="h")

    cloud = np.clip(cloud_day[day] + rng.normal(0, 0.08, frames), 0, 1)
    afternoon = np.exp(-(((hour - 15) / 3.5) ** 2))
    wind = np.clip(wind_day[day] * (0.7 + 0.6 * afternoon) + rng.normal(0, 0.8, frames), 0, None)
    morning = np.exp(-(((hour - 8) / 1.5) ** 2))
    haze = np.clip(haze_day[day] + 0.25 * morning + rng.normal(0, 0.05, frames), 0, 1)
    sun_azimuth = 97 + 15 * (hour - 7)
    low_sun = np.clip(np.abs(hour - 13.75) / 7.25, 0, 1)
    bearing = np.array([BEARINGS[c] for c in camera])
    gap = np.abs((sun_azimuth - bearing + 180) % 360 - 180)
    glare = np.clip(low_sun * np.exp(-((gap / 30) ** 2)) + rng.normal(0, 0.03, frames), 0, 1)

    # Smoke, then one of the confounding scenes for the other frames.
    smoke_weight = (0.4 + np.exp(-(((hour - 16) / 3) ** 2))) * (1 + 0.08 * wind) * (1 - 0.7 * cloud)
    smoke = rng.random(frames) < SMOKE_RATE * smoke_weight / smoke_weight.mean()
    dusty = np.isin(camera, DUSTY)
    weights = np.column_stack(
        [
            np.full(frames, 0.30),  # clear
            0.9 * cloud**2,  # cloud
            0.8 * haze * morning + 0.04 * haze,  # fog
            0.12 * np.clip(wind - 5, 0, None) / 3 * np.where(dusty, 3.0, 1.0),  # dust
            0.6 * glare,  # glare
        ]
    )
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    other = (rng.random(frames)[:, None] > cumulative).sum(axis=1)
    other = np.minimum(other, weights.shape[1] - 1)
    scenes = np.array(["clear", "cloud", "fog", "dust", "glare"])
    scene = np.where(smoke, "smoke", scenes[other])

    def noise(sd):
        return rng.normal(0, sd, frames)

    distance = rng.uniform(2, 25, frames)
    smoke_contrast = 0.26 * np.exp(-distance / 20) * (1 - 0.5 * haze) * (1 - 0.03 * wind)
    contrast = np.select(
        [scene == "smoke", scene == "cloud", scene == "fog", scene == "dust", scene == "glare"],
        [
            smoke_contrast + noise(0.03),
            0.08 + 0.10 * cloud + noise(0.04),
            0.06 + noise(0.025),
            0.09 + noise(0.04),
            0.10 + 0.15 * glare + noise(0.05),
        ],
        0.04 + noise(0.025),
    )
    ratio = np.select(
        [scene == "smoke", scene == "cloud", scene == "fog", scene == "dust", scene == "glare"],
        [
            1.05 + 0.05 * haze + noise(0.04),
            1.02 + noise(0.04),
            1.07 + noise(0.03),
            0.98 + noise(0.04),
            1.15 + noise(0.05),
        ],
        1.25 - 0.2 * haze + noise(0.05),
    )
    change = np.select(
        [scene == "smoke", scene == "cloud", scene == "fog", scene == "dust", scene == "glare"],
        [
            0.03 + 0.004 * wind + noise(0.015),
            0.01 + 0.004 * wind + noise(0.012),
            0.015 + noise(0.01),
            0.03 + 0.006 * wind + noise(0.02),
            0.05 + noise(0.025),
        ],
        0.015 + noise(0.012),
    )
    return pd.DataFrame(
        {
            "time": times.round("s"),
            "camera": camera,
            "sky_contrast": np.clip(contrast, 0, 1).round(4),
            "blue_grey_ratio": np.clip(ratio, 0.5, 2).round(4),
            "temporal_change": np.clip(change, 0, 1).round(4),
            "haze_index": haze.round(3),
            "cloud_cover": cloud.round(2),
            "sun_glare": glare.round(3),
            "wind_ms": wind.round(1),
            "smoke": smoke.astype(int),
            "scene": scene,
        }
    )
