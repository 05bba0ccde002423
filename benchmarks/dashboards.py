"""Jury dashboards on a warm server: page render times with 500 submissions.

Creates a store of 500 synthetic submissions of the `diat` call, written directly through
the store API (no kernel runs): each has a finished run with a score, energy per phase,
120 recorded predictions and an executed notebook with typical outputs (text, a table, a
PNG, a plotly figure), plus three jurors and a few hundred scores. Then starts
`workbench serve`, waits until its preheated kernel pool is filled and the machine is
quiet, and times, with Playwright and /usr/bin/chromium:

- the call page: from navigation to 500 ranking rows and the Pareto chart drawn;
- a submission page: from navigation to its charts drawn and the scoring form shown;
- the complete HTML of each page, fetched without a browser (the server's share).

Each load is a juror's click in a browser that has already loaded the pages once (its
HTTP cache is warm); before each load the server is left to refill its pool. Medians
are printed.

    .venv/bin/python benchmarks/dashboards.py [--runs 10] [--pool-size 2]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CALL = "diat"
N_SUBMISSIONS = 500
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Charts whose axes are drawn (a chart's SVG has several layers, so count charts).
DRAWN_CHARTS = (
    "Array.from(document.querySelectorAll('.js-plotly-plot'))"
    ".filter(p => p.querySelector('svg.main-svg .cartesianlayer .subplot')).length"
)
# A 1x1 PNG, as an applicant's matplotlib output would carry (smaller).
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478"
        "9c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def executed_notebook(path: Path, rng: random.Random) -> None:
    """An executed notebook with the outputs an applicant's usually has."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("results")
    rows = "".join(
        f"<tr><td>{i}</td><td>{rng.random():.3f}</td><td>{rng.random():.3f}</td></tr>"
        for i in range(10)
    )
    figure = {
        "data": [{"type": "scatter", "x": list(range(60)), "y": [rng.random() for _ in range(60)]}],
        "layout": {"title": {"text": "Validation"}},
    }
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="MAE AI 0.42, baseline 0.61\n"),
        nbformat.v4.new_output(
            "execute_result",
            {"text/html": f"<table><tr><th>i</th><th>ai</th><th>truth</th></tr>{rows}</table>"},
            execution_count=1,
        ),
        nbformat.v4.new_output("display_data", {"image/png": PNG, "text/plain": "<Figure>"}),
        nbformat.v4.new_output(
            "display_data", {"application/vnd.plotly.v1+json": figure, "text/plain": "Figure"}
        ),
    ]
    nb.cells = [cell]
    nbformat.write(nb, path)


def populate(url: str, runs_dir: Path) -> tuple[str, str]:
    """500 submissions with one finished run each, jurors and scores; returns a token and a key."""
    from workbench.jury import hash_token, new_token, weighted_total
    from workbench.runner.metering import Energy, MachineInfo
    from workbench.runner.records import Fingerprint, RunRecord, RunScore, new_run_id
    from workbench.store import open_store
    from workbench.submissions import Submission
    from workbench.workspace import Workspace

    rng = random.Random(7)
    call = Workspace(ROOT).call(CALL)
    machine = MachineInfo(
        method="rapl",
        cpu_model="Reference CPU",
        cpu_count=8,
        ram_gb=32,
        architecture="x86_64",
        measured_by="benchmark",
    )
    other = machine.model_copy(update={"cpu_model": "Laptop CPU"})
    store = open_store(url)
    runs_dir.mkdir(parents=True, exist_ok=True)
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for i in range(N_SUBMISSIONS):
        template = call.templates[i % len(call.templates)]
        sub = Submission(
            id=f"projet-{i:03d}",
            call=CALL,
            team=f"Collectivité {i:03d} (fictive)",
            organisation=f"Collectivité {i:03d} (fictive)",
            title=f"Démonstrateur frugal n° {i}",
            template=template,
            answers={"data-open": bool(i % 2), "replication": "Oui.", "hosting": "on-premises"},
            state="submitted",  # handed in: drafts never reach the jury
        )
        store.register(call, sub)
        truth = [100 + 20 * math.sin(d / 5) + rng.gauss(0, 3) for d in range(120)]
        ai = [t + rng.gauss(0, 4) for t in truth]
        base = [t + rng.gauss(0, 7) for t in truth]
        ai_mae = sum(abs(a - t) for a, t in zip(ai, truth, strict=True)) / len(truth)
        base_mae = sum(abs(b - t) for b, t in zip(base, truth, strict=True)) / len(truth)
        phases = {p: rng.uniform(1e-6, 2e-5) for p in ("data", "train", "inference", "baseline")}
        total = sum(phases.values())
        measured_on = other if i % 25 == 0 else machine
        energy = Energy(
            measured=True,
            total_kwh=total,
            phases=phases,
            co2e_g=total * 56,
            wh_per_1000_predictions=total * 1e6 / 120,
            method=measured_on.method,
            machine=measured_on,
            machine_fingerprint=measured_on.fingerprint,
            comparable=True,
            country_iso_code="FRA",
            pue=1.4,
        )
        run_id = new_run_id(start + dt.timedelta(minutes=i))
        run_dir = runs_dir / run_id
        run_dir.mkdir()
        executed_notebook(run_dir / "notebook.ipynb", rng)
        gain = (base_mae - ai_mae) / base_mae
        record = RunRecord(
            run_id=run_id,
            submission=sub.key,
            call=CALL,
            status="succeeded" if i % 40 else "failed",
            metrics={"ai.mae": ai_mae, "baseline.mae": base_mae, "n_predictions": 120.0},
            records={
                "primary_metric": {"kind": "json", "value": {"name": "mae", "direction": "lower"}},
                "predictions": {
                    "kind": "dataframe",
                    "value": {
                        "columns": ["truth", "ai", "baseline"],
                        "index": list(range(120)),
                        "data": [list(r) for r in zip(truth, ai, base, strict=True)],
                    },
                },
            },
            score=RunScore(
                metric="mae",
                direction="lower",
                ai=ai_mae,
                baseline=base_mae,
                gain_vs_baseline=gain,
                disagrees=False,
            ),
            energy=energy,
            started_at=start + dt.timedelta(minutes=i),
            finished_at=start + dt.timedelta(minutes=i, seconds=30),
            duration_s=30.0,
            fingerprint=Fingerprint(
                notebook_sha256="0" * 64,
                parameters_sha256=f"{i:064d}",
                python="3.11",
                packages_sha256="0" * 64,
                kernel="python3",
            ),
            isolation="process",
            notebook=str(run_dir / "notebook.ipynb"),
            run_dir=str(run_dir),
        )
        store.add_run(record)
    tokens = []
    for name in ("Juré A", "Juré B", "Juré C"):
        token = new_token()
        juror = store.add_juror(call, name, hash_token(token), [])
        tokens.append(token)
        for i in rng.sample(range(N_SUBMISSIONS), 150):
            values = {c.id: float(rng.randint(0, 5)) for c in call.rubric}
            store.add_score(
                juror.id, f"{CALL}/projet-{i:03d}", values, "", weighted_total(call, values)
            )
    store.close()
    return tokens[0], f"{CALL}/projet-001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_quiet(pid: int, deadline_s: float = 60.0) -> None:
    """Until the server and its kernels use under 5 % of a core for a second (or the deadline).

    First the pool's refill delay passes: a kernel that replaces the one a page took must
    start before the next timed load, not during it.
    """
    import psutil

    from workbench.dashboards.server import POOL_FILL_DELAY_S

    time.sleep(POOL_FILL_DELAY_S + 0.5)

    server = psutil.Process(pid)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        procs = [server, *server.children(recursive=True)]
        before = {}
        for p in procs:
            try:
                cpu = p.cpu_times()
                before[p.pid] = cpu.user + cpu.system
            except psutil.Error:
                pass
        time.sleep(1.0)
        used = 0.0
        for p in procs:
            try:
                cpu = p.cpu_times()
                used += cpu.user + cpu.system - before.get(p.pid, cpu.user + cpu.system)
            except psutil.Error:
                pass
        if used < 0.05:
            return


def fetch(url: str) -> float:
    """Seconds to get a page's complete HTML without a browser (the server's share).

    The kernel this request took is not shut down (no browser asks for it): it sits idle
    until the server's idle-kernel culler stops it.
    """
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pool-size", type=int, default=2)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="workbench-dash-bench-"))
    url = f"sqlite:///{tmp / 'dash.db'}"
    t0 = time.perf_counter()
    token, key = populate(url, tmp / "runs")
    print(f"store with {N_SUBMISSIONS} submissions written in {time.perf_counter() - t0:.1f} s")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).parent / "workbench"
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DB", "WORKBENCH_HOME")}
    server = subprocess.Popen(
        [
            *(str(exe), "-w", str(ROOT), "--db", url, "serve", CALL),
            *("--port", str(port), "--pool-size", str(args.pool_size)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "serve.log").open("w"),
    )
    call_url = f"{base}/?token={token}"
    sub_url = f"{call_url}&submission={key}"
    pages = {
        "call page (500 rows)": (
            call_url,
            f"document.querySelectorAll('#wb-ranking tbody tr').length === {N_SUBMISSIONS}"
            f" && {DRAWN_CHARTS} >= 1",
        ),
        "submission page": (  # predictions, energy per phase, the applicant's figure
            sub_url,
            f"document.querySelector('.wb-save') !== null && {DRAWN_CHARTS} >= 3",
        ),
    }
    results: dict[str, dict[str, list[float]]] = {
        name: {"html": [], "browser": []} for name in pages
    }
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit((tmp / "serve.log").read_text()) from None
                time.sleep(0.2)
        wait_quiet(server.pid)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            for _name, (target, ready) in pages.items():  # fill the browser's cache once
                page.goto(target)
                page.wait_for_function(ready, timeout=120_000)
                page.goto("about:blank")
                wait_quiet(server.pid)
            for _ in range(args.runs):
                for name, (target, ready) in pages.items():
                    results[name]["html"].append(fetch(target))
                    wait_quiet(server.pid)
                    started = time.perf_counter()
                    page.goto(target, wait_until="commit")
                    page.wait_for_function(ready, timeout=120_000, polling=20)
                    results[name]["browser"].append(time.perf_counter() - started)
                    page.goto("about:blank")  # the page's kernel is shut down
                    wait_quiet(server.pid)
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"{args.runs} loads per page, pool size {args.pool_size}, medians (min-max):")
    for name, series in results.items():
        for what, values in series.items():
            label = "complete HTML (server)" if what == "html" else "fully rendered (browser)"
            print(
                f"  {name:22s} {label:26s} {statistics.median(values):6.3f} s "
                f"({min(values):.3f}-{max(values):.3f})"
            )
    print(
        json.dumps({n: {w: statistics.median(v) for w, v in s.items()} for n, s in results.items()})
    )


if __name__ == "__main__":
    main()
