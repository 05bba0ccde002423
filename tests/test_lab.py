"""`workbench lab`: JupyterLab on 127.0.0.1, on the submission, with a kernel that has workbench."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import MakeSubmission, free_port
from workbench.lab import lab_command


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.kernel
def test_lab_serves_the_submission_and_its_kernel(make_submission: MakeSubmission) -> None:
    folder = make_submission()
    port, token = free_port(), "test-token"
    server = subprocess.Popen(
        lab_command(folder, "notebook.ipynb", port=port, open_browser=False, token=token),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                assert server.poll() is None, "JupyterLab exited"
                assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
                time.sleep(0.5)
        assert "started" in status
        contents = _get(f"{base}/api/contents/notebook.ipynb?token={token}&content=0")
        assert contents["type"] == "notebook"
        specs = _get(f"{base}/api/kernelspecs?token={token}")
        argv = specs["kernelspecs"][specs["default"]]["spec"]["argv"]
        probe = subprocess.run(
            [
                argv[0].replace("{connection_file}", ""),
                "-c",
                "import workbench; print(workbench.record)",
            ],
            capture_output=True,
            text=True,
        )
        assert probe.returncode == 0, probe.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
