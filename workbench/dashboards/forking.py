"""Dashboard kernels forked from a warm process: no import left for a juror's first page.

A dashboard kernel started anew imports IPython, ipywidgets, plotly, pandas, SQLAlchemy
and the pages (about 200 MB and a few seconds of CPU) before its first cell can run, so
jurors arriving together queued behind each other's start-ups. `workbench serve` starts
one kernel zygote (`workbench.runner.zygote`) that has done that work once, through
`pages.preload` (imports, compiled templates, a first figure; no store, no request),
and every dashboard kernel, the preheated pool's included, is a fork of it: it starts at
once and shares those pages copy-on-write with the others.

jupyter_server picks a kernel's provisioner through the kernel manager of each kernel:
`DashboardKernelManager` (the class `JuryKernelManager` makes its kernels with) gives
every kernel a `DashboardProvisioner`. A kernel command other than this interpreter's
`-m ipykernel_launcher`, or `WORKBENCH_FORK_KERNELS=0`, is started the ordinary way.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_client.provisioning import LocalProvisioner
from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

if TYPE_CHECKING:
    from jupyter_client.connect import KernelConnectionInfo

    from workbench.runner.zygote import Zygote

PRELOAD = ("workbench.dashboards.pages.auth:preload",)

_zygote: Zygote | None = None
_lock = threading.Lock()


def dashboard_zygote() -> Zygote:
    """This server's zygote of dashboard kernels, started on first use and if it died."""
    global _zygote
    from workbench.runner.zygote import Zygote

    with _lock:
        if _zygote is None or not _zygote.alive:
            _zygote = Zygote(preload=PRELOAD)
        return _zygote


def close_zygote() -> None:
    """Stop the zygote (its kernels die with it: they are shut down before)."""
    global _zygote
    with _lock:
        if _zygote is not None:
            _zygote.close()
            _zygote = None


def forkable(cmd: list[str]) -> bool:
    """Whether a kernel command is this interpreter's ipykernel, which the zygote runs."""
    from workbench.runner import zygote

    if not zygote.enabled() or cmd[1:3] != ["-m", zygote.KERNEL_MODULE]:
        return False
    try:
        return os.path.samefile(cmd[0], sys.executable)
    except OSError:
        return False


class DashboardProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, forking the kernel from the dashboard zygote."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        if not forkable(cmd):
            return await super().launch_kernel(cmd, **kwargs)
        # Without the server's PYTHON* variables: they change how an interpreter starts,
        # and the zygote started without them (it would exec a kernel anew, not fork one).
        env = {
            k: v for k, v in (kwargs.get("env") or os.environ).items() if not k.startswith("PYTHON")
        }
        cwd = str(kwargs.get("cwd") or Path.cwd())
        # The launcher's argument list with no limit set: the kernel command as it is.
        kernel: Any = dashboard_zygote().spawn(["--", *cmd], cwd, env)  # a Popen's stand-in
        self.process = kernel
        self.pid = self.pgid = kernel.pid  # the child leads its own session
        self.cwd = cwd
        return self.connection_info


class DashboardKernelManager(ServerKernelManager):
    """jupyter_server's kernel manager, with the forking provisioner."""

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        if self.provisioner is None:  # set once; a restart keeps it
            import uuid

            self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or str(uuid.uuid4())
            self.provisioner = DashboardProvisioner(
                kernel_id=self.kernel_id,
                kernel_spec=self.kernel_spec,
                parent=self,
            )
        return await super()._async_pre_start_kernel(**kw)
