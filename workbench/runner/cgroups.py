"""One cgroup per run: its memory (tmpfs and page cache included), processes and CPU.

Per-process limits (`RLIMIT_AS`, `RLIMIT_NPROC`) do not bound a run: four children each
under the address-space limit add up past it, and the process cap is per user, shared by
every sandboxed run. A cgroup holds the kernel and everything it forks, whatever user
it becomes and wherever it is reparented, so the run gets one memory limit, one process
limit, one CPU counter (children reaped between meter samples included) and one list of
processes to kill at the end (double-forked daemons included).

Both kernel interfaces are supported, detected at run time:

    v2  one hierarchy (`/sys/fs/cgroup` with `memory` and `pids` in cgroup.controllers):
        the run is `<root>/workbench/<run>`; memory.max, memory.swap.max, pids.max,
        cpu.max; cpu.stat usage_usec; memory.events oom_kill; cgroup.kill
    v1  one hierarchy per controller (`/sys/fs/cgroup/memory`, `pids`, `cpuacct` or
        `cpu,cpuacct`, `freezer`): the run is `<own cgroup>/workbench/<run>` in each;
        memory.limit_in_bytes (and memsw), pids.max, cpu.cfs_quota_us; cpuacct.usage;
        memory.oom_control oom_kill; killed while frozen when the freezer is there

`WORKBENCH_CGROUP_ROOT` names another cgroupfs root (a delegated subtree, or a fake tree in
the tests). The kernel joins its cgroup itself before anything of the notebook runs
(`join`, called by the launcher or the zygote's child), so nothing escapes by forking
early. This module is imported by the launcher at every kernel start: standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT_ENV = "WORKBENCH_CGROUP_ROOT"
DEFAULT_ROOT = "/sys/fs/cgroup"
PARENT = "workbench"  # every run's cgroup lives under this one
MB = 1024 * 1024
CPU_PERIOD_US = 100_000
KILL_TIMEOUT_S = 5.0
# v1 mount folders of the CPU accounting controller, alone or co-mounted with `cpu`.
V1_CPUACCT = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
V1_CPU = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


class CgroupsUnavailable(Exception):
    """Runs cannot get a cgroup here; the message says why. Limits stay per process."""


@dataclass(frozen=True)
class CgroupLimits:
    memory_mb: int
    pids: int
    cpus: float | None = None  # cores' worth of CPU time; None: no quota


def join(procs_files: list[str] | tuple[str, ...], pid: int = 0) -> None:
    """Move `pid` (0: this process) into a run's cgroup: each of its `cgroup.procs` files."""
    for path in procs_files:
        with open(path, "w", encoding="ascii") as handle:
            handle.write(str(pid or os.getpid()))


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)


def _read(path: Path) -> str:
    with open(path, encoding="ascii") as handle:
        return handle.read()


def _keyed(path: Path, key: str) -> int | None:
    """The value of `key` in a flat-keyed cgroup file (`oom_kill 3`), or None."""
    try:
        text = _read(path)
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return None


def _own_paths(self_cgroup: Path) -> dict[str, str]:
    """This process's cgroup per v1 controller (and "" for v2), from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in _read(self_cgroup).splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(","):
                paths[controller] = path
    return paths


class RunCgroup:
    """One run's cgroup: one folder (v2) or one per controller (v1)."""

    def __init__(self, version: str, dirs: dict[str, Path]) -> None:
        self.version = version
        self.dirs = dirs  # controller (or "unified") -> folder
        self._removed = False

    @property
    def procs_files(self) -> tuple[str, ...]:
        """What the kernel writes its pid into to join (`join`)."""
        return tuple(str(d / "cgroup.procs") for d in self._folders())

    def _folders(self) -> list[Path]:
        return list(dict.fromkeys(self.dirs.values()))

    def _main(self) -> Path:
        return self.dirs.get("unified") or self.dirs.get("pids") or next(iter(self.dirs.values()))

    def pids(self) -> set[int]:
        try:
            text = _read(self._main() / "cgroup.procs")
        except OSError:
            return set()
        return {int(line) for line in text.split() if line.isdigit()}

    def cpu_seconds(self) -> float | None:
        """CPU time of everything that ran in the cgroup, ended processes included."""
        if self.version == "v2":
            usec = _keyed(self.dirs["unified"] / "cpu.stat", "usage_usec")
            return None if usec is None else usec / 1e6
        folder = self.dirs.get("cpuacct")
        if folder is None:
            return None
        try:
            return int(_read(folder / "cpuacct.usage").strip()) / 1e9
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this cgroup."""
        if self.version == "v2":
            return _keyed(self.dirs["unified"] / "memory.events", "oom_kill") or 0
        folder = self.dirs["memory"]
        kills = _keyed(folder / "memory.oom_control", "oom_kill")
        if kills is not None:
            return kills
        # Kernels before 4.13 do not count OOM kills: the limit having been reached is the
        # nearest sign (it also counts reclaimed page cache, so only as a fallback).
        with contextlib.suppress(OSError, ValueError):
            return int(_read(folder / "memory.failcnt").strip())
        return 0

    def kill(self) -> None:
        """SIGKILL every process of the cgroup, forks racing the kill included."""
        if self.version == "v2" and (self.dirs["unified"] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(self.dirs["unified"] / "cgroup.kill", "1")
        freezer = self.dirs.get("freezer")
        frozen = freezer is not None and self._set_frozen(freezer, True)
        deadline = time.monotonic() + KILL_TIMEOUT_S
        try:
            while True:
                victims = self.pids()
                if not victims or time.monotonic() > deadline:
                    return
                for pid in victims:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                if frozen and freezer is not None:
                    # Frozen processes cannot fork: one pass got them all; they die on thaw.
                    self._set_frozen(freezer, False)
                    frozen = False
                time.sleep(0.01)
        finally:
            if frozen and freezer is not None:
                self._set_frozen(freezer, False)

    @staticmethod
    def _set_frozen(folder: Path, frozen: bool) -> bool:
        state = "FROZEN" if frozen else "THAWED"
        try:
            _write(folder / "freezer.state", state)
            for _ in range(200):
                if _read(folder / "freezer.state").strip() == state:
                    return True
                time.sleep(0.005)
        except OSError:
            pass
        return False

    def remove(self) -> None:
        """Kill what is left, then remove the cgroup's folders (once)."""
        if self._removed:
            return
        self.kill()
        self._removed = True
        for folder in self._folders():
            deadline = time.monotonic() + KILL_TIMEOUT_S
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:  # EBUSY while the last processes exit
                    if exc.errno != 16 or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)


class Cgroups:
    """Where this machine's run cgroups are made, and how (`version`)."""

    def __init__(self, version: str, bases: dict[str, Path]) -> None:
        self.version = version
        self.bases = bases  # controller (or "unified") -> the `workbench` parent folder

    def create(self, name: str, limits: CgroupLimits) -> RunCgroup:
        """A new cgroup for one run, its limits written, no process in it yet."""
        dirs: dict[str, Path] = {}
        group = RunCgroup(self.version, dirs)
        try:
            for controller, base in self.bases.items():
                folder = base / name
                if folder not in dirs.values():  # co-mounted controllers share one
                    folder.mkdir()
                dirs[controller] = folder
            if self.version == "v2":
                self._limit_v2(dirs["unified"], limits)
            else:
                self._limit_v1(dirs, limits)
        except OSError as exc:
            group.remove()
            raise CgroupsUnavailable(f"cannot create the run's cgroup {name}: {exc}") from exc
        return group

    @staticmethod
    def _limit_v2(folder: Path, limits: CgroupLimits) -> None:
        _write(folder / "memory.max", str(limits.memory_mb * MB))
        if (folder / "memory.swap.max").exists():
            _write(folder / "memory.swap.max", "0")
        _write(folder / "pids.max", str(limits.pids))
        if limits.cpus is not None:
            _write(folder / "cpu.max", f"{round(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")

    @staticmethod
    def _limit_v1(dirs: dict[str, Path], limits: CgroupLimits) -> None:
        memory = dirs["memory"]
        _write(memory / "memory.limit_in_bytes", str(limits.memory_mb * MB))
        if (memory / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
            with contextlib.suppress(OSError):
                _write(memory / "memory.memsw.limit_in_bytes", str(limits.memory_mb * MB))
        _write(dirs["pids"] / "pids.max", str(limits.pids))
        if limits.cpus is not None and "cpu" in dirs:
            _write(dirs["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(dirs["cpu"] / "cpu.cfs_quota_us", str(round(limits.cpus * CPU_PERIOD_US)))


def _v2(root: Path) -> Cgroups:
    controllers = _read(root / "cgroup.controllers").split()
    missing = [c for c in ("memory", "pids") if c not in controllers]
    if missing:
        raise CgroupsUnavailable(f"cgroup v2 at {root} lacks the {', '.join(missing)} controller")
    wanted = " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in controllers)
    base = root / PARENT
    try:
        # Children get the controllers only if every ancestor hands them down.
        _write(root / "cgroup.subtree_control", wanted)
        base.mkdir(exist_ok=True)
        _write(base / "cgroup.subtree_control", wanted)
    except OSError as exc:
        raise CgroupsUnavailable(f"cannot set up cgroups under {root}: {exc}") from exc
    return Cgroups("v2", {"unified": base})


def _v1(root: Path, self_cgroup: Path) -> Cgroups:
    own = _own_paths(self_cgroup)

    def mount(names: tuple[str, ...]) -> Path | None:
        return next((root / n for n in names if (root / n / "cgroup.procs").exists()), None)

    found = {
        "memory": mount(("memory",)),
        "pids": mount(("pids",)),
        "cpuacct": mount(V1_CPUACCT),
        "cpu": mount(V1_CPU),
        "freezer": mount(("freezer",)),
    }
    for needed in ("memory", "pids"):
        if found[needed] is None:
            raise CgroupsUnavailable(f"no cgroup {needed} controller under {root}")
    bases: dict[str, Path] = {}
    for controller, folder in found.items():
        if folder is None or (controller == "cpu" and folder == found["cpuacct"]):
            continue  # co-mounted: one folder serves both
        # Under this process's own cgroup: whatever bounds the runner bounds its runs too.
        base = folder / own.get(controller, "/").lstrip("/") / PARENT
        try:
            base.mkdir(exist_ok=True)
        except OSError as exc:
            raise CgroupsUnavailable(f"cannot create cgroups under {folder}: {exc}") from exc
        bases[controller] = base
    if "cpu" not in bases and found["cpu"] is not None and found["cpu"] == found["cpuacct"]:
        bases["cpu"] = bases["cpuacct"]
    return Cgroups("v1", bases)


def detect(root: Path | None = None, self_cgroup: Path = Path("/proc/self/cgroup")) -> Cgroups:
    """This machine's cgroups for runs, or `CgroupsUnavailable` with the reason."""
    root = root or Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)
    if not root.is_dir():
        raise CgroupsUnavailable(f"no cgroup file system at {root}")
    try:
        if (root / "cgroup.controllers").exists():
            return _v2(root)
        return _v1(root, self_cgroup)
    except CgroupsUnavailable:
        raise
    except OSError as exc:
        raise CgroupsUnavailable(f"cannot read the cgroups at {root}: {exc}") from exc


_detected: dict[str, Cgroups | str] = {}
_lock = threading.Lock()


def machine_cgroups() -> Cgroups:
    """`detect()` once per process and cgroup root (cgroupfs does not come and go)."""
    key = os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    with _lock:
        if key not in _detected:
            try:
                _detected[key] = detect(Path(key))
            except CgroupsUnavailable as exc:
                _detected[key] = str(exc)
        found = _detected[key]
    if isinstance(found, str):
        raise CgroupsUnavailable(found)
    return found


def unavailable_reason() -> str | None:
    """Why runs get no cgroup here (their limits are then per process), or None."""
    try:
        machine_cgroups()
    except CgroupsUnavailable as exc:
        return str(exc)
    return None
