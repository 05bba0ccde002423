"""One CPU-bound notebook measured three ways: the workbench, and codecarbon's two modes.

    .venv/bin/python benchmarks/energy_crosscheck.py [--seconds 5] [--repeat 1] [--json]

1. `workbench run --isolation process --json` in a fresh workspace (`workbench init`): the
   run record's `energy` (the kernel tree's apportioned share of the machine's energy).
2. papermill inside codecarbon's `OfflineEmissionsTracker(tracking_mode="process")`.
3. the same with `tracking_mode="machine"`.

Each codecarbon run is a fresh Python process, so in process mode the tracked process tree is
exactly papermill and its kernel. Hardware detection happens before the tracker starts, outside
the measured window, as the workbench does once per process. Nothing goes to the network or to
a file (`output_methods=[]`, the current form of `save_to_file=False`). The notebook burns
`--seconds` of CPU time (`time.process_time`), so every way does the same work whatever else
the machine is doing. With `--repeat K` the three ways alternate K times and each figure is
the median.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROWS = ("workbench", "codecarbon-process", "codecarbon-machine")
FIGURES = ("cpu_wh", "ram_wh", "total_wh", "cpu_s", "duration_s", "machine_busy_pct")

BURN = """import time
end = time.process_time() + {seconds!r}
x = 0
while time.process_time() < end:
    x = (x * 31 + 7) % 1_000_003"""

# The kernel's own resident memory, for reading the RAM figures against it.
RECORD = """import resource
workbench.record('n_predictions', 1)
workbench.record('kernel_peak_rss_mb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"""

# Runs in a fresh interpreter: argv = mode, notebook, output notebook, working folder.
CODECARBON_CHILD = """
import json, logging, os, resource, sys, time
import psutil
mode, notebook, output, cwd = sys.argv[1:5]
logging.getLogger("codecarbon").setLevel(logging.CRITICAL)
from codecarbon import OfflineEmissionsTracker
import papermill

tracker = OfflineEmissionsTracker(
    country_iso_code="FRA", output_methods=[], log_level="error", tracking_mode=mode
)
detected = tracker.get_detected_hardware()  # detection outside the measured window
cpus = [h for h in tracker._hardware if type(h).__name__ == "CPU"]


def tree_cpu():
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def busy():
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


cpu0, busy0, wall0 = tree_cpu(), busy(), time.perf_counter()
tracker.start()
papermill.execute_notebook(
    notebook, output, kernel_name="python3", progress_bar=False, log_output=False, cwd=cwd
)
tracker.stop()
wall = time.perf_counter() - wall0
data = tracker.final_emissions_data
import nbformat
from workbench.recording import numeric_metrics, read_records
metrics = numeric_metrics(read_records(nbformat.read(output, as_version=4)))
print(json.dumps({
    "cpu_kwh": data.cpu_energy,
    "ram_kwh": data.ram_energy,
    "total_kwh": data.energy_consumed,
    "cpu_s": tree_cpu() - cpu0,
    "duration_s": data.duration,
    "machine_busy_pct": 100 * (busy() - busy0) / (wall * psutil.cpu_count()),
    "kernel_peak_rss_mb": metrics.get("kernel_peak_rss_mb"),
    "cpu_mode": getattr(cpus[0], "_mode", "unknown") if cpus else "none",
    "cpu_tdp_w": getattr(cpus[0], "_tdp", None) if cpus else None,
    "hardware": tracker._conf.get("hardware"),
    "tracking_mode": data.tracking_mode,
    "cpu_model": data.cpu_model,
    "ram_total_gb": data.ram_total_size,
    "cpu_count": detected.get("cpu_count"),
}))
"""


def write_notebook(path: Path, seconds: float) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(
        cells=[
            new_code_cell("import workbench"),
            new_code_cell(BURN.format(seconds=float(seconds)), metadata={"tags": ["train"]}),
            new_code_cell(RECORD),
        ],
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
    )
    nbformat.write(notebook, str(path))


def _workbench_command() -> list[str]:
    script = Path(sys.executable).with_name("workbench")
    if script.exists():
        return [str(script)]
    found = shutil.which("workbench")
    if found is None:
        raise SystemExit("energy_crosscheck: the `workbench` command is not installed")
    return [found]


def _check(out: subprocess.CompletedProcess[str], what: str) -> None:
    if out.returncode != 0:
        raise SystemExit(f"energy_crosscheck: {what} failed ({out.returncode}):\n{out.stderr}")


def prepare_workspace(root: Path, notebook: Path) -> Path:
    """A workspace from `workbench init` holding the notebook as a `custom` submission."""
    wb = _workbench_command()
    ws = root / "ws"
    _check(subprocess.run([*wb, "init", str(ws)], capture_output=True, text=True), "init")
    new = [*wb, "new", "diat", "--template", "custom", "--notebook", str(notebook)]
    new += ["--id", "crosscheck", "--team", "Energy cross-check"]
    _check(subprocess.run(new, cwd=ws, capture_output=True, text=True), "new")
    return ws


def run_workbench(ws: Path) -> dict[str, Any]:
    import psutil

    command = [*_workbench_command(), "run", "diat/crosscheck", "--isolation", "process", "--json"]
    busy0, wall0 = _busy(psutil), time.perf_counter()
    out = subprocess.run(command, cwd=ws, capture_output=True, text=True)
    wall = time.perf_counter() - wall0
    _check(out, "workbench run")
    record = json.loads(out.stdout)
    energy = record["energy"]
    if not energy.get("measured"):
        raise SystemExit(f"energy_crosscheck: the run was not measured: {energy.get('reason')}")
    busy = _busy(psutil) - busy0  # around the whole command, its start-up included
    return {
        "cpu_kwh": energy["cpu_kwh"],
        "ram_kwh": energy["ram_kwh"],
        "total_kwh": energy["total_kwh"],
        "cpu_s": energy["cpu_seconds"],
        "duration_s": float(record["duration_s"]),
        "machine_busy_pct": 100 * busy / (wall * _cores(psutil)),
        "kernel_peak_rss_mb": record["metrics"].get("kernel_peak_rss_mb"),
        "measured_by": energy["machine"]["measured_by"],
        "method": energy["method"],
    }


def run_codecarbon(mode: str, notebook: Path, root: Path) -> dict[str, Any]:
    output = root / f"out-{mode}.ipynb"
    command = [sys.executable, "-c", CODECARBON_CHILD, mode, str(notebook), str(output), str(root)]
    out = subprocess.run(command, capture_output=True, text=True)
    _check(out, f"codecarbon ({mode})")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _busy(psutil: Any) -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _cores(psutil: Any) -> int:
    return int(psutil.cpu_count() or 1)


def _row(raw: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in raw.items() if not k.endswith("_kwh")}
    for key in ("cpu", "ram", "total"):
        row[f"{key}_wh"] = float(raw[f"{key}_kwh"]) * 1000
    return row


def measure(seconds: float, repeat: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="wb-energy-"))
    try:
        notebook = root / "crosscheck.ipynb"
        write_notebook(notebook, seconds)
        ws = prepare_workspace(root, notebook)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ROWS}
        for _ in range(repeat):  # alternate, so a drift of the machine's load hits all alike
            runs["workbench"].append(_row(run_workbench(ws)))
            runs["codecarbon-process"].append(_row(run_codecarbon("process", notebook, root)))
            runs["codecarbon-machine"].append(_row(run_codecarbon("machine", notebook, root)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = []
    for name in ROWS:
        row: dict[str, Any] = {"way": name, **runs[name][-1]}
        for figure in FIGURES:
            values = [r[figure] for r in runs[name] if r.get(figure) is not None]
            row[figure] = statistics.median(values) if values else None
        rows.append(row)
    codecarbon = runs["codecarbon-machine"][-1]
    return {
        "seconds": seconds,
        "repeat": repeat,
        "machine": {
            "cpu_model": codecarbon["cpu_model"],
            "cpu_count": codecarbon["cpu_count"],
            "ram_total_gb": round(float(codecarbon["ram_total_gb"]), 1),
            "codecarbon_cpu_mode": codecarbon["cpu_mode"],
            "codecarbon_cpu_tdp_w": codecarbon["cpu_tdp_w"],
            "codecarbon_hardware": codecarbon["hardware"],
        },
        "rows": rows,
    }


def _sig(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def table(result: dict[str, Any]) -> str:
    machine = result["machine"]
    lines = [
        f"{result['seconds']:g} s of CPU work per run, median of {result['repeat']}; "
        f"{machine['cpu_model']}, {machine['cpu_count']} CPUs, {machine['ram_total_gb']} GB; "
        f"codecarbon CPU mode {machine['codecarbon_cpu_mode']} "
        f"(TDP {machine['codecarbon_cpu_tdp_w']} W), hardware {machine['codecarbon_hardware']}",
        "",
        "| way | CPU Wh | RAM Wh | total Wh | CPU s | duration s | machine busy % |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        cells = [_sig(row[f]) for f in ("cpu_wh", "ram_wh", "total_wh", "cpu_s", "duration_s")]
        busy = row["machine_busy_pct"]
        cells.append("–" if busy is None else f"{busy:.0f}")
        lines.append(f"| {row['way']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="CPU seconds of work per run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per way (median shown)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.repeat < 1:
        parser.error("--seconds must be positive and --repeat at least 1")
    result = measure(args.seconds, args.repeat)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
