"""The RAPL path, against a simulated Linux powercap tree whose counters the tests advance.

The machine running the tests may have no RAPL counters: `WORKBENCH_POWERCAP_DIR` points
the meter at a tree in `tmp_path`, laid out as Linux lays it out. Energies are asserted
from the counter values the tests write, never from timings.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import MakeSubmission
from tests.test_metering import ControlledRunMeter
from workbench.calls import Protocol
from workbench.runner import rapl
from workbench.runner.metering import (
    METHOD_UNCERTAINTY,
    METHODS,
    CodecarbonMeter,
    process_meter,
    set_process_meter,
    summarise,
)
from workbench.workspace import Workspace

MAX_UJ = 262_143_328_850  # a real package's max_energy_range_uj
J = 1_000_000  # µJ


class Powercap:
    """A powercap tree: two packages with core subzones, and a psys zone that overlaps them."""

    def __init__(self, root: Path, start_uj: int = 5 * J, max_uj: int = MAX_UJ) -> None:
        self.root, self.max_uj = root, max_uj
        self.zones = {
            "package-0": root / "intel-rapl:0",
            "core-0": root / "intel-rapl:0" / "intel-rapl:0:0",
            "package-1": root / "intel-rapl:1",
            "core-1": root / "intel-rapl:1" / "intel-rapl:1:0",
            "psys": root / "intel-rapl:2",
        }
        for name, zone in self.zones.items():
            zone.mkdir(parents=True)
            (zone / "name").write_text(name.split("-")[0] if "core" in name else name + "\n")
            (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
            self.set(name, start_uj)

    def value(self, zone: str) -> int:
        return int((self.zones[zone] / "energy_uj").read_text())

    def set(self, zone: str, uj: int) -> None:
        # Replaced at once, as the kernel's file is: a reader never sees it half written.
        target = self.zones[zone] / "energy_uj"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(f"{uj}\n")
        os.replace(tmp, target)

    def advance(self, zone: str, uj: int) -> None:
        self.set(zone, (self.value(zone) + uj) % self.max_uj)


def advance_in_thread(tree: Powercap, steps: dict[str, int], count: int) -> None:
    """A live counter: a thread advances each zone `count` times by its step; then joined."""

    def run() -> None:
        for _ in range(count):
            for zone, step in steps.items():
                tree.advance(zone, step)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Powercap]:
    powercap = Powercap(tmp_path / "powercap")
    monkeypatch.setenv(rapl.POWERCAP_DIR_ENV, str(powercap.root))
    set_process_meter(None)  # the next meter is detected with this tree
    yield powercap
    set_process_meter(None)


def _kwh(uj: float) -> float:
    return uj / 3.6e12


def test_the_meter_reads_the_packages_counters_times_the_runs_cpu_share(tree: Powercap) -> None:
    meter = process_meter()
    machine = meter.machine()
    assert machine.method == "rapl" and machine.estimate_reason is None
    assert str(tree.root) in machine.measured_by
    run = ControlledRunMeter(meter, interval_s=3600)
    run.start()
    try:
        run.enter_phase("train")
        # 36 J on package 0 and 18 J on package 1; subzones and psys move too but are
        # parts of (or overlap) the packages and must not be added.
        advance_in_thread(
            tree, {"package-0": 4 * J, "package-1": 2 * J, "core-0": 3 * J, "psys": 9 * J}, 9
        )
        run.own_s, run.busy_s = 1.0, 4.0  # the run's tree used a quarter of the busy CPU
        run.enter_phase("inference")
        advance_in_thread(tree, {"package-0": 1 * J}, 8)
        run.own_s, run.busy_s = 3.0, 6.0  # all of the next 2 busy seconds were the run's
    finally:
        run.stop()
    assert run.error is None
    assert run.phases_kwh["train"] == pytest.approx(_kwh(54 * J * 0.25))
    assert run.phases_kwh["inference"] == pytest.approx(_kwh(8 * J * 1.0))
    assert run.cpu_kwh == pytest.approx(_kwh(54 * J * 0.25 + 8 * J))
    energy = summarise(run, Protocol(pue=1.0), metrics={"n_predictions": 4}, gain_vs_baseline=0.1)
    assert energy.measured and energy.method == "rapl"
    assert energy.method_uncertainty == METHOD_UNCERTAINTY["rapl"]
    assert energy.cpu_kwh == pytest.approx(run.cpu_kwh)
    assert energy.wh_per_1000_predictions == pytest.approx(_kwh(8 * J) * 1e6 / 4)


def test_a_counter_that_wraps_at_its_range_stays_positive_and_right(tmp_path: Path) -> None:
    max_uj = 1_000 * J
    tree = Powercap(tmp_path / "powercap", start_uj=max_uj - 3 * J, max_uj=max_uj)
    meter = CodecarbonMeter(powercap=tree.root)
    assert meter.machine().method == "rapl"
    run = ControlledRunMeter(meter, interval_s=3600)
    run.start()
    run.own_s = run.busy_s = 1.0  # the whole machine's work is the run's
    advance_in_thread(tree, {"package-0": 2 * J}, 1)  # 2 J before the wrap
    run.sample()
    advance_in_thread(tree, {"package-0": 2 * J}, 3)  # 6 J more, across the wrap
    assert tree.value("package-0") < max_uj - 3 * J  # the counter did go round
    run.own_s = run.busy_s = 2.0
    run.stop()
    assert run.error is None
    assert run.cpu_kwh == pytest.approx(_kwh(8 * J))


def test_a_missing_counter_falls_back_to_the_estimate_with_its_reason(tmp_path: Path) -> None:
    tree = Powercap(tmp_path / "powercap")
    (tree.zones["package-1"] / "energy_uj").unlink()
    machine = CodecarbonMeter(powercap=tree.root).machine()
    assert machine.method in METHODS and machine.method != "rapl"
    assert machine.estimate_reason is not None
    assert str(tree.zones["package-1"] / "energy_uj") in machine.estimate_reason
    assert "unreadable RAPL counter" in machine.estimate_reason
    nothing = CodecarbonMeter(powercap=tmp_path / "nowhere").machine()
    assert nothing.method != "rapl" and "no powercap tree" in (nothing.estimate_reason or "")


def test_a_counter_without_permission_falls_back_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = Powercap(tmp_path / "powercap")
    denied = tree.zones["package-0"] / "energy_uj"
    original = Path.read_text

    # As root, file modes do not stop a read: the kernel's answer to a user is simulated.
    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    machine = CodecarbonMeter(powercap=tree.root).machine()
    assert machine.method != "rapl"
    assert "PermissionError" in (machine.estimate_reason or "")
    assert str(denied) in (machine.estimate_reason or "")


def test_a_counter_that_becomes_unreadable_leaves_the_run_unmeasured(tmp_path: Path) -> None:
    tree = Powercap(tmp_path / "powercap")
    meter = CodecarbonMeter(powercap=tree.root)
    run = ControlledRunMeter(meter, interval_s=3600)
    run.start()
    run.own_s = run.busy_s = 1.0
    advance_in_thread(tree, {"package-0": J}, 1)
    (tree.zones["package-0"] / "energy_uj").unlink()
    run.stop()
    assert run.error is not None and "energy_uj" in run.error
    energy = summarise(run, Protocol(pue=1.0), metrics={}, gain_vs_baseline=None)
    assert energy.measured is False and "unreadable RAPL counter" in (energy.reason or "")
    assert energy.total_kwh is None  # not the energy read before the fault: never short


def test_a_counter_that_goes_back_beyond_its_range_is_an_error(tmp_path: Path) -> None:
    tree = Powercap(tmp_path / "powercap", start_uj=500 * J, max_uj=1_000 * J)
    counters = rapl.RaplCounters(tree.root)
    assert [z.name for z in counters.zones] == ["package-0", "package-1"]
    tree.set("package-0", 600 * J)
    assert counters.read_kwh() == pytest.approx(_kwh(100 * J))
    tree.set("package-0", 100 * J)  # backwards: it wrapped at its range (1000 J)
    assert counters.read_kwh() == pytest.approx(_kwh(100 * J + 500 * J))
    counters.zones[0].max_range_uj = 0  # a counter with no range cannot have wrapped
    tree.set("package-0", 50 * J)
    with pytest.raises(rapl.RaplUnavailable, match="counter went back"):
        counters.read_kwh()


@pytest.mark.kernel
def test_a_run_on_a_rapl_machine_is_measured_by_its_counters(
    workspace: Workspace, make_submission: MakeSubmission, tree: Powercap
) -> None:
    from workbench.runner.execute import execute_submission
    from workbench.submissions import load_submission

    stop = threading.Event()
    advanced = [0]

    def live_counter() -> None:  # the package draws 1 J per tick while the run goes on
        while not stop.wait(0.01):
            tree.advance("package-0", J)
            advanced[0] += J

    thread = threading.Thread(target=live_counter)
    thread.start()
    try:
        folder = make_submission(notebook="busy_train", parameters={"seconds": 1.0})
        record = execute_submission(
            folder, load_submission(folder), workspace.call("test-call"), workspace.runs_dir
        )
    finally:
        stop.set()
        thread.join()
    energy = record.energy
    assert record.status == "succeeded", record.message
    assert energy is not None and energy.measured, energy
    assert energy.method == "rapl" and energy.method_uncertainty == METHOD_UNCERTAINTY["rapl"]
    assert energy.machine is not None and "RAPL" in energy.machine.measured_by
    # The run's share of what the counter counted: some of it, never more than all of it.
    assert 0 < (energy.cpu_kwh or 0) <= _kwh(advanced[0])


def test_both_linux_layouts_of_the_tree_are_read(tmp_path: Path) -> None:
    # /sys/devices/virtual/powercap nests the zones under `intel-rapl` ...
    nested = Powercap(tmp_path / "virtual" / "intel-rapl")
    assert [z.name for z in rapl.RaplCounters(tmp_path / "virtual").zones] == [
        "package-0",
        "package-1",
    ]
    # ... /sys/class/powercap lists every zone side by side, subzones included.
    flat = tmp_path / "class"
    flat.mkdir()
    for zone in ("intel-rapl:0", "intel-rapl:1"):
        (flat / zone).symlink_to(nested.root / zone)
    (flat / "intel-rapl:0:0").symlink_to(nested.zones["core-0"])
    counters = rapl.RaplCounters(flat)
    assert [z.energy.parent.name for z in counters.zones] == ["intel-rapl:0", "intel-rapl:1"]
    nested.advance("core-0", 5 * J)
    nested.advance("package-1", 2 * J)
    assert counters.read_kwh() == pytest.approx(_kwh(2 * J))
