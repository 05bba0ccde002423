"""The CPU packages' energy counters of a Linux powercap tree (RAPL), read by the workbench.

Linux exposes each CPU package's RAPL counter as a zone `intel-rapl:N` (AMD's too) of its
powercap tree: `name` (`package-N`), `energy_uj` (cumulative microjoules) and
`max_energy_range_uj` (where the counter wraps to 0). Subzones (`intel-rapl:N:M`: core,
uncore, dram) are parts of their package and are not added again; RAM has its own model.

Why the workbench reads these files itself rather than through codecarbon: codecarbon's
tracker takes no powercap directory; its RAPL reader, given one, finds a package's
subzones before the package when the tree is not laid out as `/sys/class/powercap` is,
and an unreadable counter there gives an interval of 0 kWh with only a log line. A juror
ranks on these figures: here a counter that cannot be read is an error, never a zero.

`WORKBENCH_POWERCAP_DIR` points the meter at another tree (the default is the machine's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

POWERCAP_DIR_ENV = "WORKBENCH_POWERCAP_DIR"
DEFAULT_POWERCAP_DIR = "/sys/class/powercap"
UJ_PER_KWH = 3.6e12


class RaplUnavailable(Exception):
    """No readable package counter in the powercap tree; the message says which file and why."""


def powercap_dir() -> Path:
    """The powercap tree the meter reads: `WORKBENCH_POWERCAP_DIR`, else the machine's."""
    return Path(os.environ.get(POWERCAP_DIR_ENV) or DEFAULT_POWERCAP_DIR)


def read_uj(path: Path) -> int:
    """One counter file, in microjoules; `RaplUnavailable` naming the file when unreadable."""
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        what = f"{type(exc).__name__}: {exc}"
        raise RaplUnavailable(f"{path}: unreadable RAPL counter ({what})") from exc


@dataclass
class _Zone:
    name: str
    energy: Path
    max_range_uj: int
    last_uj: int


class RaplCounters:
    """Cumulative energy of every CPU package of a powercap tree since it was opened."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise RaplUnavailable(f"{root}: no powercap tree (no RAPL counters)")
        # /sys/class/powercap lists every zone side by side; /sys/devices/virtual/powercap
        # nests them under `intel-rapl`: top-level zones have a single colon in both.
        candidates = sorted(
            {*root.glob("intel-rapl:*"), *root.glob("intel-rapl/intel-rapl:*")},
            key=lambda p: p.name,
        )
        self.zones: list[_Zone] = []
        seen = set()
        for zone in candidates:
            if zone.name.count(":") != 1 or zone.name in seen or not zone.is_dir():
                continue
            seen.add(zone.name)
            name = _zone_name(zone)
            if not name.startswith("package"):
                continue  # psys overlaps the packages; a top-level dram zone is RAM
            self.zones.append(
                _Zone(
                    name=name,
                    energy=zone / "energy_uj",
                    max_range_uj=read_uj(zone / "max_energy_range_uj"),
                    last_uj=read_uj(zone / "energy_uj"),
                )
            )
        if not self.zones:
            raise RaplUnavailable(f"{root}: no readable CPU package zone (intel-rapl:N)")
        self.root = root
        self._total_uj = 0

    def read_kwh(self) -> float:
        """Package energy since the tree was opened, in kWh; a counter's wrap is unfolded.

        A counter that has become unreadable raises `RaplUnavailable`: the run is then
        unmeasured, with that reason, rather than measured short.
        """
        for zone in self.zones:
            value = read_uj(zone.energy)
            delta = value - zone.last_uj
            if delta < 0:
                # The counter wrapped at max_energy_range_uj (at most once per reading: a
                # package would need minutes at full power to go round again).
                delta += zone.max_range_uj
                if delta < 0:
                    raise RaplUnavailable(
                        f"{zone.energy}: counter went back from {zone.last_uj} to {value}"
                        f" and its range ({zone.max_range_uj} µJ) does not explain it"
                    )
            zone.last_uj = value
            self._total_uj += delta
        return self._total_uj / UJ_PER_KWH


def _zone_name(zone: Path) -> str:
    try:
        return (zone / "name").read_text(encoding="ascii").strip().lower()
    except OSError:
        # A zone without a readable name: by the kernel's numbering, intel-rapl:N is package N.
        return f"package-{zone.name.split(':')[1]}"
