"""Cost of metering: extra CPU time on a CPU-bound notebook, and per-run set-up time.

    .venv/bin/python benchmarks/metering.py [--seconds 10] [--repeat 3]

Each variant runs in a fresh process; the CPU time of that process and all its children
(the kernel included) is read with getrusage. The machine is shared and noisy, so the
result is a ratio within one invocation, metered against unmetered, alternated.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys
from pathlib import Path
from workbench.runner.execute import execute_submission
from workbench.runner.metering import process_meter
from workbench.submissions import load_submission
from workbench.workspace import Workspace
root, repeat = Path(sys.argv[1]), int(sys.argv[2])
ws = Workspace(root)
folder = ws.submissions_dir / "bench" / "cpu"
sub, call = load_submission(folder), ws.call("bench")
process_meter()  # hardware detection: once per process, measured separately


def cpu():
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


times = {"metered": [], "unmetered": []}
for _ in range(repeat):  # alternate, so drifting load hits both alike
    for label in ("unmetered", "metered"):
        before = cpu()
        record = execute_submission(folder, sub, call, ws.runs_dir, metered=label == "metered")
        assert record.status == "succeeded", record.message
        assert record.energy.measured is (label == "metered")
        times[label].append(cpu() - before)
print(json.dumps(times))
"""


def workspace(seconds: float) -> Path:
    import yaml

    root = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    call = {
        "id": "bench",
        "title": {"fr": "Banc", "en": "Bench"},
        "funder": "f",
        "programme": "p",
        "deadline": "2030-01-01",
        "templates": ["custom"],
        "protocol": {"isolation": "process", "time_limit_s": 600},
        "rubric": [{"id": "r", "weight": 1.0, "label": {"fr": "r", "en": "r"}}],
    }
    (root / "calls").mkdir()
    (root / "calls" / "bench.yaml").write_text(yaml.safe_dump(call))
    folder = root / "submissions" / "bench" / "cpu"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "notebooks" / "cpu_bound.ipynb", folder / "notebook.ipynb")
    signals = root / "signals"  # the notebook burns once it sees `idle-started` (alone: at once)
    signals.mkdir()
    (signals / "idle-started").touch()
    sub = {
        "id": "cpu",
        "call": "bench",
        "team": "t",
        "organisation": "o",
        "title": "t",
        "template": "custom",
        "parameters": {"seconds": seconds, "signals": str(signals)},
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(sub))
    return root


def run(root: Path, repeat: int) -> dict[str, list[float]]:
    """CPU seconds (runner + kernel) of each run, metered and not, in one fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(repeat)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def setup_times() -> tuple[float, float]:
    """First meter of a process (hardware detection) and a later run's meter start."""
    from workbench.runner.metering import RunMeter, process_meter

    begin = time.perf_counter()
    meter = process_meter()
    first = time.perf_counter() - begin
    begin = time.perf_counter()
    run_meter = RunMeter(meter)
    run_meter.start()
    later = time.perf_counter() - begin
    run_meter.stop()
    return first, later


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = workspace(args.seconds)
    try:
        times = run(root, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    metered, unmetered = times["metered"], times["unmetered"]
    first, later = setup_times()
    best_m, best_u = min(metered), min(unmetered)
    print(f"notebook CPU work: {args.seconds:.0f} s, {args.repeat} runs of each variant")
    for label, best, values in (("unmetered", best_u, unmetered), ("metered", best_m, metered)):
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"CPU time {label:>9} (best): {best:.2f} s   runs: {runs}")
    print(f"overhead ratio (best metered / best unmetered): {best_m / best_u:.3f}")
    print(f"meter set-up: first in a process {first:.2f} s, each later run {later * 1000:.1f} ms")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"(benchmark process CPU {usage.ru_utime + usage.ru_stime:.2f} s)")


if __name__ == "__main__":
    main()
