"""The energy cross-check benchmark runs end to end and reports the three ways it compares."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "energy_crosscheck.py"


@pytest.mark.kernel
def test_energy_crosscheck_reports_three_ways_split_into_cpu_and_ram() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    rows = {row["way"]: row for row in result["rows"]}
    assert list(rows) == ["workbench", "codecarbon-process", "codecarbon-machine"]
    for way, row in rows.items():
        assert row["cpu_wh"] >= 0 and row["ram_wh"] > 0, way
        assert math.isclose(row["total_wh"], row["cpu_wh"] + row["ram_wh"], rel_tol=1e-6), way
        assert row["duration_s"] > 0, way
    assert rows["codecarbon-process"]["tracking_mode"] == "process"
    assert rows["codecarbon-machine"]["tracking_mode"] == "machine"
    assert rows["workbench"]["cpu_s"] >= 1.0  # the kernel tree did the notebook's work
    assert result["machine"]["codecarbon_cpu_mode"]
