"""A whole jury at once: N jurors, each reading the ranking and 10 submissions.

Builds a store of 200 synthetic submissions of the `diat` call the way
`benchmarks/dashboards.py` does (no kernel runs), adds N jurors, starts `workbench serve`
and waits for its pool. Then N jurors, each in a browser context of their own (Playwright,
/usr/bin/chromium), open their personal link at the same moment and follow, in that tab,
the links to 10 submissions and back to the ranking between them, as a juror reads. Each
view is timed from the click (or the navigation) to the page fully drawn: the ranking's
200 rows and its chart, or a submission's charts and scoring form. Before its first click a
juror waits (untimed) for the page's view to be ready, as a reader would.

Printed: the median and 95th percentile of those times, the server's peak memory (the
proportional set size, PSS, of the whole process tree, kernels included, sampled every
0.5 s: shared pages counted once in all), and the live kernels and
memory while the tabs are open, then two minutes after every juror has left (tabs closed
without `beforeunload`, as a crashed or sleeping browser would leave them).

    .venv/bin/python benchmarks/jury_load.py [--jurors 20] [--submissions-each 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import dashboards as bench  # noqa: E402

N_SUBMISSIONS = 200
KERNEL_ARG = "ipykernel"
ZYGOTE_ARG = "workbench.runner.zygote"


def _kernel(proc: Any, parent: Any) -> bool:
    """A kernel: started as ipykernel, or forked by a kernel zygote (its command line)."""
    command = " ".join(proc.cmdline())
    if KERNEL_ARG in command:
        return True
    return ZYGOTE_ARG in command and parent is not None and parent.cmdline() == proc.cmdline()


def tree_memory(pid: int) -> tuple[int, int]:
    """Proportional set size (PSS) of the server and its descendants (bytes), its kernels.

    PSS counts a page shared by n processes as 1/n in each, so the sum is the tree's
    real footprint: forked kernels share their parent's pages until they write them.
    """
    import psutil

    total = 0
    kernels = 0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for proc in procs:
        try:
            total += proc.memory_full_info().pss
            kernels += _kernel(proc, proc.parent())
        except psutil.Error:
            continue
    return total, kernels


class Sampler(threading.Thread):
    """The server tree's peak memory and kernels, sampled in the background."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.peak_kernels = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            memory, kernels = tree_memory(self.pid)
            self.peak = max(self.peak, memory)
            self.peak_kernels = max(self.peak_kernels, kernels)
            time.sleep(0.5)


def add_jurors(url: str, count: int) -> list[str]:
    from workbench.jury import hash_token, new_token
    from workbench.store import open_store
    from workbench.workspace import Workspace

    call = Workspace(ROOT).call(bench.CALL)
    store = open_store(url)
    tokens = []
    for i in range(count):
        token = new_token()
        store.add_juror(call, f"Juré·e de charge {i + 1:02d}", hash_token(token), [])
        tokens.append(token)
    store.close()
    return tokens


CALL_DRAWN = (
    f"document.querySelectorAll('#wb-ranking tbody tr').length === {N_SUBMISSIONS}"
    f" && {bench.DRAWN_CHARTS} >= 1"
)
# Predictions, energy per phase and the applicant's figure, and the form.
SUBMISSION_DRAWN = (
    "key => document.querySelector('#wb-title') !== null"
    " && document.querySelector('.wb-save') !== null"
    " && location.search.includes(encodeURIComponent(key))"
    f" && {bench.DRAWN_CHARTS} >= 3"
)


VIEW_TIMEOUT_MS = 180_000


async def juror(
    browser: Any, link: str, keys: list[str], times: list[float], missed: list[str]
) -> None:
    """One juror's reading; a view not drawn within 3 minutes ends it, and is counted."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    what = "call page"
    try:
        began = time.perf_counter()
        response = await page.goto(link, wait_until="commit", timeout=VIEW_TIMEOUT_MS)
        if response is not None and response.status != 200:
            missed.append(f"first page refused: HTTP {response.status}")
            return
        await page.wait_for_function(CALL_DRAWN, timeout=VIEW_TIMEOUT_MS, polling=50)
        times.append(time.perf_counter() - began)
        # A juror reads the ranking before a first click: by then the page's view is there
        # (a click before it waits 5 s for it, then loads the page anew, with a kernel more).
        what = "the page's view (widgets)"
        await page.wait_for_selector(".wb-nav input", state="attached", timeout=VIEW_TIMEOUT_MS)
        for key in keys:
            what = key
            began = time.perf_counter()
            await page.click(f'#wb-ranking a[data-wb-key="{key}"]')
            await page.wait_for_function(
                SUBMISSION_DRAWN, arg=key, timeout=VIEW_TIMEOUT_MS, polling=50
            )
            times.append(time.perf_counter() - began)
            what = "back to the ranking"
            began = time.perf_counter()
            await page.click("#wb-back")
            await page.wait_for_function(CALL_DRAWN, timeout=VIEW_TIMEOUT_MS, polling=50)
            times.append(time.perf_counter() - began)
    except PlaywrightTimeout:
        missed.append(f"not drawn within {VIEW_TIMEOUT_MS // 1000} s: {what}")


async def jury(
    links: list[str], keys: list[list[str]], pid: int, missed: list[str]
) -> tuple[list[float], Any]:
    """Every juror at once in one browser, a context each; the tree while all tabs are open."""
    from playwright.async_api import async_playwright

    times: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=bench.CHROMIUM_ARGS
        )
        await asyncio.gather(
            *(juror(browser, a, b, times, missed) for a, b in zip(links, keys, strict=True))
        )
        open_tree = tree_memory(pid)
        # Gone without a word (no `beforeunload`), like crashed or sleeping browsers.
        for context in browser.contexts:
            for page in context.pages:
                await page.close(run_before_unload=False)
        await browser.close()
    return times, open_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jurors", type=int, default=20)
    parser.add_argument("--submissions-each", type=int, default=10)
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--after", type=float, default=120.0, help="Seconds to wait at the end.")
    args = parser.parse_args()

    bench.N_SUBMISSIONS = N_SUBMISSIONS
    tmp = Path(tempfile.mkdtemp(prefix="workbench-jury-load-"))
    url = f"sqlite:///{tmp / 'load.db'}"
    bench.populate(url, tmp / "runs")
    tokens = add_jurors(url, args.jurors)
    port = bench.free_port()
    base = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).parent / "workbench"
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DB", "WORKBENCH_HOME")}
    max_kernels = args.jurors + args.pool_size + 1
    server = subprocess.Popen(
        [
            *(str(exe), "-w", str(ROOT), "--db", url, "serve", bench.CALL),
            *("--port", str(port), "--pool-size", str(args.pool_size)),
            *("--max-kernels", str(max_kernels)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "serve.log").open("w"),
    )
    rng = random.Random(11)
    keys = [f"{bench.CALL}/projet-{i:03d}" for i in range(N_SUBMISSIONS)]
    sampler = Sampler(server.pid)
    try:
        import socket

        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit((tmp / "serve.log").read_text()) from None
                time.sleep(0.2)
        bench.wait_quiet(server.pid)
        idle_memory, idle_kernels = tree_memory(server.pid)
        sampler.start()
        started = time.perf_counter()
        chosen = [rng.sample(keys, args.submissions_each) for _ in tokens]
        links = [f"{base}/?token={token}" for token in tokens]
        missed: list[str] = []
        times, (open_memory, open_kernels) = asyncio.run(jury(links, chosen, server.pid, missed))
        elapsed = time.perf_counter() - started
        time.sleep(args.after)
        after_memory, after_kernels = tree_memory(server.pid)
    finally:
        sampler.stop.set()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    mib = 1024 * 1024
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(
        f"{args.jurors} jurors at once, {N_SUBMISSIONS} submissions, "
        f"{args.submissions_each} submissions each, pool {args.pool_size}, "
        f"cap {max_kernels} kernels; {len(times)} views in {elapsed:.0f} s"
    )
    print(f"  jurors stopped short: {len(missed)}" + "".join(f"\n    {m}" for m in missed))
    print(f"  server log: {tmp / 'serve.log'}")
    print("  memory: PSS of the server's whole process tree (kernels and zygote included)")
    print(f"  time to a fully drawn view: median {statistics.median(times):.2f} s, p95 {p95:.2f} s")
    print(f"  before the jurors: {idle_kernels} kernels, {idle_memory / mib:.0f} MiB")
    print(f"  all tabs open: {open_kernels} kernels, {open_memory / mib:.0f} MiB")
    print(f"  peak: {sampler.peak_kernels} kernels, {sampler.peak / mib:.0f} MiB")
    print(
        f"  {args.after:.0f} s after the jurors left: {after_kernels} kernels, "
        f"{after_memory / mib:.0f} MiB"
    )


if __name__ == "__main__":
    main()
