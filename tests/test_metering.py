"""Energy per phase, per process tree, its method disclosed, and faults that never fail a run."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeSubmission
from workbench.calls import Protocol
from workbench.notebooks import cell_phases
from workbench.runner.execute import PHASES_UNTAGGED, execute_submission
from workbench.runner.metering import (
    METHOD_UNCERTAINTY,
    METHODS,
    Energy,
    FakeMeter,
    MachineInfo,
    RunMeter,
    comparability,
    set_process_meter,
    summarise,
)
from workbench.runner.records import Fingerprint, RunRecord
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


@dataclass
class ControlledRunMeter(RunMeter):
    """A run meter whose kernel tree and machine CPU times are set by the test.

    The run's CPU share is `own_s / busy_s` over each interval: energies follow from the
    meter's readings and these values alone, whatever the real machine does meanwhile.
    """

    own_s: float = 0.0
    busy_s: float = 0.0
    rss_share: float = 0.0

    def _machine_busy_seconds(self) -> float:
        return self.busy_s

    def _tree(self) -> list[Any]:
        return []

    def _tree_cpu_seconds(self, procs: list[Any]) -> float:
        return self.own_s

    def _tree_rss_share(self, procs: list[Any]) -> float:
        return self.rss_share


class StepMeter:
    """Machine energy that moves only when the test says so (cumulative CPU, RAM kWh)."""

    def __init__(self, method: str = "constant") -> None:
        self.cpu_kwh, self.ram_kwh, self.method = 0.0, 0.0, method

    def machine(self) -> MachineInfo:
        return FakeMeter().machine().model_copy(update={"method": self.method})

    def read(self) -> tuple[float, float]:
        return self.cpu_kwh, self.ram_kwh


def test_a_cell_with_several_phases_splits_its_energy_evenly() -> None:
    machine = StepMeter()
    meter = ControlledRunMeter(machine, interval_s=3600)
    meter.start()
    try:
        meter.enter_phase(("data",))
        machine.cpu_kwh, meter.own_s, meter.busy_s = 0.001, 1.0, 1.0
        meter.enter_phase(("train", "inference"))
        machine.cpu_kwh, meter.own_s, meter.busy_s = 0.005, 3.0, 5.0  # half of 4 Wh is ours
        meter.enter_phase("evaluate")
    finally:
        meter.stop()
    assert meter.phases_kwh["data"] == pytest.approx(0.001)
    assert meter.phases_kwh["train"] == pytest.approx(0.001)
    assert meter.phases_kwh["inference"] == pytest.approx(0.001)
    assert meter.phases_kwh["evaluate"] == 0.0
    assert sum(meter.phases_kwh.values()) == pytest.approx(meter.cpu_kwh)
    assert cell_phases({"metadata": {"tags": ["train", "parameters", "inference", "train"]}}) == (
        "train",
        "inference",
    )
    assert cell_phases({"metadata": {}}) == ("untagged",)


def _summary(
    phases: dict[str, float],
    metrics: dict[str, float] | None = None,
    gain: float | None = 0.2,
    **kwargs: Any,
) -> Energy:
    meter = RunMeter(FakeMeter())
    meter.phases_kwh = phases
    return summarise(meter, _protocol(), metrics=metrics or {}, gain_vs_baseline=gain, **kwargs)


def test_figures_of_phases_that_never_ran_are_unknown_never_zero() -> None:
    energy = _summary({"data": 0.001, "evaluate": 0.001}, {"n_predictions": 10})
    assert energy.measured and energy.total_kwh == pytest.approx(0.002)
    for figure in ("ai_kwh", "wh_per_1000_predictions", "baseline_kwh", "wh_per_gain_point"):
        assert getattr(energy, figure) is None, figure
    assert energy.unknown == {
        "ai_kwh": "no cell tagged train or inference ran",
        "wh_per_1000_predictions": "no cell tagged inference ran",
        "baseline_kwh": "no cell tagged baseline ran",
        "wh_per_gain_point": "the AI energy is unknown: no cell tagged train or inference ran",
    }
    # The record's JSON says so too: null with its reason.
    dumped = json.loads(energy.model_dump_json())
    assert dumped["ai_kwh"] is None and "ai_kwh" in dumped["unknown"]


def test_a_phase_that_ran_and_used_nothing_is_a_real_zero() -> None:
    energy = _summary(
        {"train": 0.0, "inference": 0.0, "baseline": 0.0, "evaluate": 0.001}, {"n_predictions": 10}
    )
    assert energy.unknown == {}
    assert energy.ai_kwh == 0.0 and energy.baseline_kwh == 0.0
    assert energy.wh_per_1000_predictions == 0.0 and energy.wh_per_gain_point == 0.0


def test_the_reason_says_what_is_missing() -> None:
    ran = {"phases_ran": {"train", "inference"}}
    phases = {"train": 0.002, "inference": 0.001}
    no_count = _summary(phases, {}, **ran)
    assert no_count.unknown["wh_per_1000_predictions"] == "the notebook recorded no n_predictions"
    zero = _summary(phases, {"n_predictions": 0}, **ran)
    assert zero.unknown["wh_per_1000_predictions"] == "n_predictions is not positive (0)"
    # Only train ran: AI energy is known, per prediction is not.
    train_only = _summary({"train": 0.002}, {"n_predictions": 10}, phases_ran={"train"})
    assert train_only.ai_kwh == pytest.approx(0.002)
    assert train_only.unknown["wh_per_1000_predictions"] == "no cell tagged inference ran"
    # The phases that ran decide, not which phases the meter happened to charge.
    charged = _summary({"untagged": 0.001}, {"n_predictions": 10}, phases_ran={"inference"})
    assert charged.wh_per_1000_predictions == 0.0 and charged.ai_kwh == 0.0
    assert _summary(phases, gain=None).unknown["wh_per_gain_point"] == (
        "no gain over the baseline was scored"
    )
    assert _summary(phases, gain=-0.1).unknown["wh_per_gain_point"] == (
        "the gain over the baseline is not positive (-0.1)"
    )
    assert _summary(phases, gain=0.0).wh_per_gain_point is None


def test_every_method_has_a_stated_uncertainty() -> None:
    assert set(METHOD_UNCERTAINTY) == set(METHODS)
    assert all(0 < u <= 1 for u in METHOD_UNCERTAINTY.values())
    assert METHOD_UNCERTAINTY["rapl"] == min(METHOD_UNCERTAINTY.values())
    assert METHOD_UNCERTAINTY["constant"] == max(METHOD_UNCERTAINTY.values())
    assert METHOD_UNCERTAINTY["rapl"] < METHOD_UNCERTAINTY["load-estimate"]
    # summarise discloses the run's: the fake meter's method is `constant`.
    assert _summary({"train": 0.001}).method_uncertainty == METHOD_UNCERTAINTY["constant"]


def _measured_record(method: str) -> RunRecord:
    machine = FakeMeter().machine().model_copy(update={"method": method})
    energy = Energy(
        measured=True,
        total_kwh=0.002,
        phases={"train": 0.0015, "inference": 0.0005},
        cpu_kwh=0.0018,
        ram_kwh=0.0002,
        co2e_g=0.1,
        method=method,
        machine=machine,
        machine_fingerprint=machine.fingerprint,
        country_iso_code="FRA",
        pue=1.0,
        method_uncertainty=METHOD_UNCERTAINTY[method],
    )
    return RunRecord(
        run_id="20261201T000000-abcdef",
        submission="test-call/team-a",
        call="test-call",
        status="succeeded",
        energy=energy,
        metrics={"n_predictions": 10},
        started_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        finished_at=dt.datetime(2026, 12, 1, 0, 1, tzinfo=dt.UTC),
        duration_s=60.0,
        fingerprint=Fingerprint(
            notebook_sha256="0",
            parameters_sha256="0",
            python="3.11.0",
            packages_sha256="0",
            kernel="python3",
        ),
        isolation="process",
        notebook="notebook.ipynb",
        run_dir=".",
    )


def test_boamps_quality_follows_the_method_and_the_measured_interval() -> None:
    from workbench.boamps import BOAMPS_QUALITY, boamps_quality, boamps_report

    # The method alone: RAPL's ±10 % is BoAmps' `high`, an estimate's is lower.
    assert boamps_report(_measured_record("rapl"))["quality"] == "high"
    assert boamps_report(_measured_record("load-estimate"))["quality"] == "low"
    assert boamps_report(_measured_record("constant"))["quality"] == "low"
    # A measured interval wider than the method's uncertainty lowers the grade ...
    wide = boamps_report(_measured_record("rapl"), total_kwh_ci95=(0.0016, 0.0024))  # ±20 %
    assert wide["quality"] == "medium"
    # ... a narrower one does not raise it above the method's.
    narrow = boamps_report(_measured_record("rapl"), total_kwh_ci95=(0.00198, 0.00202))
    assert narrow["quality"] == "high"
    assert boamps_report(_measured_record("rapl"), total_kwh_ci95=(0.0, 0.004))["quality"] == "low"
    # The grades are BoAmps' own, each bound included.
    assert [boamps_quality(bound) for _, bound in BOAMPS_QUALITY] == ["high", "medium", "low"]
    assert boamps_quality(None) == "low" and boamps_quality(3.0) == "low"


def test_old_records_without_an_uncertainty_take_their_methods() -> None:
    from workbench.boamps import boamps_report

    record = _measured_record("rapl")
    assert record.energy is not None
    old = json.loads(record.model_dump_json())
    del old["energy"]["method_uncertainty"], old["energy"]["unknown"]
    del old["energy"]["machine"]["estimate_reason"]
    reloaded = RunRecord.model_validate(old)
    assert reloaded.energy is not None and reloaded.energy.method_uncertainty is None
    assert boamps_report(reloaded)["quality"] == "high"


@pytest.mark.kernel
def test_a_busy_cell_tagged_train_and_inference_charges_both(
    workspace: Workspace, make_submission: MakeSubmission, fake_meter: FakeMeter
) -> None:
    folder = make_submission(notebook="multi_tagged", parameters={"seconds": 2.0})
    record = _execute(workspace, folder)
    assert record.status == "succeeded", record.message  # type: ignore[attr-defined]
    energy = record.energy  # type: ignore[attr-defined]
    phases = energy.phases
    assert phases["inference"] > 0 and phases["train"] == pytest.approx(phases["inference"])
    assert phases["train"] > 0.3 * energy.total_kwh  # the busy cell, half each
    assert energy.ai_kwh == pytest.approx(phases["train"] + phases["inference"])
    assert energy.wh_per_1000_predictions == pytest.approx(phases["inference"] * 1e6 / 10)
    assert set(energy.unknown) == {"baseline_kwh", "wh_per_gain_point"}  # no baseline cell
    assert PHASES_UNTAGGED not in record.flags  # type: ignore[attr-defined]
    # The stored cell timing keeps one phase, the cell's first, as older records have it.
    busy = max(record.cells, key=lambda c: c.end - c.start)  # type: ignore[attr-defined]
    assert busy.phase == "train"


@pytest.mark.kernel
def test_a_notebook_without_phase_tags_is_flagged_and_its_ai_energy_unknown(
    workspace: Workspace, make_submission: MakeSubmission, fake_meter: FakeMeter
) -> None:
    record = _execute(workspace, make_submission(notebook="untagged"))
    assert record.status == "succeeded", record.message  # type: ignore[attr-defined]
    assert PHASES_UNTAGGED in record.flags  # type: ignore[attr-defined]
    energy = record.energy  # type: ignore[attr-defined]
    assert energy.measured and set(energy.phases) == {"untagged"}
    assert energy.ai_kwh is None and energy.baseline_kwh is None
    assert energy.wh_per_1000_predictions is None and energy.wh_per_gain_point is None
    assert set(energy.unknown) == {
        "ai_kwh",
        "baseline_kwh",
        "wh_per_1000_predictions",
        "wh_per_gain_point",
    }
    # A tagged notebook is not flagged.
    tagged = _execute(workspace, make_submission("team-b", notebook="ok", parameters={"n": 4}))
    assert PHASES_UNTAGGED not in tagged.flags  # type: ignore[attr-defined]
