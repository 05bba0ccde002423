"""The dashboards' kernels: one per open page, gone soon after it closes, and a cap.

A juror's page keeps its kernel while they move between the ranking and the submissions
(the page redraws itself in it, `pages.view`), so kernels are counted per open page.

- **Closed pages.** jupyter_server counts the websocket connections of each kernel. A
  page kernel with none left (the tab was closed, the laptop went to sleep) is shut down
  `closed_timeout` seconds after its last connection or activity, whichever is later.
- **Idle pages.** Any page kernel, connected or not, goes after `cull_idle_timeout`
  seconds without activity (jupyter_server's culler, with `cull_connected` on).
- **The cap.** A page request is admitted only while the page kernels, the requests
  on their way to one and the preheated pool (at its full size, since it refills
  after each page) stay within `max_kernels`; past it the juror gets a 503 page asking
  to retry in a minute, and no kernel is started.

Voilà's pool kernels are never culled (Voilà skips them) and are not pages until a
request takes one (`get_rendered_notebook`); a kernel a request starts itself (no pool,
or the pool not filled yet) is a page from the start. The request being handled is known
through a context variable, set when it is admitted.
"""

from __future__ import annotations

import contextlib
import contextvars
from datetime import datetime, timedelta
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.web import HTTPError
from traitlets import Bool, Integer
from voila.app import Voila
from voila.static_file_handler import TemplateStaticFileHandler
from voila.tornado.handler import TornadoVoilaHandler

from workbench.dashboards.server import DEFAULT_CLOSED_TIMEOUT_S, DEFAULT_MAX_KERNELS

# How long stopping the server waits for its kernels to shut down (Ctrl-C, SIGTERM).
STOP_TIMEOUT_S = 15

# The admission of the request being handled, marked taken once it holds a kernel.
_admission: contextvars.ContextVar[dict[str, bool] | None] = contextvars.ContextVar(
    "workbench_admission", default=None
)


def _now() -> datetime:
    from jupyter_server._tz import utcnow

    return utcnow()


class JuryKernelManager(AsyncMappingKernelManager):
    """jupyter_server's kernel manager, counting page kernels and culling closed pages."""

    closed_timeout = Integer(
        DEFAULT_CLOSED_TIMEOUT_S,
        config=True,
        help="Seconds after which a page kernel without connections is shut down.",
    )
    max_kernels = Integer(
        DEFAULT_MAX_KERNELS, config=True, help="Most kernels alive, the preheated pool included."
    )
    pool_size = Integer(0, config=True, help="Size of Voilà's preheated pool (counted).")
    preheat = Bool(False, config=True, help="Whether Voilà preheats kernels.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._page_kernels: set[str] = set()
        self._closed_at: dict[str, datetime] = {}
        self._arriving = 0  # admitted requests that do not hold a kernel yet
        take = getattr(self, "get_rendered_notebook", None)
        if take is not None:  # Voilà's pool: a kernel becomes a page when a request takes it

            async def taken(*args: Any, **kw: Any) -> Any:
                result = await take(*args, **kw)
                self.arrived(result[2])
                return result

            self.get_rendered_notebook = taken

    # -- counting

    def page_kernels(self) -> int:
        """Kernels serving a page now (the pool's waiting kernels are not pages)."""
        self._page_kernels &= set(self.list_kernel_ids())
        return len(self._page_kernels)

    def admit(self) -> bool:
        """Reserve a place for one more page, if the cap allows it."""
        pool = self.pool_size if self.preheat else 0
        pages = self.page_kernels()
        if pages + self._arriving + 1 + pool > self.max_kernels:
            self.log.warning(
                "Page refused: %d page kernels, %d arriving, %d preheated, cap %d",
                *(pages, self._arriving, pool, self.max_kernels),
            )
            return False
        self._arriving += 1
        _admission.set({"taken": False})
        return True

    def arrived(self, kernel_id: str | None) -> None:
        """The request being handled holds its kernel now (None: it gave up)."""
        admission = _admission.get()
        if admission is not None and not admission["taken"]:
            admission["taken"] = True
            self._arriving = max(0, self._arriving - 1)
            if kernel_id is not None:
                self._page_kernels.add(kernel_id)

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        # Started by a request (no pool, or the pool not filled yet): a page's kernel. The
        # pool's own refills start after the request has its kernel, so they are not.
        kernel_id: str = await super().start_kernel(*args, **kwargs)
        self.arrived(kernel_id)
        return kernel_id

    async def shutdown_kernel(self, kernel_id: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        # Its place is free as the shutdown starts, not once the process is reaped.
        self._page_kernels.discard(kernel_id)
        self._closed_at.pop(kernel_id, None)
        await super().shutdown_kernel(kernel_id, *args, **kwargs)

    # -- connections and culling

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)
        self._closed_at.pop(kernel_id, None)

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)
        if self._kernel_connections.get(kernel_id) == 0:
            self._closed_at[kernel_id] = _now()

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        kernel = self._kernels.get(kernel_id)
        if (
            kernel is not None
            and kernel.has_trait("last_activity")
            and "last_activity" not in kernel._trait_values
        ):
            # Just started: jupyter_server sets its activity a moment later, and its culler
            # would log a traceback for the unset trait meanwhile.
            return
        if (
            kernel is not None
            and kernel_id in self._page_kernels
            and not self._kernel_connections.get(kernel_id, 0)
            and getattr(kernel, "execution_state", None) != "busy"
            and hasattr(kernel, "last_activity")
        ):
            since = max(kernel.last_activity, self._closed_at.get(kernel_id, kernel.last_activity))
            if _now() - since > timedelta(seconds=self.closed_timeout):
                self.log.info("Shutting down kernel %s: its page is closed", kernel_id)
                await self.shutdown_kernel(kernel_id)
                return
        await super().cull_kernel_if_idle(kernel_id)


def busy_page(lang: str) -> str:
    """The page a juror gets past the cap: no kernel, a message, retry in a minute."""
    from workbench.html.render import macros

    return str(macros("dashboard/common.html.j2").busy_page(lang))


def denied_page() -> str:
    """The page a missing or unknown token gets: no kernel, French then English."""
    from workbench.html.render import macros

    return str(macros("dashboard/common.html.j2").denied_page())


class Gate:
    """The server's own check of a page's token, against the store, before any kernel.

    The kernel checks it again (`pages.auth`): this one only keeps strangers from
    taking kernels. The store is opened once, on the first request.
    """

    def __init__(self) -> None:
        self._store: Any = None
        self._call_id = ""

    def admits(self, token: str | None) -> bool:
        from workbench.jury import AccessDenied, authenticate

        if not token:
            return False
        if self._store is None:
            import os

            from workbench.dashboards.pages import CALL_ENV
            from workbench.store import open_store
            from workbench.workspace import Workspace

            self._store = open_store(Workspace.from_env().db_url)
            self._call_id = os.environ[CALL_ENV]
        try:
            authenticate(self._store, self._call_id, token)
        except AccessDenied:
            return False
        return True


_gate = Gate()


class JuryPageHandler(TornadoVoilaHandler):
    """Voilà's page handler, behind the token check (403) and the kernel cap (503)."""

    async def get(self, path: str | None = None) -> None:
        if not _gate.admits(self.get_query_argument("token", None)):
            self._static(403, denied_page())
            return
        manager = self.kernel_manager
        if isinstance(manager, JuryKernelManager) and not manager.admit():
            import os

            from workbench.dashboards.pages import LANG_ENV

            self.set_header("Retry-After", "60")
            self._static(503, busy_page(os.environ.get(LANG_ENV, "fr")))
            return
        try:
            await super().get(path)
        finally:
            if isinstance(manager, JuryKernelManager):
                manager.arrived(None)  # an admission that never took a kernel frees its place

    def _static(self, status: int, html: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(html)


class TemplateFiles(TemplateStaticFileHandler):
    """Voilà's template static files; a path that is not `<template>/static/<file>` is a 404.

    Voilà's own handler unpacks the path with assertions, so `workbench/index.html.j2` or
    `workbench/static/../conf.json` ended in a 500 and a traceback in the log.
    """

    def parse_url_path(self, path: str) -> str:
        if not _template_static(path):
            raise HTTPError(404)
        return str(super().parse_url_path(path))

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        if not _template_static(path):
            raise HTTPError(404)
        return str(super().get_absolute_path(root, path))


def _template_static(path: str) -> bool:
    import os

    parts = os.path.normpath(path).split(os.path.sep, 2)
    return len(parts) == 3 and parts[1] == "static" and parts[0] not in ("", ".", "..")


class JuryVoila(Voila):
    """Voilà with the workbench's page and template-file handlers, and a bounded stop."""

    def stop(self) -> None:
        """Shut the kernels down within `STOP_TIMEOUT_S`, then end the forked ones.

        Voilà's own stop awaits every kernel's shutdown and the preheated pool's pending
        starts without a bound, so one that never ends (seen once, on a loaded machine)
        keeps the server up after Ctrl-C. Kernels still up after the bound die with their
        zygote.
        """
        import asyncio
        import shutil

        from jupyter_core.utils import run_sync

        from workbench.dashboards.forking import close_zygote

        shutil.rmtree(self.connection_dir, ignore_errors=True)

        async def shutdown() -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.kernel_manager.shutdown_all(), STOP_TIMEOUT_S)

        try:
            run_sync(shutdown)()
        finally:
            close_zygote()

    def init_handlers(self) -> list[Any]:
        replaced = {TornadoVoilaHandler: JuryPageHandler, TemplateStaticFileHandler: TemplateFiles}
        handlers = []
        for handler in super().init_handlers():
            if handler[1] in replaced:
                handler = (handler[0], replaced[handler[1]], *handler[2:])
            handlers.append(handler)
        return handlers
