"""Energy per phase, per process tree, its method disclosed, and faults that never fail a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MakeSubmission
from workbench.calls import Protocol
from workbench.runner.execute import execute_submission
from workbench.runner.metering import (
    FakeMeter,
    RunMeter,
    comparability,
    set_process_meter,
    summarise,
)
from workbench.submissions import load_submission
from workbench.workspace import Workspace


def _execute(workspace: Workspace, folder: Path, **kwargs: object) -> object:
    return execute_submission(
        folder, load_submission(folder), workspace.call("test-call"), workspace.runs_dir, **kwargs
    )


@pytest.fixture
def fake_meter() -> Iterator[FakeMeter]:
    meter = FakeMeter(cpu_watts=20.0, ram_watts=5.0)
    set_process_meter(meter)
    yield meter
    set_process_meter(None)


@pytest.mark.kernel
def test_the_busy_phase_gets_most_of_the_energy(
    workspace: Workspace, make_submission: MakeSubmission, fake_meter: FakeMeter
) -> None:
    folder = make_submission(notebook="busy_train", parameters={"seconds": 3.0})
    record = _execute(workspace, folder)
    energy = record.energy  # type: ignore[attr-defined]
    assert record.status == "succeeded", record.message  # type: ignore[attr-defined]
    assert energy.measured and energy.method == "constant"
    assert set(energy.phases) >= {"data", "train", "inference", "evaluate"}
    assert energy.phases["train"] > 0.6 * energy.total_kwh
    assert energy.phases["train"] > 5 * energy.phases["evaluate"]
    assert sum(energy.phases.values()) == pytest.approx(energy.total_kwh, rel=0.01)
    assert energy.cpu_seconds >= 3.0
    # 3 CPU-seconds at 20 W per busy core is at least 3 * 20 / 3.6e6 kWh, shared with nothing else
    # only if the machine is idle, so check the lower bound on what the kernel itself burned.
    assert energy.cpu_kwh > 0
    assert all(v >= 0 for v in energy.phases.values())


@pytest.mark.kernel
def test_metering_failure_leaves_the_run_complete_and_unmeasured(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    set_process_meter(FakeMeter(fail=True))
    try:
        folder = make_submission()
        record = _execute(workspace, folder)
    finally:
        set_process_meter(None)
    assert record.status == "succeeded"  # type: ignore[attr-defined]
    energy = record.energy  # type: ignore[attr-defined]
    assert energy.measured is False
    assert "fake power interface is broken" in energy.reason
    assert energy.total_kwh is None and energy.co2e_g is None  # never a silent zero


@pytest.mark.kernel
def test_no_metering_thread_outlives_a_run(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    folder = make_submission()
    before = {t.ident for t in threading.enumerate()}
    record = _execute(workspace, folder)
    assert record.energy is not None  # type: ignore[attr-defined]
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    names = [t.name for t in left]
    assert not [
        n for n in names if "meter" in n or "codecarbon" in n.lower() or "APScheduler" in n
    ], names


def _run_cli(workspace: Workspace, ref: str) -> subprocess.Popen[str]:
    env = {**os.environ, "WORKBENCH_HOME": str(workspace.root)}
    exe = Path(sys.executable).parent / "workbench"
    return subprocess.Popen(
        [exe, "run", ref, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.kernel
def test_two_runs_at_once_do_not_count_each_others_work(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    """A CPU-bound and a sleeping notebook run together: the CPU-bound one gets the CPU energy.

    Nothing here depends on how the machine schedules the two runs: the busy notebook burns
    8 s of its own CPU time (not of wall time), and the sleeping one stays in its train cell
    from before the burn starts until after it ends (they meet through files in `signals`).
    """
    signals = tmp_path / "signals"
    signals.mkdir()
    make_submission(
        "busy", notebook="cpu_bound", parameters={"seconds": 8.0, "signals": str(signals)}
    )
    make_submission("idle", notebook="sleeping", parameters={"signals": str(signals)})
    busy, idle = _run_cli(workspace, "test-call/busy"), _run_cli(workspace, "test-call/idle")
    outputs = [p.communicate(timeout=120) for p in (busy, idle)]
    for process, (_, err) in zip((busy, idle), outputs, strict=True):
        assert process.returncode == 0, err
        assert "codecarbon" not in err.lower()  # its log noise stays out of the terminal
    records = [json.loads(out) for out, _ in outputs]
    (busy_train, idle_train) = (
        next(
            cell
            for cell in json.loads((workspace.runs_dir / r["run_id"] / "run.json").read_text())[
                "cells"
            ]
            if cell["phase"] == "train"
        )
        for r in records
    )
    # The recorded train cells overlap: the runs did run at once.
    assert max(busy_train["start"], idle_train["start"]) < min(busy_train["end"], idle_train["end"])
    busy_energy, idle_energy = (r["energy"] for r in records)
    assert busy_energy["measured"] and idle_energy["measured"]
    # CPU time is the apportioning key: each run is charged its own tree's, never the other's.
    assert busy_energy["cpu_seconds"] >= 8.0
    assert idle_energy["cpu_seconds"] < 0.1 * busy_energy["cpu_seconds"], idle_energy
    # Charged by CPU time, the sleeping run gets a small part of the CPU energy; charged by
    # wall time or by the machine's total, it would get as much as the busy run or more.
    share = busy_energy["cpu_kwh"] / (busy_energy["cpu_kwh"] + idle_energy["cpu_kwh"])
    assert share >= 0.8, (busy_energy, idle_energy)


def _protocol(**changes: object) -> Protocol:
    return Protocol(**{"pue": 1.5, **changes})  # type: ignore[arg-type]


def test_summary_normalises_per_prediction_and_per_gain_point() -> None:
    meter = RunMeter(FakeMeter())
    meter.phases_kwh = {"train": 0.002, "inference": 0.001, "baseline": 0.0005, "untagged": 0.0005}
    meter.cpu_kwh, meter.ram_kwh = 0.0035, 0.0005
    energy = summarise(
        meter, _protocol(wue=2.0), metrics={"n_predictions": 500}, gain_vs_baseline=0.25
    )
    assert energy.total_kwh == pytest.approx(0.004)
    # inference 1 Wh for 500 predictions: 2 Wh per 1000
    assert energy.wh_per_1000_predictions == pytest.approx(2.0)
    assert energy.ai_kwh == pytest.approx(0.003) and energy.baseline_kwh == pytest.approx(0.0005)
    # AI 3 Wh for a 25-point gain
    assert energy.wh_per_gain_point == pytest.approx(3 / 25)
    # FRA intensity from codecarbon's data, with the call's PUE applied
    assert energy.co2e_g == pytest.approx(0.004 * 1.5 * energy.carbon_intensity_g_per_kwh)
    assert energy.water_l == pytest.approx(0.008)
    assert energy.comparable and energy.on_reference_machine is None


def test_no_gain_means_no_cost_of_gain_and_reference_machine_flag() -> None:
    meter = RunMeter(FakeMeter())
    meter.phases_kwh = {"train": 0.001}
    energy = summarise(
        meter, _protocol(reference_machine="0" * 16), metrics={}, gain_vs_baseline=-0.1
    )
    assert energy.wh_per_gain_point is None and energy.wh_per_1000_predictions is None
    assert energy.on_reference_machine is False and energy.comparable is False


def test_unknown_country_is_unmeasured_not_zero() -> None:
    meter = RunMeter(FakeMeter())
    meter.phases_kwh = {"train": 0.001}
    energy = summarise(meter, _protocol(country_iso_code="XXX"), metrics={}, gain_vs_baseline=None)
    assert energy.measured is False and "XXX" in (energy.reason or "")


def _energy(method: str, machine: str) -> dict[str, object]:
    return {"measured": True, "method": method, "machine_fingerprint": machine}


def test_runs_by_other_methods_or_machines_are_not_comparable() -> None:
    energies = [
        _energy("load-estimate", "m1"),
        _energy("load-estimate", "m1"),
        _energy("rapl", "m1"),
        _energy("load-estimate", "m2"),
        {"measured": False},
        None,
    ]
    assert comparability(energies) == [
        "",
        "",
        "other method (rapl)",
        "other machine",
        "not measured",
        "not measured",
    ]
    assert comparability(energies, reference="m2") == [
        "not the reference machine",
        "not the reference machine",
        "not the reference machine",
        "",
        "not measured",
        "not measured",
    ]


@pytest.mark.kernel
def test_energy_exports_as_boamps_and_csv(
    workspace: Workspace, make_submission: MakeSubmission, fake_meter: FakeMeter
) -> None:
    import csv
    import io

    from click.testing import CliRunner
    from codecarbon.output_methods.boamps.models import BoAmpsReport

    from workbench.batch import run_submission
    from workbench.cli import main

    make_submission(notebook="busy_train", parameters={"seconds": 1.0})
    record = run_submission(workspace, "test-call/team-a")
    assert record.energy is not None and record.energy.measured
    runner = CliRunner()
    result = runner.invoke(main, ["-w", str(workspace.root), "export-energy", record.run_id])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # The structure is codecarbon's own: it reads back into its model unchanged.
    assert BoAmpsReport.from_dict(report).to_dict() == report
    assert report["header"]["reportId"] == record.run_id
    assert report["measures"][0]["powerConsumption"] == pytest.approx(record.energy.total_kwh)
    assert report["task"]["nbRequest"] == 10
    assert report["quality"] == "low"  # the fake meter reports a constant method

    result = runner.invoke(
        main, ["-w", str(workspace.root), "export-energy", record.run_id, "--format", "csv"]
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    total = next(r for r in rows if r["phase"] == "total")
    phases = [float(r["energy_kwh"]) for r in rows if r["phase"] != "total"]
    assert sum(phases) == pytest.approx(float(total["energy_kwh"]))

    result = runner.invoke(main, ["-w", str(workspace.root), "export-energy", "no-such-run"])
    assert result.exit_code == 2 and "no run 'no-such-run'" in result.stderr


def test_hardware_is_detected_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.runner import metering

    created: list[FakeMeter] = []

    def detect() -> FakeMeter:
        created.append(FakeMeter())
        return created[-1]

    monkeypatch.setattr(metering, "CodecarbonMeter", detect)
    set_process_meter(None)
    try:
        first, second = metering.process_meter(), metering.process_meter()
    finally:
        set_process_meter(None)
    assert first is second and len(created) == 1


def test_a_meter_that_cannot_start_is_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.runner import metering

    def broken() -> FakeMeter:
        raise OSError("no power interface")

    monkeypatch.setattr(metering, "CodecarbonMeter", broken)
    set_process_meter(None)
    try:
        for _ in range(2):
            with pytest.raises(metering.MeteringUnavailable, match="no power interface"):
                metering.process_meter()
    finally:
        set_process_meter(None)


@pytest.mark.kernel
def test_the_real_meter_measures_this_machine(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    from workbench.runner.metering import METHODS

    set_process_meter(None)  # codecarbon's own hardware detection, in this process
    try:
        record = _execute(workspace, make_submission())
    finally:
        set_process_meter(None)
    energy = record.energy  # type: ignore[attr-defined]
    assert energy.measured, energy.reason
    assert energy.method in METHODS and energy.machine.cpu_count >= 1
    assert energy.total_kwh > 0 and energy.co2e_g > 0
