"""Runs: one execution of a submission, and the record that describes it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.runner.metering import Energy

# `error` is the runner's own fault (a bug, an unreadable executed notebook): the team's
# notebook is not to blame, and the run says nothing about it. `abandoned`: its coordinator
# ended (killed) while it was `running`; the next batch marks it so and runs it again.
# `out_of_memory`: the run's cgroup hit its memory limit and the kernel's OOM killer ended
# one of its processes (the kernel or a child), which the team's notebook is to blame for.
Status = Literal[
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "kernel_died",
    "out_of_memory",
    "incomplete",
    "error",
    "abandoned",
]
FINAL_STATUSES: tuple[Status, ...] = (
    "succeeded",
    "failed",
    "timed_out",
    "kernel_died",
    "out_of_memory",
    "incomplete",
    "error",
    "abandoned",
)
# Final statuses that say how the team's notebook ran: a batch does not run again an
# input that has one. An `error` or `abandoned` run is run again by the next batch.
SETTLED_STATUSES: tuple[Status, ...] = tuple(
    s for s in FINAL_STATUSES if s not in ("error", "abandoned")
)


def coordinator_id() -> str:
    """This process, as a run's coordinator: `host/pid/start time`, so a reused pid is not it."""
    import os
    import socket

    import psutil

    started = psutil.Process().create_time()
    return f"{socket.gethostname()}/{os.getpid()}/{started:.2f}"


def coordinator_gone(coordinator: str | None) -> bool:
    """True only for a coordinator of this machine whose process has ended.

    Another machine's coordinator, or a record that names none (older runs), is never
    taken for gone: its runs may still be live, and only their own machine can tell.
    """
    import socket

    import psutil

    host, _, rest = (coordinator or "").partition("/")
    pid, _, started = rest.partition("/")
    if not coordinator or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" != started
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # exists but cannot be read: alive as far as we can tell
        return False


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable by start time, unique without coordination: `20261126T101500-3f9a1c`."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"


def canonical_sha256(value: Any) -> str:
    """sha256 of a JSON value with sorted keys, so equal values hash equally."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class KernelEnvironment(BaseModel):
    """The call's environment a kernel starts from: its interpreter, and its lock's hash."""

    model_config = ConfigDict(frozen=True)

    interpreter: str
    lock_sha256: str


class Fingerprint(BaseModel):
    """What a run depends on. `input_sha256` alone decides whether two runs ran the same input."""

    model_config = ConfigDict(frozen=True)

    notebook_sha256: str
    parameters_sha256: str
    data_sha256: dict[str, str] = Field(default_factory=dict)
    python: str
    packages_sha256: str
    kernel: str
    # The lock hash of the call's environment; None: the workbench's own environment.
    environment_sha256: str | None = None

    @property
    def input_sha256(self) -> str:
        """Notebook, parameters, data and, when the call has one, its environment's lock."""
        parts: list[Any] = [
            self.notebook_sha256,
            self.parameters_sha256,
            sorted(self.data_sha256.items()),
        ]
        if self.environment_sha256 is not None:  # older runs keep their hash
            parts.append(self.environment_sha256)
        return canonical_sha256(parts)

    @property
    def digest(self) -> str:
        return canonical_sha256(self.model_dump(exclude_none=True))


class RunError(BaseModel):
    """Where and why a notebook stopped."""

    cell_index: int | None = None
    ename: str
    evalue: str = ""


class CellTiming(BaseModel):
    """When one code cell ran, and which phase its tags put it in (times are epoch seconds)."""

    index: int
    phase: str
    start: float
    end: float


class Containment(BaseModel):
    """The limits a run ran under, and whether they held for the run or per process."""

    cgroup: Literal["v1", "v2"] | None = Field(
        description="the run's own cgroup (its version), or None: limits per process only"
    )
    reason: str | None = Field(default=None, description="why the run had no cgroup")
    memory_mb: int
    pids: int | None = None
    cpus: float | None = None
    tmp_size_mb: int | None = None
    file_size_mb: int
    disk_mb: int | None = None
    time_limit_s: float


class RunScore(BaseModel):
    """The primary metric recomputed by the workbench from the recorded predictions."""

    metric: str
    direction: Literal["lower", "higher"]
    ai: float
    baseline: float
    gain_vs_baseline: float
    disagrees: bool = Field(description="the notebook reported different numbers")


class RunRecord(BaseModel):
    """Everything known about a run. Produced by `execute`, written by the store."""

    run_id: str
    submission: str
    call: str
    status: Status
    error: RunError | None = None
    message: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    records: dict[str, dict[str, Any]] = Field(default_factory=dict)
    score: RunScore | None = None
    energy: Energy | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    duration_s: float | None = None
    fingerprint: Fingerprint
    isolation: str
    notebook: str
    run_dir: str
    cells: list[CellTiming] = Field(default_factory=list)
    flags: list[str] = Field(
        default_factory=list, description="what the runner noticed, e.g. `output_truncated`"
    )
    skipped_files: dict[str, str] = Field(
        default_factory=dict,
        description="run folder entries not copied back (a link, a device, too large), and why",
    )
    coordinator: str | None = Field(
        default=None, description="the process that stored it `running` (`coordinator_id`)"
    )
    containment: Containment | None = None

    def summary(self) -> dict[str, Any]:
        """The JSON face of a run: `workbench run --json` prints this."""
        data = self.model_dump(mode="json", exclude={"records", "cells"})
        data["fingerprint"] = {
            **self.fingerprint.model_dump(),
            "input_sha256": self.fingerprint.input_sha256,
            "digest": self.fingerprint.digest,
        }
        return data
