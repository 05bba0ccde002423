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
import shutil
import sys
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ExecutionError, InvalidError, Problem
from workbench.runner.control import OutputBudget, RunControl
from workbench.runner.records import (
    Fingerprint,
    KernelEnvironment,
    RunRecord,
    RunScore,
    canonical_sha256,
    new_run_id,
)

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.runner.metering import Meter, RunMeter
    from workbench.runner.outcome import Outcome
    from workbench.submissions import Submission

__all__ = [
    "OUTPUT_TRUNCATED",
    "PHASES_UNTAGGED",
    "RECORD_FILE",
    "OutputBudget",
    "RunControl",
    "execute_submission",
]

log = logging.getLogger(__name__)

EXECUTED_NOTEBOOK = "notebook.ipynb"
INPUT_NOTEBOOK = "input.ipynb"
OUTPUT_LOG = "output.log"
RECORD_FILE = "run.json"
OUTPUT_TRUNCATED = "output_truncated"  # a run flag
# A run flag: no code cell of the notebook carries a phase tag, so its AI, baseline and
# per-prediction energy cannot be known.
PHASES_UNTAGGED = "phases_untagged"


@lru_cache(maxsize=1)
def packages_sha256() -> str:
    """A hash of every installed distribution and its version (once per process)."""
    from importlib.metadata import distributions

    pairs = sorted({(d.metadata["Name"] or "").lower(): d.version for d in distributions()}.items())
    return canonical_sha256(pairs)


def fingerprint(
    notebook: Path,
    parameters: dict[str, Any],
    data: dict[str, str],
    kernel: str,
    environment: KernelEnvironment | None = None,
) -> Fingerprint:
    from workbench.submissions import sha256_file

    return Fingerprint(
        notebook_sha256=sha256_file(notebook),
        parameters_sha256=canonical_sha256(parameters),
        data_sha256=dict(sorted(data.items())),
        python=".".join(str(v) for v in sys.version_info[:3]),
        packages_sha256=packages_sha256(),
        kernel=kernel,
        environment_sha256=environment.lock_sha256 if environment is not None else None,
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

    from workbench.recording import predictions_disagree
    from workbench.scoring import score_run

    metrics.pop("gain_vs_baseline", None)
    score = score_run(metrics, records)
    if score is None:
        return None
    # A declared n_predictions other than the table's rows is flagged as a disagreeing metric.
    disagrees = score.disagrees or predictions_disagree(records)
    return RunScore(**{**dataclasses.asdict(score), "disagrees": disagrees})


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
    environment: KernelEnvironment | None = None,
) -> RunRecord:
    """Execute one submission in a new run folder and return its record.

    `on_start` receives the record in `running` state before the kernel starts, so a
    caller can store it and a crash mid-run never looks finished. With a `slot`, the
    kernel starts at once and the cells wait for the slot (see `RunControl`). With an
    `environment` (the call's, built), the kernel starts from its interpreter.
    """
    import json

    import papermill

    from workbench.runner.isolation import isolation_levels

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
        fingerprint=fingerprint(
            run_dir / INPUT_NOTEBOOK, sub.parameters, data_hashes, kernel_name, environment
        ),
        isolation=level.name,
        notebook=str(run_dir / EXECUTED_NOTEBOOK),
        run_dir=str(run_dir),
    )
    if on_start is not None:
        on_start(record)

    from traitlets.config import Config

    from workbench.runner import engine

    engine.register()
    begin = time.monotonic()
    control = RunControl(
        deadline=begin + call.protocol.time_limit_s,
        start_meter=(lambda: _start_meter(meter)) if metered else None,
        unmeasured="the kernel did not start" if metered else "metering turned off",
        slot=slot,
    )
    # The run's own cgroup when it can have one; the watchdog removes it at the end.
    limits = control.contain(level, call.protocol, run_id, run_dir)
    config = Config()
    config.WorkbenchKernelManager.isolation_name = level.name
    config.WorkbenchKernelManager.run_dir = str(run_dir)
    config.WorkbenchKernelManager.limits_json = json.dumps(limits.__dict__)
    if environment is not None:
        config.WorkbenchKernelManager.interpreter = environment.interpreter
    raised: BaseException | None = None
    with (run_dir / OUTPUT_LOG).open("w", encoding="utf-8") as log_file, control.watchdog():
        try:
            papermill.execute_notebook(
                str(run_dir / INPUT_NOTEBOOK),
                str(run_dir / EXECUTED_NOTEBOOK),
                parameters=sub.parameters,
                engine_name=engine.ENGINE_NAME,
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
    outcome, collected = _conclude(run_dir, raised, control, call)
    record = record.model_copy(
        update={
            "status": outcome.status,
            "error": outcome.error,
            "message": outcome.message,
            **collected,
            "finished_at": dt.datetime.now(dt.UTC),
            "duration_s": round(duration, 3),
            "cells": sorted(control.cells, key=lambda c: c.start),
            "flags": _flags(run_dir, control),
            "containment": control.containment,
        }
    )
    (run_dir / RECORD_FILE).write_text(record.model_dump_json(indent=2), encoding="utf-8")
    return record


def _flags(run_dir: Path, control: RunControl) -> list[str]:
    """What the runner noticed about the run, for `RunRecord.flags`."""
    import nbformat

    from workbench.notebooks import has_phase_tags

    flags = [OUTPUT_TRUNCATED] if control.output.truncated else []
    try:
        untagged = not has_phase_tags(nbformat.read(run_dir / INPUT_NOTEBOOK, as_version=4))
    except Exception:  # an unreadable notebook already makes the run a runner fault
        untagged = False
    if untagged:
        flags.append(PHASES_UNTAGGED)
    return flags


def _conclude(
    run_dir: Path, raised: BaseException | None, control: RunControl, call: Call
) -> tuple[Outcome, dict[str, Any]]:
    """The run's outcome and what it recorded (metrics, records, score, energy).

    A runner fault, including an executed notebook that cannot be read, gives the
    status `error`: never a team's status, and never `succeeded`.
    """
    import nbformat

    from workbench.recording import numeric_metrics, read_records
    from workbench.runner import outcome as outcomes
    from workbench.runner.metering import summarise

    log_path = run_dir / OUTPUT_LOG
    fault = None
    if raised is not None and not control.timed_out and outcomes.is_runner_fault(raised):
        fault = outcomes.runner_fault(raised, log_path)
    nb = team_nb = None
    collected: dict[str, Any] = {}
    try:
        nb = nbformat.read(run_dir / EXECUTED_NOTEBOOK, as_version=4)
    except Exception as exc:  # missing, truncated, not JSON, not a notebook
        fault = fault or outcomes.runner_fault(
            exc, log_path, " (the executed notebook is unreadable)"
        )
    with contextlib.suppress(Exception):  # only needed to name the team's cell indices
        team_nb = nbformat.read(run_dir / INPUT_NOTEBOOK, as_version=4)
    try:
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
            phases_ran=control.phases_ran,
        )
        collected = {
            "metrics": metrics,
            "score": score,
            "energy": energy,
            "records": {k: v for k, v in records.items() if v["kind"] != "number"},
        }
        if fault is None and nb is not None:
            return outcomes.classify(
                nb, team_nb, raised, control, call.required_metrics, metrics
            ), collected
    except Exception as exc:
        fault = fault or outcomes.runner_fault(exc, log_path)
    assert fault is not None
    log.error("run %s: %s", run_dir.name, fault)
    return outcomes.fault_outcome(fault), collected
