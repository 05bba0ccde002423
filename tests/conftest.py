"""Shared fixtures: a workspace in tmp_path, with a test call and submissions made to order."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from workbench.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = Path(__file__).parent / "notebooks"

TEST_CALL: dict[str, Any] = {
    "id": "test-call",
    "title": {"fr": "Appel de test", "en": "Test call"},
    "funder": "Test funder",
    "programme": "Test programme",
    "deadline": "2027-01-01",
    "templates": ["ok", "custom"],
    "protocol": {"isolation": "process", "time_limit_s": 60, "memory_limit_mb": 4096},
    "required_metrics": ["n_predictions"],
    "questionnaire": [
        {
            "id": "open-data",
            "type": "yes_no",
            "text": {"fr": "Données ouvertes ?", "en": "Open data?"},
        },
        {
            "id": "hosting",
            "type": "choice",
            "choices": ["on-premises", "cloud"],
            "text": {"fr": "Hébergement ?", "en": "Hosting?"},
        },
    ],
    "rubric": [
        {"id": "benefit", "weight": 0.6, "label": {"fr": "Bénéfice", "en": "Benefit"}},
        {"id": "frugality", "weight": 0.4, "label": {"fr": "Frugalité", "en": "Frugality"}},
    ],
}


def _sandbox_unavailable() -> str | None:
    from workbench.errors import SandboxError
    from workbench.runner.isolation import isolation_levels

    try:
        isolation_levels.get("sandbox").check()
    except SandboxError as exc:
        return str(exc)
    return None


SANDBOX_UNAVAILABLE = _sandbox_unavailable()
# CI sets WORKBENCH_REQUIRE_SANDBOX=1: there, a missing sandbox fails instead of skipping.
requires_sandbox = pytest.mark.skipif(
    SANDBOX_UNAVAILABLE is not None and not os.environ.get("WORKBENCH_REQUIRE_SANDBOX"),
    reason=f"no sandbox on this machine: {SANDBOX_UNAVAILABLE}",
)


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A workspace with the test call and the `ok` template; its store is a SQLite file."""
    root = tmp_path / "ws"
    write_yaml(root / "calls" / "test-call.yaml", TEST_CALL)
    (root / "templates" / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "ok.ipynb", root / "templates" / "notebooks" / "ok.ipynb")
    return Workspace(root)


MakeSubmission = Callable[..., Path]


@pytest.fixture
def make_submission(workspace: Workspace) -> MakeSubmission:
    """Create `submissions/test-call/ID/` from one of tests/notebooks, with overrides."""

    def make(sub_id: str = "team-a", notebook: str = "ok", **overrides: Any) -> Path:
        folder = workspace.submissions_dir / "test-call" / sub_id
        folder.mkdir(parents=True)
        shutil.copy(NOTEBOOKS / f"{notebook}.ipynb", folder / "notebook.ipynb")
        doc: dict[str, Any] = {
            "id": sub_id,
            "call": "test-call",
            "team": "Équipe test",
            "organisation": "Commune de Testville (fictive)",
            "contact": "team@testville.example",
            "title": "Un projet de test",
            "template": "ok" if notebook == "ok" else "custom",
            "parameters": {"n": 4},
            "answers": {"open-data": True, "hosting": "cloud"},
            # As if handed in: the initial state an older submission.yaml may still declare.
            "state": "submitted",
        }
        doc.update(overrides)
        write_yaml(folder / "submission.yaml", doc)
        return folder

    return make


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Poll until `process` listens on `port`; fail if it exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on port {port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.2)


def _wait_for_logins(url: str, timeout: float = 30) -> None:
    """The postmaster listens before it accepts logins: poll until one succeeds."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                pytest.skip("PostgreSQL did not accept logins")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the whole session; its `postgres`
    database is shared, so a test that needs its own makes one (see test_migrations)."""
    if os.environ.get("WORKBENCH_TEST_POSTGRES"):
        yield os.environ["WORKBENCH_TEST_POSTGRES"]
        return
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        initdb = initdb or str(candidate / "initdb") if (candidate / "initdb").exists() else initdb
        postgres = postgres or str(candidate / "postgres")
    if not initdb or not postgres:
        pytest.skip("no PostgreSQL server binaries (initdb, postgres) on this machine")
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        as_user = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp folder: it is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    data = base / "data"
    if as_user:
        shutil.chown(base, "postgres")
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [*as_user, postgres, "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(base)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        try:
            wait_for_port(port, server, timeout=30)
        except (RuntimeError, TimeoutError) as exc:
            pytest.skip(f"PostgreSQL did not start: {exc}")
        _wait_for_logins(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)
