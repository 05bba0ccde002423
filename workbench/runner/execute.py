"""One run: stage the inputs, execute the notebook in a fresh kernel, classify, collect.

`execute_submission` returns a `RunRecord` and never touches the store, so the same
function runs on a Dask worker with no database. A failed, timed-out or killed run
is still a result: its executed notebook is kept and its record says what happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ExecutionError, InvalidError, Problem
from workbench.runner.records import (
    CellTiming,
    Fingerprint,
    RunError,
    RunRecord,
    RunScore,
    canonical_sha256,
    new_run_id,
)

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.runner.metering import Meter, RunMeter
    from workbench.submissions import Submission

log = logging.getLogger(__name__)

EXECUTED_NOTEBOOK = "notebook.ipynb"
INPUT_NOTEBOOK = "input.ipynb"
OUTPUT_LOG = "output.log"
RECORD_FILE = "run.json"
KERNEL_START_TIMEOUT_S = 60.0
MB = 1024 * 1024
OUTPUT_TRUNCATED = "output_truncated"  # a run flag


@lru_cache(maxsize=1)
def packages_sha256() -> str:
    """A hash of every installed distribution and its version (once per process)."""
    from importlib.metadata import distributions

    pairs = sorted({(d.metadata["Name"] or "").lower(): d.version for d in distributions()}.items())
    return canonical_sha256(pairs)


def fingerprint(
    notebook: Path, parameters: dict[str, Any], data: dict[str, str], kernel: str
) -> Fingerprint:
    from workbench.submissions import sha256_file

    return Fingerprint(
        notebook_sha256=sha256_file(notebook),
        parameters_sha256=canonical_sha256(parameters),
        data_sha256=dict(sorted(data.items())),
        python=".".join(str(v) for v in sys.version_info[:3]),
        packages_sha256=packages_sha256(),
        kernel=kernel,
    )


def stage_inputs(folder: Path, sub: Submission, run_dir: Path) -> dict[str, str]:
    """Copy the notebook and declared data into the run folder; check data against its sha256.

    The kernel works in the run folder, so relative data paths resolve to these copies:
    what the fingerprint hashes is exactly what the notebook reads.
    """
    from workbench.submissions import sha256_file

    shutil.copyfile(folder / sub.notebook, run_dir / INPUT_NOTEBOOK)
    hashes: dict[str, str] = {}
    problems = []
    for i, item in enumerate(sub.data):
        target = run_dir / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / item.path, target)
        digest = sha256_file(target)
        if digest != item.sha256:
            problems.append(
                Problem(
                    str(folder / "submission.yaml"),
                    f"data.{i}.sha256",
                    f"{item.path}: content changed",
                )
            )
        hashes[item.path] = digest
    if problems:
        raise InvalidError(problems)
    return hashes


def _kill_tree(pid: int) -> None:
    """Kill a kernel, its process group and every descendant, even those that left the group."""
    import psutil

    try:
        victims = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        victims = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for proc in victims:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.kill()


def _output_size(content: dict[str, Any]) -> int:
    """Characters an output adds to the notebook: its text, data bundle or traceback."""
    if "text" in content:
        return len(content["text"])
    size = sum(len(str(value)) for value in (content.get("data") or {}).values())
    return size + sum(len(line) for line in content.get("traceback") or [])


@dataclass
class OutputBudget:
    """How much output a run may add to its executed notebook, in characters.

    Printed text (streams) and rich outputs (displays, results, widget state) have
    separate budgets, so a notebook that floods its prints still gets its records.
    Past a budget, output is discarded, a visible marker takes its place in the cell,
    and the run is flagged: never silently dropped.
    """

    stream: int = 10 * MB
    rich: int = 50 * MB
    used: dict[str, int] = field(default_factory=lambda: {"stream": 0, "rich": 0})
    discarded: dict[str, int] = field(default_factory=lambda: {"stream": 0, "rich": 0})
    # (cell index, kind) -> [the marker output, characters discarded from that cell]
    _markers: dict[tuple[int, str], list[Any]] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        return any(self.discarded.values())

    def room(self, kind: str) -> int:
        return max(0, (self.stream if kind == "stream" else self.rich) - self.used[kind])

    def take(self, kind: str, size: int) -> None:
        self.used[kind] += size

    def discard(self, kind: str, size: int, outs: list[Any], cell_index: int) -> Any:
        """Count `size` discarded characters; return the cell's marker output when it is new."""
        from nbformat.v4 import new_output

        self.discarded[kind] += size
        entry = self._markers.get((cell_index, kind))
        new = entry is None
        if entry is None:
            entry = self._markers[(cell_index, kind)] = [new_output("stream", name="stderr"), 0]
            outs.append(entry[0])
        entry[1] += size
        limit = (self.stream if kind == "stream" else self.rich) // MB
        what = "printed output" if kind == "stream" else "display output"
        entry[0].text = (
            f"\n[workbench: output truncated: this run's {what} exceeded its {limit} MB budget;"
            f" {entry[1] / MB:.1f} MB discarded from this cell]\n"
        )
        return entry[0] if new else None


@dataclass
class RunControl:
    """Shared between the runner and the execution engine: cell timings, the kernel, the clock.

    With a `slot`, the cells wait for it once the kernel is ready: a batch starts the
    next kernels while the current cells run, and runs only as many notebooks at once
    as it has slots. The wait does not count against the run's time limit, and the
    meter starts when the cells do.
    """

    deadline: float
    cells: list[CellTiming] = field(default_factory=list)
    kernel_pid: int | None = None
    timed_out: bool = False
    meter: RunMeter | None = None
    start_meter: Callable[[], tuple[RunMeter | None, str | None]] | None = None
    unmeasured: str | None = "no cell ran"
    slot: threading.Semaphore | None = None
    waited: float = 0.0
    waiting: bool = False
    output: OutputBudget = field(default_factory=OutputBudget)
    _started: dict[int, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self, cell: Any = None) -> int:
        """Whole seconds left before the deadline (nbclient's timeouts are integers)."""
        return max(1, math.ceil(self.deadline - time.monotonic()))

    def cell_executing(self, cell: Any, cell_index: int, client: Any) -> None:
        from workbench.notebooks import cell_phase

        if self.kernel_pid is None:
            self.kernel_pid = client.km.provisioner.process.pid
            if self.meter is not None:
                self.meter.attach(self.kernel_pid)
        phase = cell_phase(cell)
        if self.meter is not None:
            self.meter.enter_phase(phase)
        self._started[cell_index] = (phase, time.time())

    def cell_complete(self, cell: Any, cell_index: int, **_: Any) -> None:
        if self.meter is not None:
            self.meter.sample()
        started = self._started.pop(cell_index, None)
        if started is not None:
            phase, start = started
            self.cells.append(
                CellTiming(index=cell_index, phase=phase, start=start, end=time.time())
            )

    def close_cells(self) -> None:
        """A cell cut short (killed, timed out, kernel died) ends when the run does."""
        for cell_index in sorted(self._started):
            self.cell_complete(None, cell_index)

    def kill(self) -> None:
        with self._lock:
            if self.kernel_pid is not None:
                _kill_tree(self.kernel_pid)

    @contextlib.contextmanager
    def executing(self) -> Iterator[None]:
        """Around the notebook's cells: take a slot, then meter until they are done."""
        begin = time.monotonic()
        if self.slot is not None:
            self.waiting = True
            self.slot.acquire()
        self.waited = time.monotonic() - begin
        self.deadline += self.waited
        self.waiting = False
        try:
            if self.start_meter is not None:
                self.meter, self.unmeasured = self.start_meter()
            yield
        finally:
            self.close_cells()
            if self.meter is not None:
                self.meter.stop()
            if self.slot is not None:
                self.slot.release()

    @contextlib.contextmanager
    def watchdog(self) -> Iterator[None]:
        """Kill the kernel's whole tree at the deadline, whatever it is doing."""
        done = threading.Event()

        def watch() -> None:
            # The deadline moves on while the run waits for a slot: look again when woken.
            # Before its first cell the kernel's pid is not known yet (its start is bounded
            # by nbclient's start-up timeout): wait for something to kill.
            while not done.wait(max(0.0, self.deadline - time.monotonic())):
                if self.waiting or self.kernel_pid is None:
                    if done.wait(0.5):
                        return
                elif time.monotonic() >= self.deadline:
                    self.timed_out = True
                    self.kill()
                    return

        thread = threading.Thread(target=watch, name="workbench-watchdog", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.kill()  # nothing the notebook started outlives its run


def _register_engine() -> None:
    """Register the workbench's papermill engine: nbclient, with our hooks and kernel manager."""
    from jupyter_client.manager import AsyncKernelManager
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from traitlets import List, Unicode

    if "workbench" in papermill_engines._engines:
        return

    class WorkbenchKernelManager(AsyncKernelManager):
        command_prefix = List(Unicode(), default_value=[]).tag(config=True)
        isolation_name = Unicode("none").tag(config=True)
        run_dir = Unicode("").tag(config=True)
        limits_json = Unicode("{}").tag(config=True)

        def __init__(self, **kwargs: Any) -> None:
            import uuid

            from workbench.runner import zygote
            from workbench.runner.isolation import isolation_levels

            super().__init__(**kwargs)
            # One level instance per kernel: it may hold what it set up until `cleanup`.
            self.isolation = isolation_levels.get(self.isolation_name)
            # The level picks the transport: a sandboxed kernel has no shared loopback, so
            # it is reached over Unix sockets. Set before the connection file is written.
            for name, value in self.isolation.connection(Path(self.run_dir)).items():
                setattr(self, name, value)
            if zygote.enabled():
                # Forked from a process that has imported the kernel already (zygote.py).
                self.kernel_id = self.kernel_id or str(uuid.uuid4())
                self.provisioner = zygote.provisioner_class()(
                    kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
                )

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            import json

            from workbench.runner import zygote
            from workbench.runner.isolation import Limits

            cmd = super().format_kernel_cmd(extra_arguments)
            if cmd[1:3] == ["-m", zygote.KERNEL_MODULE]:
                # No IPython history database: a run needs none, and outside the sandbox
                # it would be one file shared by every submission's kernel.
                cmd.append("--HistoryManager.enabled=False")
            limits = Limits(**json.loads(self.limits_json))
            return self.isolation.kernel_command(cmd, Path(self.run_dir), limits)

        async def cleanup_resources(self, restart: bool = False) -> None:  # type: ignore[override]
            await super().cleanup_resources(restart=restart)
            if not restart:
                self.isolation.cleanup(Path(self.run_dir))

    class WorkbenchNotebookClient(PapermillNotebookClient):
        """papermill's client, with the run's output budget applied to every output."""

        control = RunControl(deadline=math.inf)  # replaced per run

        @property
        def budget(self) -> OutputBudget:
            return self.control.output

        def papermill_execute_cells(self) -> None:
            with self.control.executing():
                super().papermill_execute_cells()

        def output(
            self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int
        ) -> Any:
            budget, content, kind = self.budget, msg["content"], msg["msg_type"]
            if kind == "stream":
                text = content.get("text", "")
                if len(text) <= budget.room("stream"):
                    budget.take("stream", len(text))
                    return super().output(outs, msg, display_id, cell_index)
                kept = text[: budget.room("stream")]
                budget.take("stream", len(kept))
                out = None
                if kept:
                    content["text"] = kept
                    out = super().output(outs, msg, display_id, cell_index)
                marker = budget.discard("stream", len(text) - len(kept), outs, cell_index)
                if out is not None and marker is not None:
                    self.log_output_message(out)  # papermill logs only what is returned
                return marker or out
            if kind == "error":
                # Always kept (the run's status and error come from it), but cut to size.
                cut = _cut_error(content)
                if cut:
                    budget.discarded["rich"] += cut
                return super().output(outs, msg, display_id, cell_index)
            size = _output_size(content)
            if size > budget.room("rich"):
                return budget.discard("rich", size, outs, cell_index)
            budget.take("rich", size)
            return super().output(outs, msg, display_id, cell_index)

        def handle_comm_msg(self, outs: list[Any], msg: dict[str, Any], cell_index: int) -> None:
            size = len(str(msg["content"].get("data", "")))
            if size > self.budget.room("rich"):
                marker = self.budget.discard("rich", size, outs, cell_index)
                if marker is not None:
                    self.log_output_message(marker)
                return
            self.budget.take("rich", size)
            super().handle_comm_msg(outs, msg, cell_index)

    class WorkbenchEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls, nb_man: Any, kernel_name: str, *, control: RunControl, **kwargs: Any
        ) -> Any:
            for unused in ("input_path", "start_timeout", "timeout", "execution_timeout"):
                kwargs.pop(unused, None)
            client: Any = None

            def on_cell_execute(cell: Any, cell_index: int) -> None:
                control.cell_executing(cell, cell_index, client)

            client = WorkbenchNotebookClient(
                nb_man,
                kernel_name=kernel_name,
                kernel_manager_class=WorkbenchKernelManager,
                timeout_func=control.remaining,
                startup_timeout=min(KERNEL_START_TIMEOUT_S, control.remaining()),
                on_cell_execute=on_cell_execute,
                # `on_cell_executed`, not `on_cell_complete`: nbclient calls the latter as
                # soon as the cell is sent, the former once the kernel has replied.
                on_cell_executed=control.cell_complete,
                # The watchdog kills the whole tree afterwards: no graceful shutdown to wait for.
                shutdown_kernel="immediate",
                log=logging.getLogger("papermill"),
                **kwargs,
            )
            client.control = control
            return client.execute()

    papermill_engines.register("workbench", WorkbenchEngine)


ERROR_TEXT_MAX = 100_000  # characters of an error's message, and of its traceback


def _cut_error(content: dict[str, Any]) -> int:
    """Cut an error output's message and traceback to `ERROR_TEXT_MAX`; characters removed."""
    cut = 0
    evalue = str(content.get("evalue", ""))
    if len(evalue) > ERROR_TEXT_MAX:
        cut += len(evalue) - ERROR_TEXT_MAX
        content["evalue"] = evalue[:ERROR_TEXT_MAX] + " [truncated]"
    lines, kept, size = list(content.get("traceback") or []), [], 0
    for line in lines:
        room = ERROR_TEXT_MAX - size
        if len(line) > room:
            kept.append(line[:room] + " [traceback truncated]")
            cut += len(line) - room + sum(len(rest) for rest in lines[len(kept) :])
            break
        kept.append(line)
        size += len(line)
    content["traceback"] = kept
    return cut


def _team_index(cell: Any, team_nb: Any) -> int | None:
    """Index of an executed cell in the team's own notebook (before papermill's additions)."""
    for index, original in enumerate(team_nb.cells if team_nb is not None else []):
        if cell.get("id") and original.get("id") == cell.get("id"):
            return index
    for index, original in enumerate(team_nb.cells if team_nb is not None else []):
        if original.source == cell.source:
            return index
    return None


def _error_cell(nb: Any, ename: str | None = None) -> Any:
    for cell in nb.cells if nb is not None else []:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and ename in (None, output.get("ename")):
                return cell, output
    return None, None


def _classify(
    nb: Any,
    team_nb: Any,
    exc: BaseException | None,
    control: RunControl,
    required: list[str],
    metrics: dict[str, float],
) -> tuple[str, RunError | None, str]:
    """The run's status, error and message, from the executed notebook and what was raised.

    Cell indices are those of the team's notebook, which is what the team can open.
    """
    from papermill.exceptions import PapermillExecutionError

    if control.timed_out:
        return "timed_out", None, "the run exceeded the call's time limit and was killed"
    if isinstance(exc, PapermillExecutionError):
        cell, _ = _error_cell(nb, exc.ename)
        index = _team_index(cell, team_nb) if cell is not None else None
        error = RunError(cell_index=index, ename=exc.ename, evalue=str(exc.evalue)[:2000])
        return "failed", error, f"{exc.ename} in cell {index}: {str(exc.evalue)[:300]}"
    if exc is not None:
        name = type(exc).__name__
        if isinstance(exc, TimeoutError) or "Timeout" in name:
            return "timed_out", None, "the run exceeded the call's time limit"
        message = f"the kernel died: {name}: {exc}"[:500]
        return "kernel_died", RunError(ename=name, evalue=str(exc)[:2000]), message
    cell, output = _error_cell(nb, "SystemExit")
    if cell is not None:
        index = _team_index(cell, team_nb)
        error = RunError(cell_index=index, ename="SystemExit", evalue=output.get("evalue", ""))
        return "incomplete", error, f"the notebook stopped early (SystemExit) in cell {index}"
    skipped = [
        _team_index(c, team_nb)
        for c in (nb.cells if nb is not None else [])
        if c.cell_type == "code" and c.source.strip() and c.get("execution_count") is None
    ]
    if skipped:
        return "incomplete", None, f"cells not executed: {', '.join(map(str, skipped[:10]))}"
    missing = [m for m in required if m not in metrics]
    if missing:
        return "incomplete", None, f"required metrics not recorded: {', '.join(missing)}"
    return "succeeded", None, ""


def _start_meter(meter: Meter | None) -> tuple[RunMeter | None, str | None]:
    """A started meter for this run, or None and the reason energy cannot be measured."""
    from workbench.runner.metering import MeteringUnavailable, RunMeter, process_meter

    try:
        run_meter = RunMeter(meter or process_meter())
        run_meter.start()
    except MeteringUnavailable as exc:
        return None, str(exc)
    except Exception as exc:  # measuring must never stop a run
        return None, f"measurement failed: {type(exc).__name__}: {exc}"
    return run_meter, None


def _score(metrics: dict[str, float], records: dict[str, Any]) -> RunScore | None:
    """The workbench's own score; a notebook cannot record `gain_vs_baseline` itself."""
    import dataclasses

    from workbench.scoring import score_run

    metrics.pop("gain_vs_baseline", None)
    score = score_run(metrics, records)
    return RunScore(**dataclasses.asdict(score)) if score is not None else None


def execute_submission(
    folder: Path,
    sub: Submission,
    call: Call,
    runs_dir: Path,
    *,
    isolation: str | None = None,
    kernel_name: str = "python3",
    run_id: str | None = None,
    on_start: Callable[[RunRecord], None] | None = None,
    meter: Meter | None = None,
    metered: bool = True,
    slot: threading.Semaphore | None = None,
) -> RunRecord:
    """Execute one submission in a new run folder and return its record.

    `on_start` receives the record in `running` state before the kernel starts, so a
    caller can store it and a crash mid-run never looks finished. With a `slot`, the
    kernel starts at once and the cells wait for the slot (see `RunControl`).
    """
    import json

    import nbformat
    import papermill

    from workbench.recording import numeric_metrics, read_records
    from workbench.runner.isolation import Limits, isolation_levels
    from workbench.runner.metering import summarise

    level = isolation_levels.get(isolation or call.protocol.isolation)
    level.check()
    run_id = run_id or new_run_id()
    run_dir = (runs_dir / run_id).resolve()
    try:
        run_dir.mkdir(parents=True)
    except FileExistsError as exc:
        raise ExecutionError(f"{run_dir}: run folder already exists") from exc
    data_hashes = stage_inputs(folder, sub, run_dir)
    started_at = dt.datetime.now(dt.UTC)
    record = RunRecord(
        run_id=run_id,
        submission=sub.key,
        call=call.id,
        status="running",
        parameters=sub.parameters,
        started_at=started_at,
        fingerprint=fingerprint(run_dir / INPUT_NOTEBOOK, sub.parameters, data_hashes, kernel_name),
        isolation=level.name,
        notebook=str(run_dir / EXECUTED_NOTEBOOK),
        run_dir=str(run_dir),
    )
    if on_start is not None:
        on_start(record)

    _register_engine()
    from traitlets.config import Config

    limits = Limits(memory_mb=call.protocol.memory_limit_mb)
    config = Config()
    config.WorkbenchKernelManager.isolation_name = level.name
    config.WorkbenchKernelManager.run_dir = str(run_dir)
    config.WorkbenchKernelManager.limits_json = json.dumps(limits.__dict__)
    begin = time.monotonic()
    control = RunControl(
        deadline=begin + call.protocol.time_limit_s,
        start_meter=(lambda: _start_meter(meter)) if metered else None,
        unmeasured="the kernel did not start" if metered else "metering turned off",
        slot=slot,
    )
    raised: BaseException | None = None
    output = run_dir / EXECUTED_NOTEBOOK
    with (run_dir / OUTPUT_LOG).open("w", encoding="utf-8") as log_file, control.watchdog():
        try:
            papermill.execute_notebook(
                str(run_dir / INPUT_NOTEBOOK),
                str(output),
                parameters=sub.parameters,
                engine_name="workbench",
                kernel_name=kernel_name,
                progress_bar=False,
                log_output=True,
                stdout_file=log_file,
                stderr_file=log_file,
                # The kernel's working folder; not papermill's `cwd`, which chdirs this process.
                resources={"metadata": {"path": str(run_dir)}},
                control=control,
                config=config,
            )
        except Exception as exc:  # every way a notebook can end is classified below
            raised = exc
    duration = time.monotonic() - begin - control.waited
    nb = team_nb = None
    with contextlib.suppress(Exception):
        nb = nbformat.read(output, as_version=4)
    with contextlib.suppress(Exception):
        team_nb = nbformat.read(run_dir / INPUT_NOTEBOOK, as_version=4)
    records = read_records(nb) if nb is not None else {}
    metrics = numeric_metrics(records)
    score = _score(metrics, records)
    if score is not None and math.isfinite(score.gain_vs_baseline):
        metrics["gain_vs_baseline"] = score.gain_vs_baseline
    energy = summarise(
        control.meter,
        call.protocol,
        metrics=metrics,
        gain_vs_baseline=score.gain_vs_baseline if score else None,
        unavailable=control.unmeasured,
    )
    status, error, message = _classify(nb, team_nb, raised, control, call.required_metrics, metrics)
    record = record.model_copy(
        update={
            "status": status,
            "error": error,
            "message": message,
            "metrics": metrics,
            "score": score,
            "energy": energy,
            "records": {k: v for k, v in records.items() if v["kind"] != "number"},
            "finished_at": dt.datetime.now(dt.UTC),
            "duration_s": round(duration, 3),
            "cells": sorted(control.cells, key=lambda c: c.start),
            "flags": [OUTPUT_TRUNCATED] if control.output.truncated else [],
        }
    )
    (run_dir / RECORD_FILE).write_text(record.model_dump_json(indent=2), encoding="utf-8")
    return record
