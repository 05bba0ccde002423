"""JupyterLab for a team filling in a template, opened on its submission's notebook."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def lab_command(
    folder: Path,
    notebook: str,
    *,
    port: int = 8888,
    open_browser: bool = True,
    token: str | None = None,
) -> list[str]:
    """The command that serves `folder` on 127.0.0.1 and opens `notebook`.

    The kernel is this environment's Python, so `import workbench` works in it, and
    `workbench run` later executes exactly what the team saved.
    """
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={folder}",
        f"--LabApp.default_url=/lab/tree/{notebook}",
        f"--ServerApp.open_browser={open_browser}",
    ]
    if os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses without this
        command.append("--ServerApp.allow_root=True")
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    return command
