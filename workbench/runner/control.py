"""What the runner keeps in hand while a notebook runs: its clock, its kernel, its output.

`RunControl` is shared between `execute` and the papermill engine (`engine`): the cells'
timings and phases, the kernel's pid, the batch slot, the meter, the whole-run watchdog
and the output budget. Nothing here imports papermill or nbclient at module level.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.runner.records import CellTiming, Containment

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.calls import Protocol
    from workbench.runner.cgroups import RunCgroup
    from workbench.runner.isolation import Isolation, Limits
    from workbench.runner.metering import RunMeter

MB = 1024 * 1024
DISK_CHECK_S = 1.0  # how often the watchdog measures what a run wrote in its folder
ERROR_TEXT_MAX = 100_000  # characters of an error's message, and of its traceback


def kill_tree(pid: int) -> None:
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


def folder_bytes(folder: Path) -> int:
    """Disk space used by the files under `folder` (links not followed, each inode once)."""
    total, seen, stack = 0, set(), [str(folder)]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif (info.st_dev, info.st_ino) not in seen:
                        seen.add((info.st_dev, info.st_ino))
                        total += info.st_blocks * 512
    return total


def output_size(content: dict[str, Any]) -> int:
    """Characters an output adds to the notebook: its text, data bundle or traceback."""
    if "text" in content:
        return len(content["text"])
    size = sum(len(str(value)) for value in (content.get("data") or {}).values())
    return size + sum(len(line) for line in content.get("traceback") or [])


def cut_error(content: dict[str, Any]) -> int:
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
    # The phases that had a cell start: a figure needing a phase not in here is unknown.
    phases_ran: set[str] = field(default_factory=set)
    # The run's own cgroup (runner.cgroups), removed with everything in it at the end.
    cgroup: RunCgroup | None = None
    containment: Containment | None = None
    out_of_memory: bool = False
    run_dir: Path | None = None
    disk_limit_mb: int | None = None
    disk_exceeded: bool = False
    _started: dict[int, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def contain(self, level: Isolation, protocol: Protocol, name: str, run_dir: Path) -> Limits:
        """The kernel's limits; at a contained level, in a new cgroup of its own when possible.

        Without cgroups (not root, read-only cgroupfs) the limits stay per process and the
        record says why (`containment.reason`). The folder's size is watched either way.
        """
        from workbench.runner import cgroups
        from workbench.runner.isolation import Limits

        limits = Limits(memory_mb=protocol.memory_limit_mb, tmp_size_mb=protocol.tmp_size_mb)
        reason = None
        if level.contained:
            wanted = cgroups.CgroupLimits(
                memory_mb=protocol.memory_limit_mb,
                pids=protocol.pids_limit,
                cpus=protocol.cpu_limit,
            )
            try:
                self.cgroup = cgroups.machine_cgroups().create(f"run-{name}", wanted)
            except cgroups.CgroupsUnavailable as exc:
                reason = str(exc)
        if self.cgroup is not None:
            limits = Limits(
                memory_mb=limits.memory_mb,
                tmp_size_mb=limits.tmp_size_mb,
                cgroup=self.cgroup.procs_files,
            )
        elif not level.contained:
            reason = f"isolation {level.name!r} applies no limits"
        self.run_dir, self.disk_limit_mb = run_dir, protocol.disk_limit_mb
        self.containment = Containment(
            cgroup=self.cgroup.version if self.cgroup is not None else None,
            reason=reason,
            memory_mb=protocol.memory_limit_mb,
            pids=protocol.pids_limit if self.cgroup is not None else None,
            cpus=protocol.cpu_limit if self.cgroup is not None else None,
            tmp_size_mb=protocol.tmp_size_mb if level.name == "sandbox" else None,
            file_size_mb=limits.file_size_mb,
            disk_mb=protocol.disk_limit_mb,
            time_limit_s=protocol.time_limit_s,
        )
        return limits

    def _release(self) -> None:
        """Kill everything left in the run's cgroup, note an OOM kill, remove the cgroup."""
        if self.cgroup is None:
            return
        with contextlib.suppress(OSError):
            self.cgroup.kill()
        self.out_of_memory = self.out_of_memory or self.cgroup.oom_kills() > 0
        self.cgroup.remove()

    def _over_disk(self) -> bool:
        if self.run_dir is None or not self.disk_limit_mb:
            return False
        return folder_bytes(self.run_dir) > self.disk_limit_mb * MB

    def remaining(self, cell: Any = None) -> int:
        """Whole seconds left before the deadline (nbclient's timeouts are integers)."""
        return max(1, math.ceil(self.deadline - time.monotonic()))

    def cell_executing(self, cell: Any, cell_index: int, client: Any) -> None:
        """A cell starts: the meter charges its phases (split evenly when it has several).

        Its `CellTiming.phase` is its first phase, as in records written before a cell
        could count in several.
        """
        from workbench.notebooks import cell_phases

        if self.kernel_pid is None:
            self.kernel_pid = client.km.provisioner.process.pid
            if self.meter is not None:
                self.meter.attach(self.kernel_pid, self.cgroup)
        phases = cell_phases(cell)
        self.phases_ran.update(phases)
        if self.meter is not None:
            self.meter.enter_phase(phases)
        self._started[cell_index] = (phases[0], time.time())

    def cell_complete(self, cell: Any, cell_index: int, **_: Any) -> None:
        if self.meter is not None:
            self.meter.sample()
        started = self._started.pop(cell_index, None)
        if started is not None:
            phase, start = started
            self.cells.append(
                CellTiming(index=cell_index, phase=phase, start=start, end=time.time())
            )

    @staticmethod
    def cell_error(cell: Any, cell_index: int, execute_reply: dict[str, Any], **_: Any) -> None:
        """Keep the kernel's error in the cell, also when the kernel sent no error output.

        IPython reports some errors only in its reply and on stderr (a `UsageError`, such
        as an unknown magic): the cell then gets an error output made from the reply, so
        the executed notebook says what the kernel said, and the run is classified from it.
        """
        from nbformat.v4 import new_output

        content = execute_reply.get("content", {})
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return
        error = {
            "ename": str(content.get("ename") or "Error"),
            "evalue": str(content.get("evalue") or ""),
            "traceback": [str(line) for line in content.get("traceback") or []],
        }
        cut_error(error)
        cell.setdefault("outputs", []).append(new_output("error", **error))

    def close_cells(self) -> None:
        """A cell cut short (killed, timed out, kernel died) ends when the run does."""
        for cell_index in sorted(self._started):
            self.cell_complete(None, cell_index)

    def kill(self) -> None:
        with self._lock:
            if self.kernel_pid is not None:
                kill_tree(self.kernel_pid)
            if self.cgroup is not None:
                self.cgroup.kill()  # daemons that left the tree, forks racing the kill

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
            # It also measures the run folder every DISK_CHECK_S (a quota on all its files).
            def pause() -> float:
                left = max(0.0, self.deadline - time.monotonic())
                return min(left, DISK_CHECK_S) if self.disk_limit_mb else left

            while not done.wait(pause()):
                if self._over_disk():
                    self.disk_exceeded = True
                    self.kill()
                    return
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
            self._release()
