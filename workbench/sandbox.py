"""Isolation levels for the kernel that runs a submission: a registry, like papermill's engines.

    none      the kernel runs as the user's own process (a team on its own laptop)
    process   no namespaces; resource limits and a scrubbed environment
    sandbox   bubblewrap namespaces on top of `process`, when available

Each level turns the kernel's command line into the one actually launched. The
limits themselves are applied by `workbench.launcher`, which runs first inside the
kernel's process and then replaces itself with the kernel.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from workbench.errors import NotFoundError, SandboxError

# Variables a kernel may inherit; everything else (tokens, WORKBENCH_DB...) is dropped.
ENV_ALLOWLIST = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "JPY_PARENT_PID",
    "PYTHONHASHSEED",
)


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to the kernel and everything it starts."""

    memory_mb: int
    file_size_mb: int = 1024
    processes: int = 4096  # counts threads too, per user: keep room for BLAS pools


class Isolation:
    """Base class: `kernel_command` wraps the kernel's command line for this level."""

    name: ClassVar[str]

    def check(self) -> None:
        """Raise `SandboxError` when this level cannot be provided here."""

    def kernel_command(self, cmd: list[str], run_dir: Path, limits: Limits) -> list[str]:
        raise NotImplementedError


KERNEL_LOG = "kernel.log"


def launcher_command(cmd: list[str], run_dir: Path, *options: str) -> list[str]:
    """`cmd` started through `workbench.launcher`, its own output kept in the run folder."""
    log = f"--log={run_dir / KERNEL_LOG}"
    return [sys.executable, "-m", "workbench.launcher", log, *options, "--", *cmd]


class NoIsolation(Isolation):
    name = "none"

    def kernel_command(self, cmd: list[str], run_dir: Path, limits: Limits) -> list[str]:
        return launcher_command(cmd, run_dir)


class ProcessIsolation(Isolation):
    name = "process"

    def kernel_command(self, cmd: list[str], run_dir: Path, limits: Limits) -> list[str]:
        return launcher_command(
            cmd,
            run_dir,
            f"--memory-mb={limits.memory_mb}",
            f"--file-size-mb={limits.file_size_mb}",
            f"--processes={limits.processes}",
            "--scrub-env",
        )


class BubblewrapIsolation(Isolation):
    name = "sandbox"

    def check(self) -> None:
        raise SandboxError(
            "isolation 'sandbox' (bubblewrap) is not available in this version of the workbench; "
            "nothing ran. Lower the level explicitly with --isolation process"
        )

    def kernel_command(self, cmd: list[str], run_dir: Path, limits: Limits) -> list[str]:
        self.check()
        return cmd


class IsolationRegistry:
    def __init__(self) -> None:
        self._levels: dict[str, type[Isolation]] = {}

    def register(self, cls: type[Isolation]) -> None:
        self._levels[cls.name] = cls

    def get(self, name: str) -> Isolation:
        try:
            return self._levels[name]()
        except KeyError:
            known = ", ".join(sorted(self._levels))
            raise NotFoundError(f"unknown isolation level {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._levels)


isolation_levels = IsolationRegistry()
isolation_levels.register(NoIsolation)
isolation_levels.register(ProcessIsolation)
isolation_levels.register(BubblewrapIsolation)
