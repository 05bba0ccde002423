"""`workbench serve`: Voilà configured for juries, over one call of the store.

Voilà serves one notebook, `dashboard.ipynb`, in single-notebook mode: every path is
that page, so there is no file tree and no contents API. It is configured so that a
juror's browser gets the rendered page and nothing else:

- sources stripped, tracebacks hidden;
- no file served from the notebook's folder (`/voila/files/` allows nothing), so never
  a `.ipynb`, `.py`, `.yaml`, the database or a run folder;
- template and theme fixed, not changeable from the URL: the `workbench` template
  (package data under `share/voila/templates/`) is Voilà's `lab` page with plotly.js
  and `workbench.js` (which draws each chart once) loaded in its head;
- static files: only Voilà's front end, the installed front-end extensions' bundles
  (the page loads only the widgets' ones) and the templates' own `static/` assets.
  plotly.js is one of the `workbench` template's: copied at start from plotly.py's
  package into a temporary Jupyter data folder, never fetched from the internet;
- the kernels accept from the browser only the messages widgets need (comms and kernel
  info, Voilà's own allow-list): no `execute_request`, so nothing the juror does runs code;
- `Referrer-Policy: no-referrer`, so the token in the page's address never leaves it;
- bound to 127.0.0.1.

Speed comes from Voilà's preheated kernel pool: `pool_size` kernels per notebook are
started in advance and run the notebook's first cell (imports, store, call, a first
figure) before any request; the second cell waits in `voila.utils.get_query_string()`
until a request takes the kernel and hands it the query string (the juror's token and
the page asked for). The pool refills itself after each request.

A juror's page keeps its kernel while they move between pages (`pages.view`); kernels of
closed and idle pages are shut down, and their number is capped (`kernels`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError

if TYPE_CHECKING:
    from workbench.workspace import Workspace

NOTEBOOK = Path(__file__).with_name("dashboard.ipynb")
# The page template: Voilà's `lab` one, plus plotly.js in the page's head.
TEMPLATE = "workbench"
# A Jupyter data folder holding voila/templates/workbench/ (package data).
TEMPLATE_DATA = Path(__file__).with_name("share")
DEFAULT_PORT = 8866
DEFAULT_POOL_SIZE = 2
FRONTEND_EXTENSIONS = (
    "@jupyter-widgets/jupyterlab-manager",
    "@voila-dashboards/widgets-manager8",
)
# A kernel taken from the pool is replaced after this delay, not while the page renders.
POOL_FILL_DELAY_S = 3
# Page kernels: culled after this long without activity, connected or not (`--idle-timeout`)...
DEFAULT_IDLE_TIMEOUT_S = 1800
# ...and this long after their page closed (no connection left).
DEFAULT_CLOSED_TIMEOUT_S = 30
# Most kernels alive at once, the preheated pool included (`--max-kernels`).
DEFAULT_MAX_KERNELS = 40


def voila_config(
    port: int,
    pool_size: int = DEFAULT_POOL_SIZE,
    *,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT_S,
    closed_timeout: int = DEFAULT_CLOSED_TIMEOUT_S,
    max_kernels: int = DEFAULT_MAX_KERNELS,
) -> dict[str, Any]:
    """The traitlets configuration of the Voilà application, as a plain dict."""
    # Often enough that a closed page's kernel goes within its timeout and a third.
    cull_interval = max(1, min(idle_timeout, closed_timeout) // 3)
    return {
        "Voila": {
            "ip": "127.0.0.1",
            "port": port,
            "port_retries": 0,
            "open_browser": False,
            # Warnings and errors only: no line per kernel, page or request (see README).
            "log_level": "WARN",
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
            "template": TEMPLATE,
            "allow_template_override": "NO",
            "allow_theme_override": "NO",
            # Only the front-end extensions the pages use: widgets (charts are the template's).
            "extension_allowlist": list(FRONTEND_EXTENSIONS),
            "preheat_kernel": pool_size > 0,
            "default_pool_size": pool_size,
            "multi_kernel_manager_class": "workbench.dashboards.kernels.JuryKernelManager",
        },
        "VoilaKernelManager": {"fill_delay": POOL_FILL_DELAY_S},
        "JuryKernelManager": {
            # Every kernel forked from one warm process (`forking`).
            "kernel_manager_class": "workbench.dashboards.forking.DashboardKernelManager",
            # Idle pages go, connected or not; closed ones sooner (`kernels`).
            "cull_idle_timeout": idle_timeout,
            "cull_connected": True,
            "cull_interval": cull_interval,
            "closed_timeout": closed_timeout,
            "max_kernels": max_kernels,
            "pool_size": pool_size,
            "preheat": pool_size > 0,
        },
    }


def prepare_environment(workspace: Workspace, call_id: str, lang: str) -> dict[str, str]:
    """The variables the dashboard's kernels read: store, workspace, call, language."""
    from workbench.dashboards.pages import CALL_ENV, LANG_ENV
    from workbench.store import open_store
    from workbench.vocabulary import LANGUAGES
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


def plotly_js() -> Path:
    """plotly.js as plotly.py ships it (the version its figures are written for)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def stage_plotly_js(folder: Path) -> Path:
    """Make `folder` a Jupyter data folder whose `workbench` template serves plotly.js.

    Voilà serves a template's `static/` files from every Jupyter data folder, and refuses
    symbolic links leading out of them, hence a copy.
    """
    static = folder / "voila" / "templates" / TEMPLATE / "static"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plotly_js(), static / "plotly.min.js")
    return folder


# The kernels' own log (IPKernelApp): errors a funder can act on come from the pages'
# logger, not from it; it would print the TCP warning and the shutdown races of each kernel.
KERNEL_CONFIG = {"IPKernelApp": {"log_level": "CRITICAL"}}


def stage_kernel_config(folder: Path) -> Path:
    """An IPython folder whose kernel configuration keeps the kernels' own log quiet."""
    profile = folder / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.json").write_text(json.dumps(KERNEL_CONFIG))
    return folder / "ipython"


def _not_trust_warning(record: logging.LogRecord) -> bool:
    # The dashboard notebook is the package's own and is run, never shown: its trust
    # (which only decides whether a notebook's saved outputs may run scripts) is moot.
    return "is not trusted" not in record.getMessage()


def serve(
    workspace: Workspace,
    call_id: str,
    *,
    port: int = DEFAULT_PORT,
    lang: str = "fr",
    pool_size: int = DEFAULT_POOL_SIZE,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT_S,
    closed_timeout: int = DEFAULT_CLOSED_TIMEOUT_S,
    max_kernels: int = DEFAULT_MAX_KERNELS,
) -> None:
    """Serve the jury dashboards of a call on 127.0.0.1 until interrupted."""
    if pool_size < 0:
        raise InputError("the pool size cannot be negative")
    if idle_timeout < 1 or closed_timeout < 1:
        raise InputError("the idle and closed-page timeouts must be at least 1 second")
    if max_kernels <= pool_size:
        raise InputError(
            f"--max-kernels {max_kernels} leaves no kernel for a page beside the "
            f"{pool_size} preheated ones: give more than --pool-size"
        )
    os.environ.update(prepare_environment(workspace, call_id, lang))
    from traitlets.config import Config

    from workbench.dashboards.kernels import JuryVoila

    with tempfile.TemporaryDirectory(prefix="workbench-voila-") as staged:
        # Voilà finds templates (and their static files) in the Jupyter data folders.
        folders = [str(TEMPLATE_DATA), str(stage_plotly_js(Path(staged)))]
        if os.environ.get("JUPYTER_PATH"):
            folders.append(os.environ["JUPYTER_PATH"])
        os.environ["JUPYTER_PATH"] = os.pathsep.join(folders)
        os.environ["IPYTHONDIR"] = str(stage_kernel_config(Path(staged)))
        config = voila_config(
            port,
            pool_size,
            idle_timeout=idle_timeout,
            closed_timeout=closed_timeout,
            max_kernels=max_kernels,
        )
        from workbench.runner.zygote import enabled

        if enabled():  # warming up while Voilà starts, before the pool asks for kernels
            from workbench.dashboards.forking import dashboard_zygote

            dashboard_zygote()
        app = JuryVoila(config=Config(config))
        app.initialize([str(NOTEBOOK)])
        app.log.addFilter(_not_trust_warning)
        try:
            app.start()  # SIGTERM stops its loop; Voilà catches Ctrl-C inside it
        except KeyboardInterrupt:  # a second Ctrl-C while it shuts its kernels down
            app.stop()
