"""The workbench's papermill engine: nbclient with the run's hooks, budget and kernel manager.

Imports papermill, nbclient and jupyter_client at module level: `execute` imports this
module only when it runs a notebook, and `register()` adds the engine to papermill's
engine registry as `workbench`.
"""

from __future__ import annotations

import logging
import math
import uuid
from pathlib import Path
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from traitlets import List, Unicode

from workbench.runner.control import OutputBudget, RunControl, cut_error, output_size

ENGINE_NAME = "workbench"
KERNEL_START_TIMEOUT_S = 60.0


class ZygoteProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, launching through the zygote when it can."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        from workbench.runner import zygote

        level = getattr(self.parent, "isolation", None)
        request = zygote.fork_request(cmd, kwargs, getattr(level, "fork", None))
        if request is None:
            return await super().launch_kernel(cmd, **kwargs)
        # One zygote per interpreter: a call's environment's (`python`) gets its own.
        # The forked kernel stands in for a Popen.
        kernel: Any = zygote.shared_zygote(request.pop("python", None)).spawn(**request)
        self.process = kernel
        # The child leads its own session (in a sandbox, the kernel inside is its child).
        self.pid = self.pgid = kernel.pid
        self.cwd = request["cwd"]
        return self.connection_info


def _checked_url(owner: Any, url: str) -> str:
    """`url`, once the isolation level has checked that an IPC path is the kernel's socket.

    Every connection to the kernel (the client's channels, the manager's control socket)
    is made from a URL built here; the path is `lstat`ed, never followed.
    """
    if owner.transport == "ipc":
        owner.isolation.check_socket(url.removeprefix("ipc://"))
    return url


class _Unchecked:
    """A client made by hand, without the workbench's manager: nothing to check against."""

    @staticmethod
    def check_socket(path: str) -> None:
        return None


_UNCHECKED = _Unchecked()


class WorkbenchKernelClient(AsyncKernelClient):
    """jupyter_client's client, checking each socket path before it connects."""

    @property
    def isolation(self) -> Any:
        return getattr(self.parent, "isolation", None) or _UNCHECKED

    def _make_url(self, channel: str) -> str:
        return _checked_url(self, super()._make_url(channel))


class WorkbenchKernelManager(AsyncKernelManager):
    """A kernel started through the run's isolation level (and the zygote when it can)."""

    command_prefix = List(Unicode(), default_value=[]).tag(config=True)
    isolation_name = Unicode("none").tag(config=True)
    run_dir = Unicode("").tag(config=True)
    limits_json = Unicode("{}").tag(config=True)
    # The call's environment's interpreter; empty: this one (the workbench's own).
    interpreter = Unicode("").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        from workbench.runner import zygote
        from workbench.runner.isolation import isolation_levels

        super().__init__(**kwargs)
        self.client_factory = WorkbenchKernelClient  # checks each socket before connecting
        # One level instance per kernel: it may hold what it set up until `cleanup`.
        self.isolation = isolation_levels.get(self.isolation_name)
        # The level picks the transport: a sandboxed kernel has no shared loopback, so
        # it is reached over Unix sockets. Set before the connection file is written.
        for name, value in self.isolation.connection(Path(self.run_dir)).items():
            setattr(self, name, value)
        if zygote.enabled():
            # Forked from a process that has imported the kernel already (zygote.py).
            self.kernel_id = self.kernel_id or str(uuid.uuid4())
            self.provisioner = ZygoteProvisioner(
                kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
            )

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        import json

        from workbench.runner import zygote
        from workbench.runner.isolation import Limits

        cmd = super().format_kernel_cmd(extra_arguments)
        if cmd[1:3] == ["-m", zygote.KERNEL_MODULE]:
            if self.interpreter:
                cmd[0] = self.interpreter
            # No IPython history database: a run needs none, and outside the sandbox
            # it would be one file shared by every submission's kernel.
            cmd.append("--HistoryManager.enabled=False")
        limits = Limits(**json.loads(self.limits_json))
        return self.isolation.kernel_command(cmd, Path(self.run_dir), limits)

    def _make_url(self, channel: str) -> str:
        return _checked_url(self, super()._make_url(channel))

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
        # The kernel answered: its sockets are bound, and no cell has run yet.
        self.km.isolation.sockets_bound()
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
            cut = cut_error(content)
            if cut:
                budget.discarded["rich"] += cut
            return super().output(outs, msg, display_id, cell_index)
        size = output_size(content)
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
            on_cell_error=control.cell_error,
            # The watchdog kills the whole tree afterwards: no graceful shutdown to wait for.
            shutdown_kernel="immediate",
            log=logging.getLogger("papermill"),
            **kwargs,
        )
        client.control = control
        return client.execute()


def register() -> None:
    """Make the engine known to papermill as `workbench` (once per process)."""
    if ENGINE_NAME not in papermill_engines._engines:
        papermill_engines.register(ENGINE_NAME, WorkbenchEngine)
