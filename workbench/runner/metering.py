"""Energy and carbon of a run, measured by the trusted runner, never by the notebook.

How a run's energy is obtained:

1. One `Meter` per process reads the *machine's* cumulative CPU and RAM energy: the CPU
   packages' RAPL counters when the machine's powercap tree has readable ones (read by
   `workbench.runner.rapl`; `WORKBENCH_POWERCAP_DIR` names another tree), else
   codecarbon's CPU-load or TDP estimate, with the reason RAPL could not be read kept in
   `MachineInfo.estimate_reason`; RAM always by codecarbon's model. Hardware detection
   (codecarbon's `OfflineEmissionsTracker`) costs about 1.5 s, so it happens once per
   process and is shared by every run of a batch. No codecarbon scheduler or thread is
   ever started: the runner drives the readings.
2. Each run has a `RunMeter` that samples every half second, and at every cell boundary,
   (a) the machine energy since its last sample and (b) the CPU time of the run: its
   cgroup's CPU counter when it has one (`runner.cgroups`: every process the run ever
   had, however short-lived or far reparented), else its kernel process tree's (psutil),
   children already reaped included (their parents' `children_user`/`children_system`).
   The machine's CPU energy of the interval is apportioned by the run's share of the
   machine's busy CPU time; RAM energy by the tree's share of memory.
   Two runs at once therefore do not count each other's work, whether they share a
   process (a local batch) or not.
3. The interval's energy goes to the phases of the cell running at the end of the interval
   (cells are tagged `data`, `train`, `inference`, `baseline`, `evaluate`; others are
   `untagged`). A cell tagged with several phases has its energy split evenly between
   them (`train` and `inference`: half each). The run's total is the sum of its phases.
4. A figure that cannot be known is None with its reason in `Energy.unknown`, never 0:
   AI energy when no `train` or `inference` cell ran, the baseline's when no `baseline`
   cell ran, per prediction without an `inference` cell or `n_predictions`, per gain point
   without a positive gain. A phase whose cells ran but used next to nothing is a real 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import platform
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from workbench.notebooks import UNTAGGED

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.calls import Protocol as CallProtocol

log = logging.getLogger(__name__)

METHODS = ("rapl", "tdp-estimate", "load-estimate", "constant")
# Each method's relative uncertainty on a run's energy (0.1 = ±10 %), shown beside the
# figures and mapped to BoAmps' quality. Only `rapl` rests on published measurements;
# the estimates' figures are the workbench's stated assumptions, not measurements.
METHOD_UNCERTAINTY: dict[str, float] = {
    # RAPL package counters against wall-power meters: errors of a few percent (Khan et
    # al., "RAPL in Action: Experiences in Using RAPL for Power Measurements", ACM TOMPECS
    # 3(2), 2018). Rounded up to 10 % to cover the apportioning by CPU time as well.
    "rapl": 0.10,
    # codecarbon's CPU-load mode: the CPU model's TDP times the machine's CPU load, never
    # under 10 % of TDP (codecarbon's methodology documentation). No validation is
    # published; ±30 % is the workbench's stated assumption for a load-following estimate.
    "load-estimate": 0.30,
    # codecarbon's TDP mode: half the CPU model's TDP whatever the load (codecarbon's
    # documentation). It does not follow the load: ±50 %, the workbench's stated assumption.
    "tdp-estimate": 0.50,
    # A generic constant power, the CPU model unknown: the largest, ±100 %, the workbench's
    # stated assumption (the figure says little more than the run's duration).
    "constant": 1.00,
}
SAMPLE_INTERVAL_S = 0.5
# codecarbon's CPU modes, by what they really measure
_METHOD_BY_MODE = {
    "intel_rapl": "rapl",
    "windows_emi": "rapl",
    "intel_power_gadget": "rapl",
    "apple_powermetrics": "rapl",
    "cpu_load": "load-estimate",
    "tdp": "tdp-estimate",
    "constant": "constant",
}


class MachineInfo(BaseModel):
    """The machine a run was measured on, and how."""

    method: str
    cpu_model: str
    cpu_count: int
    ram_gb: float
    architecture: str
    measured_by: str = Field(description="the measuring tool and its mode")
    estimate_reason: str | None = Field(
        default=None, description="why the CPU energy is estimated, not read from RAPL counters"
    )

    @property
    def fingerprint(self) -> str:
        """Same hardware and same method give the same fingerprint."""
        text = "|".join(
            [
                self.method,
                self.cpu_model,
                str(self.cpu_count),
                f"{self.ram_gb:.0f}",
                self.architecture,
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Meter(Protocol):
    """Cumulative machine energy since the meter was created."""

    def machine(self) -> MachineInfo: ...

    def read(self) -> tuple[float, float]:
        """Cumulative (CPU kWh, RAM kWh) of the whole machine, measured now."""
        ...


class CodecarbonMeter:
    """The machine's energy: RAPL counters when readable, else codecarbon's estimate.

    codecarbon's offline tracker detects the hardware and models RAM; the CPU packages'
    counters of the powercap tree (`powercap`, default `rapl.powercap_dir()`) replace its
    CPU reading when they can be read (see `workbench.runner.rapl` for why).
    """

    def __init__(self, powercap: Path | None = None) -> None:
        from codecarbon import OfflineEmissionsTracker

        from workbench.runner.rapl import RaplCounters, RaplUnavailable, powercap_dir

        with _quiet_codecarbon():
            # Country and PUE are applied per run by the workbench; the tracker is only used
            # for hardware detection and power readings.
            tracker = OfflineEmissionsTracker(
                country_iso_code="FRA",
                output_methods=[],  # nothing written: the workbench stores what it needs
                log_level="error",
                tracking_mode="machine",
            )
            detected = tracker.get_detected_hardware()
        self._hardware = list(tracker._hardware)
        cpus = [h for h in self._hardware if type(h).__name__ == "CPU"]
        mode = getattr(cpus[0], "_mode", "unknown") if cpus else "unknown"
        import codecarbon

        root = powercap or powercap_dir()
        self._rapl: RaplCounters | None = None
        estimate_reason = None
        try:
            self._rapl = RaplCounters(root)
        except RaplUnavailable as exc:
            estimate_reason = str(exc)
        if self._rapl is not None:
            # The packages' counters replace codecarbon's CPU reading; RAM stays its model.
            self._hardware = [h for h in self._hardware if type(h).__name__ != "CPU"]
            method = "rapl"
            version = codecarbon.__version__
            measured_by = f"workbench RAPL reader ({root}), RAM: codecarbon {version}"
        else:
            method = _METHOD_BY_MODE.get(mode, "constant")
            measured_by = f"codecarbon {codecarbon.__version__} ({mode})"
        self._info = MachineInfo(
            method=method,
            cpu_model=str(detected.get("cpu_model") or platform.processor() or "unknown"),
            cpu_count=int(detected.get("cpu_count") or 0),
            ram_gb=round(float(detected.get("ram_total_size") or 0.0), 1),
            architecture=platform.machine(),
            measured_by=measured_by,
            estimate_reason=estimate_reason if method != "rapl" else None,
        )
        self._lock = threading.Lock()
        self._cpu_kwh = 0.0
        self._ram_kwh = 0.0
        self._last = time.perf_counter()
        for hardware in self._hardware:
            with contextlib.suppress(Exception):
                hardware.start()

    def machine(self) -> MachineInfo:
        return self._info

    def read(self) -> tuple[float, float]:
        with self._lock:
            now = time.perf_counter()
            duration = now - self._last
            if duration > 0.01:
                for hardware in self._hardware:
                    _, energy = hardware.measure_power_and_energy(last_duration=duration)
                    kwh = max(0.0, float(energy.kWh))
                    if type(hardware).__name__ == "RAM":
                        self._ram_kwh += kwh
                    else:
                        self._cpu_kwh += kwh
                self._last = now
            if self._rapl is not None:
                # Cumulative since the counters were opened; an unreadable one raises.
                self._cpu_kwh = self._rapl.read_kwh()
            return self._cpu_kwh, self._ram_kwh


@contextlib.contextmanager
def _quiet_codecarbon() -> Any:
    """codecarbon logs at INFO and WARNING during detection; that is not the user's business."""
    logger = logging.getLogger("codecarbon")
    level = logger.level
    if not log.isEnabledFor(logging.INFO):
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


class FakeMeter:
    """A meter for tests and dry runs: CPU energy follows the machine's busy CPU time.

    `cpu_watts` per busy core and a constant `ram_watts`; with `fail=True` every reading
    raises, as a broken power interface would.
    """

    def __init__(self, cpu_watts: float = 10.0, ram_watts: float = 5.0, fail: bool = False) -> None:
        self.cpu_watts, self.ram_watts, self.fail = cpu_watts, ram_watts, fail
        self._busy0 = _busy_cpu_seconds()
        self._t0 = time.monotonic()

    def machine(self) -> MachineInfo:
        return MachineInfo(
            method="constant",
            cpu_model="fake",
            cpu_count=1,
            ram_gb=1.0,
            architecture=platform.machine(),
            measured_by="workbench FakeMeter",
        )

    def read(self) -> tuple[float, float]:
        if self.fail:
            raise RuntimeError("the fake power interface is broken")
        busy = _busy_cpu_seconds() - self._busy0
        elapsed = time.monotonic() - self._t0
        return busy * self.cpu_watts / 3.6e6, elapsed * self.ram_watts / 3.6e6


_meter: Meter | None = None
_meter_error: str | None = None
_meter_lock = threading.Lock()


def process_meter() -> Meter:
    """This process's meter, created on first use: hardware is detected once per process."""
    global _meter, _meter_error
    with _meter_lock:
        if _meter is None and _meter_error is None:
            try:
                _meter = CodecarbonMeter()
            except Exception as exc:  # any failure means "unmeasured", never a failed run
                _meter_error = (
                    f"codecarbon could not measure this machine: {type(exc).__name__}: {exc}"
                )
        if _meter is None:
            raise MeteringUnavailable(_meter_error or "no meter")
        return _meter


def set_process_meter(meter: Meter | None) -> None:
    """Replace this process's meter (tests use a fake one)."""
    global _meter, _meter_error
    with _meter_lock:
        _meter, _meter_error = meter, None


class MeteringUnavailable(Exception):
    """Energy cannot be measured here; the run goes on, unmeasured."""


def _busy_cpu_seconds() -> float:
    import psutil

    times = psutil.cpu_times()
    idle = getattr(times, "idle", 0.0) + getattr(times, "iowait", 0.0)
    return float(sum(times)) - idle


@dataclass
class RunMeter:
    """Samples one run: the machine's energy, apportioned to this run's kernel tree."""

    meter: Meter
    interval_s: float = SAMPLE_INTERVAL_S
    phases: tuple[str, ...] = (UNTAGGED,)
    phases_kwh: dict[str, float] = field(default_factory=dict)
    cpu_kwh: float = 0.0
    ram_kwh: float = 0.0
    cpu_seconds: float = 0.0
    error: str | None = None
    _pid: int | None = None
    _cgroup: Any = None  # a runner.cgroups.RunCgroup
    # pid -> (parent pid, CPU seconds with its reaped children's) at the last sample
    _seen: dict[int, tuple[int, float]] = field(default_factory=dict)
    _ended: float = 0.0  # CPU seconds of tree processes that ended unreaped by the tree
    _tree_total: float = 0.0
    _last_machine: tuple[float, float] = (0.0, 0.0)
    _last_busy: float = 0.0
    _last_own: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._last_machine = self.meter.read()
        self._last_busy = self._machine_busy_seconds()
        self._thread = threading.Thread(target=self._loop, name="workbench-meter", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def attach(self, pid: int, cgroup: Any = None) -> None:
        """The kernel's pid, known once it has started, and the run's cgroup if it has one."""
        with self._lock:
            self._pid = pid
            self._cgroup = cgroup

    def enter_phase(self, phases: str | Sequence[str]) -> None:
        """A cell of `phases` starts: what ran until now belongs to the previous cell's phases.

        From now on each interval's energy is split evenly between `phases` (a cell tagged
        `train` and `inference` gives half to each); the phases' sum stays the run's total.
        """
        self.sample()
        with self._lock:
            self.phases = (phases,) if isinstance(phases, str) else (tuple(phases) or (UNTAGGED,))

    def _machine_busy_seconds(self) -> float:
        """The machine's busy CPU time so far, all cores together."""
        return _busy_cpu_seconds()

    def _tree(self) -> list[Any]:
        """The kernel and its descendants (one scan of the process table per sample)."""
        import psutil

        if self._pid is None:
            return []
        try:
            root = psutil.Process(self._pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _tree_cpu_seconds(self, procs: list[Any]) -> float:
        """The run's CPU seconds so far: its cgroup's counter, else its process tree's.

        A tree process counts its own time and its reaped children's (`children_*`), so a
        child that lived between two samples counts once its parent waited for it; one
        gone whose live ancestors did not reap it keeps its last reading.
        """
        import psutil

        if self._cgroup is not None and (counted := self._cgroup.cpu_seconds()) is not None:
            return float(counted)
        now: dict[int, tuple[int, float]] = {}
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                cpu = proc.cpu_times()
                own = cpu.user + cpu.system + cpu.children_user + cpu.children_system
                now[proc.pid] = (proc.ppid(), own)
        for pid, (parent, last) in self._seen.items():
            if pid in now:
                continue
            # Gone: its time went to the nearest live ancestor that waited for it, if any.
            for _ in range(len(self._seen)):  # bounded: a reused pid could make a loop
                if parent not in now and parent in self._seen:
                    parent = self._seen[parent][0]
            if parent not in now:
                self._ended += last
        self._seen = now
        # Never backwards: a reaped child's time may reach its parent a sample late.
        self._tree_total = max(self._tree_total, self._ended + sum(v for _, v in now.values()))
        return self._tree_total

    def _tree_rss_share(self, procs: list[Any]) -> float:
        import psutil

        rss = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                rss += proc.memory_info().rss
        return min(1.0, rss / psutil.virtual_memory().total)

    def sample(self) -> None:
        with self._lock:
            if self.error is not None:
                return
            try:
                machine = self.meter.read()
                busy = self._machine_busy_seconds()
                procs = self._tree()
                own = self._tree_cpu_seconds(procs)
                rss_share = self._tree_rss_share(procs)
            except Exception as exc:  # a meter that fails leaves the run unmeasured
                self.error = f"measurement failed: {type(exc).__name__}: {exc}"
                return
            d_cpu_kwh = max(0.0, machine[0] - self._last_machine[0])
            d_ram_kwh = max(0.0, machine[1] - self._last_machine[1])
            d_own = max(0.0, own - self._last_own)
            d_busy = max(d_own, busy - self._last_busy)
            share = d_own / d_busy if d_busy > 0 else 0.0
            cpu = d_cpu_kwh * share
            ram = d_ram_kwh * rss_share
            self.cpu_kwh += cpu
            self.ram_kwh += ram
            self.cpu_seconds += d_own
            part = (cpu + ram) / len(self.phases)
            for phase in self.phases:
                self.phases_kwh[phase] = self.phases_kwh.get(phase, 0.0) + part
            self._last_machine, self._last_busy, self._last_own = machine, busy, own

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


class Energy(BaseModel):
    """A run's energy, normalised so that juries can compare submissions."""

    measured: bool
    reason: str | None = None
    total_kwh: float | None = None
    phases: dict[str, float] = Field(default_factory=dict)
    cpu_kwh: float | None = None
    ram_kwh: float | None = None
    cpu_seconds: float | None = None
    co2e_g: float | None = None
    water_l: float | None = None
    wh_per_1000_predictions: float | None = None
    ai_kwh: float | None = None
    baseline_kwh: float | None = None
    wh_per_gain_point: float | None = None
    method: str | None = None
    machine: MachineInfo | None = None
    machine_fingerprint: str | None = None
    on_reference_machine: bool | None = None
    comparable: bool = False
    country_iso_code: str
    pue: float
    carbon_intensity_g_per_kwh: float | None = None
    # Figures that cannot be known for this run, each with its reason (their value is None,
    # never 0): e.g. {"ai_kwh": "no cell is tagged train or inference"}.
    unknown: dict[str, str] = Field(default_factory=dict)
    # The measuring method's relative uncertainty (0.1 = ±10 %), from `METHOD_UNCERTAINTY`.
    method_uncertainty: float | None = None


def carbon_intensity(country_iso_code: str) -> float:
    """Grams of CO2e per kWh of the country's electricity mix, from codecarbon's own data."""
    from codecarbon.input import DataSource

    mix = DataSource().get_global_energy_mix_data()
    try:
        return float(mix[country_iso_code]["carbon_intensity"])
    except KeyError as exc:
        raise MeteringUnavailable(f"no carbon intensity for country {country_iso_code!r}") from exc


AI_PHASES = ("train", "inference")


def unknown_figures(
    ran: Collection[str], metrics: dict[str, float], gain_vs_baseline: float | None
) -> dict[str, str]:
    """The normalised figures that cannot be known for a run, each with its reason.

    `ran` is the set of phases that had a cell run: a phase that ran and used next to no
    energy is a real 0, a phase that never ran is unknown.
    """
    unknown: dict[str, str] = {}
    if not any(p in ran for p in AI_PHASES):
        unknown["ai_kwh"] = "no cell tagged train or inference ran"
    predictions = metrics.get("n_predictions")
    if "inference" not in ran:
        unknown["wh_per_1000_predictions"] = "no cell tagged inference ran"
    elif predictions is None:
        unknown["wh_per_1000_predictions"] = "the notebook recorded no n_predictions"
    elif predictions <= 0:
        unknown["wh_per_1000_predictions"] = f"n_predictions is not positive ({predictions:g})"
    if "baseline" not in ran:
        unknown["baseline_kwh"] = "no cell tagged baseline ran"
    if "ai_kwh" in unknown:
        unknown["wh_per_gain_point"] = f"the AI energy is unknown: {unknown['ai_kwh']}"
    elif gain_vs_baseline is None:
        unknown["wh_per_gain_point"] = "no gain over the baseline was scored"
    elif not gain_vs_baseline > 0:  # also NaN
        unknown["wh_per_gain_point"] = (
            f"the gain over the baseline is not positive ({gain_vs_baseline:+.3g})"
        )
    return unknown


def summarise(
    run_meter: RunMeter | None,
    protocol: CallProtocol,
    *,
    metrics: dict[str, float],
    gain_vs_baseline: float | None,
    unavailable: str | None = None,
    phases_ran: Collection[str] | None = None,
) -> Energy:
    """The run's `Energy`, or an unmeasured one with its reason.

    `phases_ran`: the phases that had a cell run (by default those the meter sampled,
    which it does at every cell's start and end). A figure that needs a phase that never
    ran is None with its reason in `Energy.unknown`, never 0 (see `unknown_figures`).
    """
    base: dict[str, Any] = {"country_iso_code": protocol.country_iso_code, "pue": protocol.pue}
    if run_meter is None or run_meter.error is not None:
        reason = unavailable or (run_meter.error if run_meter else None) or "not measured"
        return Energy(measured=False, reason=reason, **base)
    try:
        intensity = carbon_intensity(protocol.country_iso_code)
    except Exception as exc:
        return Energy(measured=False, reason=str(exc), **base)
    machine = run_meter.meter.machine()
    phases = {k: v for k, v in sorted(run_meter.phases_kwh.items())}
    ran = set(phases) if phases_ran is None else set(phases_ran)
    total = sum(phases.values())
    facility_kwh = total * protocol.pue
    unknown = unknown_figures(ran, metrics, gain_vs_baseline)
    ai_kwh = None if "ai_kwh" in unknown else sum(phases.get(p, 0.0) for p in AI_PHASES)
    per_prediction = None
    if "wh_per_1000_predictions" not in unknown:
        per_prediction = phases.get("inference", 0.0) * 1e6 / metrics["n_predictions"]
    per_gain = None
    if ai_kwh is not None and "wh_per_gain_point" not in unknown:
        assert gain_vs_baseline is not None
        per_gain = ai_kwh * 1000 / (gain_vs_baseline * 100)
    fingerprint = machine.fingerprint
    on_reference = (
        None if protocol.reference_machine is None else fingerprint == protocol.reference_machine
    )
    return Energy(
        measured=True,
        total_kwh=total,
        phases=phases,
        cpu_kwh=run_meter.cpu_kwh,
        ram_kwh=run_meter.ram_kwh,
        cpu_seconds=round(run_meter.cpu_seconds, 3),
        co2e_g=facility_kwh * intensity,
        water_l=total * protocol.wue if protocol.wue is not None else None,
        wh_per_1000_predictions=per_prediction,
        ai_kwh=ai_kwh,
        baseline_kwh=None if "baseline_kwh" in unknown else phases.get("baseline", 0.0),
        wh_per_gain_point=per_gain,
        method=machine.method,
        machine=machine,
        machine_fingerprint=fingerprint,
        on_reference_machine=on_reference,
        comparable=on_reference is not False,
        carbon_intensity_g_per_kwh=intensity,
        unknown=unknown,
        method_uncertainty=METHOD_UNCERTAINTY.get(machine.method),
        **base,
    )


def comparability(energies: list[dict[str, Any] | None], reference: str | None = None) -> list[str]:
    """Why each run is not comparable with the others ('' when it is).

    Runs compare when they were measured with the same method on the same machine: the
    call's reference machine when it names one, else the most common machine of the set.
    """
    measured = [e for e in energies if e and e.get("measured")]
    if reference is None and measured:
        pairs = [(e["method"], e["machine_fingerprint"]) for e in measured]
        reference_pair = max(set(pairs), key=pairs.count)
    else:
        methods = [e["method"] for e in measured if e["machine_fingerprint"] == reference]
        reference_pair = (max(set(methods), key=methods.count) if methods else None, reference)
    reasons = []
    for energy in energies:
        if not energy or not energy.get("measured"):
            reasons.append("not measured")
        elif energy["machine_fingerprint"] != reference_pair[1]:
            reasons.append("other machine" if reference is None else "not the reference machine")
        elif energy["method"] != reference_pair[0]:
            reasons.append(f"other method ({energy['method']})")
        else:
            reasons.append("")
    return reasons
