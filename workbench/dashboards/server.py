"""`workbench serve`: Voilà configured for juries, over one call of the store.

Voilà serves one notebook, `dashboard.ipynb`, in single-notebook mode: every path is
that page, so there is no file tree and no contents API. It is configured so that a
juror's browser gets the rendered page and nothing else:

- sources stripped, tracebacks hidden;
- no file served from the notebook's folder (`/voila/files/` allows nothing), so never
  a `.ipynb`, `.py`, `.yaml`, the database or a run folder;
- template and theme cannot be changed from the URL;
- the kernels accept from the browser only the messages widgets need (comms and kernel
  info, Voilà's own allow-list): no `execute_request`, so nothing the juror does runs code;
- `Referrer-Policy: no-referrer`, so the token in the page's address never leaves it;
- bound to 127.0.0.1.

Speed comes from Voilà's preheated kernel pool: `pool_size` kernels per notebook are
started in advance and run the notebook's first cell (imports, store, call, a first
figure) before any request; the second cell waits in `voila.utils.get_query_string()`
until a request takes the kernel and hands it the query string (the juror's token and
the page asked for). The pool refills itself after each request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError

if TYPE_CHECKING:
    from workbench.workspace import Workspace

NOTEBOOK = Path(__file__).with_name("dashboard.ipynb")
DEFAULT_PORT = 8866
DEFAULT_POOL_SIZE = 2
FRONTEND_EXTENSIONS = (
    "@jupyter-widgets/jupyterlab-manager",
    "@voila-dashboards/widgets-manager8",
    "jupyterlab-plotly",
)
# Kernels of pages left open: culled after this long without activity.
# A kernel taken from the pool is replaced after this delay, not while the page renders.
POOL_FILL_DELAY_S = 3
IDLE_KERNEL_TIMEOUT_S = 1800


def voila_config(port: int, pool_size: int = DEFAULT_POOL_SIZE) -> dict[str, Any]:
    """The traitlets configuration of the Voilà application, as a plain dict."""
    return {
        "Voila": {
            "ip": "127.0.0.1",
            "port": port,
            "port_retries": 0,
            "open_browser": False,
            "root_dir": str(NOTEBOOK.parent),
            "tornado_settings": {
                "headers": {
                    "Referrer-Policy": "no-referrer",
                    "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY",
                }
            },
        },
        "VoilaConfiguration": {
            "strip_sources": True,
            "show_tracebacks": False,
            "file_allowlist": [],
            "file_denylist": [r".*"],
            "allow_template_override": "NO",
            "allow_theme_override": "NO",
            # Only the front-end extensions the pages use: widgets and plotly.
            "extension_allowlist": list(FRONTEND_EXTENSIONS),
            "preheat_kernel": pool_size > 0,
            "default_pool_size": pool_size,
        },
        "VoilaKernelManager": {"fill_delay": POOL_FILL_DELAY_S},
        "MappingKernelManager": {
            "cull_idle_timeout": IDLE_KERNEL_TIMEOUT_S,
            "cull_interval": 60,
        },
    }


def prepare_environment(workspace: Workspace, call_id: str, lang: str) -> dict[str, str]:
    """The variables the dashboard's kernels read: store, workspace, call, language."""
    from workbench.dashboards.i18n import LANGUAGES
    from workbench.dashboards.pages import CALL_ENV, LANG_ENV
    from workbench.store import open_store
    from workbench.workspace import DB_ENV, HOME_ENV

    if lang not in LANGUAGES:
        raise InputError(f"unknown language {lang!r} (known: {', '.join(LANGUAGES)})")
    call = workspace.call(call_id)  # an unknown call is an error before anything starts
    open_store(workspace.db_url).close()  # so is a store that cannot be opened
    return {
        DB_ENV: workspace.db_url,
        HOME_ENV: str(workspace.root),
        CALL_ENV: call.id,
        LANG_ENV: lang,
    }


def serve(
    workspace: Workspace,
    call_id: str,
    *,
    port: int = DEFAULT_PORT,
    lang: str = "fr",
    pool_size: int = DEFAULT_POOL_SIZE,
) -> None:
    """Serve the jury dashboards of a call on 127.0.0.1 until interrupted."""
    if pool_size < 0:
        raise InputError("the pool size cannot be negative")
    os.environ.update(prepare_environment(workspace, call_id, lang))
    from traitlets.config import Config
    from voila.app import Voila

    app = Voila(config=Config(voila_config(port, pool_size)))
    app.initialize([str(NOTEBOOK)])
    app.start()
