"""Batch speed: papermill once per notebook, `workbench batch`, and plain scripts (the floor).

    .venv/bin/python benchmarks/batch.py [--copies 24] [--workers 2] [--rss 200]

All three are timed in one invocation, so the ratios hold on a noisy machine:

    (a) the papermill command, once per notebook, in sequence
    (b) `workbench batch --workers N` over the same notebooks
    (c) the notebooks' code as plain Python scripts, in sequence, divided by N

With `--rss K`, a second batch of K submissions measures the coordinator's peak RSS.
With `--environment`, the same batch runs again under a call with its own environment
(`protocol.environment`, numpy: what the notebooks import), built once before timing;
(e)/(b) is the cost of kernels started from that environment (goal <= 1.10). Both batches
run three times more, alternately, and each keeps its fastest time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml
from nbformat.v4 import new_code_cell, new_notebook

BIN = Path(sys.executable).parent
CODE = """\
import numpy as np
import workbench
total = sum(i * i for i in range(6_000_000))
x = np.random.default_rng(seed).random((300, 300))
workbench.record("n_predictions", int(x.shape[0]))
workbench.record("ai.total", float(total % 1000))
"""


def make_workspace(root: Path, copies: int, environment: list[str] | None = None) -> None:
    call = {
        "id": "bench",
        "title": {"fr": "Banc", "en": "Bench"},
        "funder": "f",
        "programme": "p",
        "deadline": "2030-01-01",
        "templates": ["custom"],
        "protocol": {
            "isolation": "process",
            "time_limit_s": 600,
            **({"environment": {"requirements": environment}} if environment else {}),
        },
        "rubric": [{"id": "r", "weight": 1.0, "label": {"fr": "r", "en": "r"}}],
    }
    (root / "calls").mkdir(parents=True)
    (root / "calls" / "bench.yaml").write_text(yaml.safe_dump(call))
    params = new_code_cell("seed = 0  # random seed")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(CODE)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for i in range(copies):
        folder = root / "submissions" / "bench" / f"s{i:03d}"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "notebook.ipynb")
        sub = {
            "id": f"s{i:03d}",
            "call": "bench",
            "team": "t",
            "organisation": "o",
            "title": "t",
            "template": "custom",
            "parameters": {"seed": i},
            "state": "submitted",  # handed in: a batch runs no draft
        }
        (folder / "submission.yaml").write_text(yaml.safe_dump(sub))
    (root / "script.py").write_text(
        "import sys\nsys.modules['workbench'] = type(sys)('w')\n"
        "sys.modules['workbench'].record = lambda *a: None\nseed = 0\n" + CODE
    )


def timed(commands: list[list[str]], env: dict[str, str]) -> float:
    begin = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rss", type=int, default=0, help="submissions for the peak-RSS run")
    parser.add_argument(
        "--no-papermill", action="store_true", help="skip (a): for runs with many copies"
    )
    parser.add_argument(
        "--environment",
        action="store_true",
        help="also time the batch under a call with its own environment (built first)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wb-batch-bench-"))
    try:
        make_workspace(root, args.copies)
        env = {**os.environ, "WORKBENCH_HOME": str(root)}
        env.pop("WORKBENCH_DB", None)
        folders = sorted((root / "submissions" / "bench").iterdir())
        out = root / "papermill-out"
        out.mkdir()
        a = (
            math.nan
            if args.no_papermill
            else timed(
                [
                    [
                        str(BIN / "papermill"),
                        "-k",
                        "python3",
                        "-p",
                        "seed",
                        str(i),
                        str(f / "notebook.ipynb"),
                        str(out / f"{f.name}.ipynb"),
                    ]
                    for i, f in enumerate(folders)
                ],
                env,
            )
        )
        b = peak_batch(root, args.workers, env)
        c = timed([[sys.executable, str(root / "script.py")] for _ in folders], env) / args.workers
        print(f"{args.copies} notebooks, {args.workers} workers")
        print(f"(a) papermill, one process per notebook, in sequence: {a:.1f} s")
        print(f"(b) workbench batch --workers {args.workers}: {b[0]:.1f} s (peak RSS {b[1]} MB)")
        print(f"(c) plain scripts in sequence / {args.workers} (the floor): {c:.1f} s")
        print(f"(a)/(b) = {a / b[0]:.2f}   (goal >= 4)")
        print(f"(b)/(c) = {b[0] / c:.2f}   (goal <= 1.6)")
        if args.environment:
            with_environment(root, args, env)
        if args.rss:
            big = Path(tempfile.mkdtemp(prefix="wb-batch-rss-"))
            try:
                make_workspace(big, args.rss)
                elapsed, rss = peak_batch(big, args.workers, {**env, "WORKBENCH_HOME": str(big)})
                print(f"{args.rss} submissions: {elapsed:.1f} s, coordinator peak RSS {rss} MB")
            finally:
                shutil.rmtree(big, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def with_environment(root: Path, args: argparse.Namespace, env: dict[str, str]) -> None:
    """(e): the same batch under a call whose kernels start from its own environment."""
    other = root / "with-environment"
    make_workspace(other, args.copies, ["numpy"])
    env_e = {**env, "WORKBENCH_HOME": str(other)}
    built = subprocess.run(
        [str(BIN / "workbench"), "env", "build", "bench"], env=env_e, capture_output=True, text=True
    )
    if built.returncode != 0:
        raise SystemExit(f"building the environment failed: {built.stderr}")
    runs: dict[str, list[float]] = {"b": [], "e": []}
    for _ in range(3):  # alternately, so a drift of the machine hits both
        runs["e"].append(peak_batch(other, args.workers, env_e, rerun=True)[0])
        runs["b"].append(peak_batch(root, args.workers, env, rerun=True)[0])
    b, e = min(runs["b"]), min(runs["e"])
    shown = {k: ", ".join(f"{t:.1f}" for t in v) for k, v in runs.items()}
    print(f"(b) again, alternating with (e): {shown['b']} s; fastest {b:.1f} s")
    print(f"(e) the call's own environment: {shown['e']} s; fastest {e:.1f} s")
    print(f"(e)/(b) = {e / b:.2f}   (goal <= 1.10)")


def peak_batch(
    root: Path, workers: int, env: dict[str, str], *, rerun: bool = False
) -> tuple[float, int]:
    """Wall time of `workbench batch` and the coordinator's own peak RSS in MB (kernels apart)."""
    import threading

    import psutil

    begin = time.perf_counter()
    process = subprocess.Popen(
        [
            str(BIN / "workbench"),
            "batch",
            "bench",
            "--workers",
            str(workers),
            "--json",
            *(["--rerun"] if rerun else []),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        coordinator = psutil.Process(process.pid)
        while not done.wait(0.2):
            try:
                peak = max(peak, coordinator.memory_info().rss)
            except psutil.Error:
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert process.stdout is not None
    statuses = [json.loads(line)["status"] for line in process.stdout]
    process.wait()
    done.set()
    watcher.join()
    elapsed = time.perf_counter() - begin
    assert statuses and all(s == "succeeded" for s in statuses), statuses
    return elapsed, peak // (1024 * 1024)


if __name__ == "__main__":
    main()
