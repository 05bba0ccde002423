"""A call's reference environment: built once, locked, used by every kernel, checked first.

The environments are built once per session from a local wheel folder (the package index
is read once, by `pip download`, to fill it); every build after that is offline.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import ROOT, TEST_CALL, requires_sandbox, write_yaml
from workbench import environments
from workbench.batch import run_batch, run_submission
from workbench.cli import main
from workbench.errors import ExecutionError, InputError, InvalidError
from workbench.store import open_store
from workbench.submissions import validate_submission
from workbench.workspace import Workspace

ENV_CALL = "env-call"
OLD_TABULATE = "0.8.10"
RECORDING = (
    "import os, sys\n"
    "import tabulate\n"
    "import workbench\n"
    "workbench.record('n_predictions', 1)\n"
    "workbench.record('prefix', sys.prefix)\n"
    "workbench.record('parent', os.getppid())\n"
    "workbench.record('tabulate', tabulate.__version__)\n"
)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local wheel folder, and pip (or uv) pointed at it alone while this module runs
    (later tests, a wheel build among them, need the index again)."""
    folder = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(folder)]
    for packages in (["ipykernel", "tabulate"], [f"tabulate=={OLD_TABULATE}"]):
        done = subprocess.run([*pip, *packages], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot fill the wheel folder from the package index: {done.stderr}")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(folder),
            "UV_NO_INDEX": "1",
            "UV_FIND_LINKS": str(folder),
        }.items():
            patch.setenv(name, value)
        yield folder


@pytest.fixture(scope="module")
def shared_root(wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Environments built once per session; each test's workspace links its folder here."""
    return tmp_path_factory.mktemp("environments")


@pytest.fixture(scope="module")
def tabulate_env(shared_root: Path) -> environments.Built:
    return environments.build(environments.Declared(("tabulate",)), shared_root)


def _write_call(workspace: Workspace, requirements: list[str]) -> None:
    call: dict[str, Any] = copy.deepcopy(TEST_CALL)
    call["id"] = ENV_CALL
    call["protocol"]["environment"] = {"requirements": requirements}
    write_yaml(workspace.calls_dir / f"{ENV_CALL}.yaml", call)


@pytest.fixture
def env_workspace(workspace: Workspace, shared_root: Path, tabulate_env: Any) -> Workspace:
    """The test workspace with `env-call`, whose environment adds tabulate (built)."""
    _write_call(workspace, ["tabulate"])
    (workspace.root / environments.FOLDER).symlink_to(shared_root, target_is_directory=True)
    return workspace


def _submission(workspace: Workspace, call: str, sub_id: str, *sources: str) -> Path:
    folder = workspace.submissions_dir / call / sub_id
    folder.mkdir(parents=True)
    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, folder / "notebook.ipynb")
    doc = {
        "id": sub_id,
        "call": call,
        "team": "Équipe test",
        "organisation": "Commune de Testville (fictive)",
        "contact": "team@testville.example",
        "title": "Un projet de test",
        "template": "custom",
        "parameters": {},
        "answers": {"open-data": True, "hosting": "cloud"},
        "state": "submitted",
    }
    write_yaml(folder / "submission.yaml", doc)
    return folder


def _venv(built: environments.Built) -> str:
    return str(Path(built.environment.interpreter).parent.parent)


def _stored_runs(workspace: Workspace, call: str) -> list[Any]:
    with open_store(workspace.db_url) as store:
        return store.runs(call_id=call)


def test_the_build_writes_a_lock_and_building_again_is_a_no_op(
    env_workspace: Workspace, tabulate_env: environments.Built
) -> None:
    assert tabulate_env.created is True  # the session's first build really built
    lock = tabulate_env.lock
    lines = lock.splitlines()
    assert all(re.match(r"^[a-z0-9-]+==\S+$", line) for line in lines)
    names = [line.split("==")[0] for line in lines]
    assert names == sorted(names) and {"ipykernel", "tabulate"} <= set(names)
    assert "pip" not in names
    runner = CliRunner()
    root = ["-w", str(env_workspace.root)]
    again = runner.invoke(main, [*root, "env", "build", ENV_CALL])
    assert again.exit_code == 0, again.output
    sha = hashlib.sha256(lock.encode()).hexdigest()
    assert "already built" in again.output and f"lock sha256: {sha}" in again.output
    shown = runner.invoke(main, [*root, "env", "show", ENV_CALL])
    assert shown.exit_code == 0
    assert shown.output == f"# lock sha256: {sha}\n{lock}"
    # A call without environment has nothing to build, and says so.
    none = runner.invoke(main, [*root, "env", "build", "test-call"])
    assert none.exit_code == 2 and "declares no protocol.environment" in none.output


def test_a_notebook_importing_the_package_runs_under_the_call_and_is_refused_without_it(
    env_workspace: Workspace, tabulate_env: environments.Built
) -> None:
    _submission(env_workspace, ENV_CALL, "with-env", RECORDING)
    record = run_submission(env_workspace, f"{ENV_CALL}/with-env", isolation="none")
    assert record.status == "succeeded", record.message
    assert record.records["prefix"]["value"] == _venv(tabulate_env)
    assert record.fingerprint.environment_sha256 == tabulate_env.environment.lock_sha256

    folder = _submission(env_workspace, "test-call", "without", "x = 1", RECORDING)
    with pytest.raises(InvalidError) as refused:
        run_submission(env_workspace, "test-call/without")
    assert [str(p) for p in refused.value.problems] == [
        f"{folder / 'notebook.ipynb'}: cell 1: imports tabulate, which the workbench's own "
        "environment does not provide"
    ]
    assert _stored_runs(env_workspace, "test-call") == []  # nothing ran for it
    result = CliRunner().invoke(main, ["-w", str(env_workspace.root), "validate"])
    assert result.exit_code == 2
    assert "test-call.yaml: no protocol.environment" in result.output
    assert "env-call.yaml: no protocol.environment" not in result.output


def test_validation_reads_every_import_once_per_module_and_asks_the_environment_once(
    env_workspace: Workspace, tabulate_env: environments.Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _submission(
        env_workspace,
        ENV_CALL,
        "imports",
        "import tabulate, json\nfrom workbench import record",
        "def fit():\n    import lightgbm.sklearn\n    return lightgbm",
        "%time import numpy as np\nfrom . import nothing",
        "try:\n    import xgboost\nexcept ImportError:\n    xgboost = None\nimport helpers",
        "import lightgbm",
    )
    (folder / "helpers.py").write_text("X = 1\n")  # shipped with the submission
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting(cmd: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(environments.subprocess, "run", counting)
    with pytest.raises(InvalidError) as refused:
        validate_submission(folder, env_workspace)
    notebook = folder / "notebook.ipynb"
    provides = "which the call's environment does not provide"
    assert [str(p) for p in refused.value.problems] == [
        f"{notebook}: cell 1: imports lightgbm, {provides}",
        f"{notebook}: cell 2: imports numpy, {provides}",
    ]
    assert [cmd[0] for cmd in calls] == [tabulate_env.environment.interpreter]


def test_the_lock_hash_is_in_the_fingerprint_and_a_changed_requirement_runs_again(
    env_workspace: Workspace, tabulate_env: environments.Built
) -> None:
    _submission(env_workspace, ENV_CALL, "a", RECORDING)
    first = run_batch(env_workspace, ENV_CALL, workers=1, isolation="process")
    (run,) = first.records
    assert run.status == "succeeded", run.message
    assert run.fingerprint.environment_sha256 == tabulate_env.environment.lock_sha256
    assert run_batch(env_workspace, ENV_CALL, workers=1).plan.jobs == []  # same input

    _write_call(env_workspace, [f"tabulate=={OLD_TABULATE}"])
    changed = Workspace(env_workspace.root)  # a workspace reads each call once
    with pytest.raises(InputError, match=f"workbench env build {ENV_CALL}"):
        run_batch(changed, ENV_CALL, workers=1)  # runs never build
    assert len(_stored_runs(changed, ENV_CALL)) == 1
    result = CliRunner().invoke(main, ["-w", str(changed.root), "env", "build", ENV_CALL])
    assert result.exit_code == 0, result.output
    second = run_batch(changed, ENV_CALL, workers=1, isolation="process")
    (again,) = second.records
    assert again.status == "succeeded", again.message
    assert again.records["tabulate"]["value"] == OLD_TABULATE
    assert again.fingerprint.environment_sha256 not in (
        None,
        run.fingerprint.environment_sha256,
    )
    assert again.fingerprint.input_sha256 != run.fingerprint.input_sha256


def test_forked_kernels_start_from_the_call_s_environment(
    env_workspace: Workspace, tabulate_env: environments.Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.runner import zygote

    monkeypatch.delenv(zygote.DISABLE_ENV, raising=False)
    if not zygote.enabled():
        pytest.skip("no pidfd_open here: kernels are never forked")
    _submission(env_workspace, ENV_CALL, "forked", RECORDING)
    record = run_submission(env_workspace, f"{ENV_CALL}/forked", isolation="process")
    assert record.status == "succeeded", record.message
    assert record.records["prefix"]["value"] == _venv(tabulate_env)
    # Forked by a zygote of that environment's own, not by the workbench's.
    environment_zygote = zygote.shared_zygote(tabulate_env.environment.interpreter)
    assert record.metrics["parent"] == environment_zygote.process.pid
    assert environment_zygote is not zygote.shared_zygote()


@requires_sandbox
@pytest.mark.parametrize("fork", ["1", "0"])
def test_sandboxed_kernels_start_from_the_call_s_environment(
    env_workspace: Workspace,
    tabulate_env: environments.Built,
    monkeypatch: pytest.MonkeyPatch,
    fork: str,
) -> None:
    monkeypatch.setenv("WORKBENCH_FORK_KERNELS", fork)
    _submission(env_workspace, ENV_CALL, "boxed", RECORDING)
    record = run_submission(env_workspace, f"{ENV_CALL}/boxed", isolation="sandbox")
    assert record.status == "succeeded", record.message
    assert record.records["prefix"]["value"] == _venv(tabulate_env)


def test_a_dask_worker_with_another_lock_is_refused_before_any_task(
    env_workspace: Workspace, tabulate_env: environments.Built, tmp_path: Path
) -> None:
    from tests.test_batch import real_cluster

    _submission(env_workspace, ENV_CALL, "remote", RECORDING)
    # What a worker builds: the coordinator's lock, pinned.
    pinned = environments.Declared(("tabulate",), tabulate_env.lock)
    stale_root, fresh_root = tmp_path / "stale", tmp_path / "fresh"
    stale = stale_root / pinned.key
    shutil.copytree(tabulate_env.folder, stale, symlinks=True)
    (stale / environments.LOCK_FILE).write_text(tabulate_env.lock + "tampered==1.0\n")
    workers = [
        {**os.environ, environments.WORKER_ROOT_ENV: str(root)} for root in (stale_root, fresh_root)
    ]
    with real_cluster(tmp_path, workers) as address:
        with pytest.raises(ExecutionError) as refused:
            run_batch(env_workspace, ENV_CALL, scheduler=address, isolation="process")
        message = str(refused.value)
        assert message.count("worker tcp://127.0.0.1:") == 1 and str(stale) in message
        assert _stored_runs(env_workspace, ENV_CALL) == []
        # The other worker built the same lock from the coordinator's, offline.
        assert (fresh_root / pinned.key / environments.LOCK_FILE).read_text() == tabulate_env.lock
        (stale / environments.LOCK_FILE).write_text(tabulate_env.lock)  # now the same
        report = run_batch(env_workspace, ENV_CALL, scheduler=address, isolation="process")
    (record,) = report.records
    assert record.status == "succeeded", record.message
    assert record.records["prefix"]["value"] in {
        str((root / pinned.key / "venv").resolve()) for root in (stale_root, fresh_root)
    }
    assert record.fingerprint.environment_sha256 == tabulate_env.environment.lock_sha256


def test_the_kit_carries_the_lock_and_a_team_builds_the_same_environment(
    env_workspace: Workspace, tabulate_env: environments.Built, tmp_path: Path
) -> None:
    from workbench.kits import init_workspace, write_kit

    kit = write_kit(env_workspace, ENV_CALL, tmp_path / "kit.zip")
    with zipfile.ZipFile(kit) as archive:
        assert archive.read(f"calls/{ENV_CALL}.lock").decode() == tabulate_env.lock
        readme = archive.read("README.md").decode()
    assert f"workbench env build {ENV_CALL}" in readme
    team = Workspace(init_workspace(tmp_path / "team", kit))
    spec = environments.declared(team.call(ENV_CALL), team.calls_dir)
    assert spec is not None and spec.lock == tabulate_env.lock
    built = environments.build(spec, environments.default_root(team.root))
    assert built.created and built.environment.lock_sha256 == tabulate_env.environment.lock_sha256


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "declare `requirements`, a `lock` file"),
        ({"requirements": ["--index-url=http://example.org"]}, "requirements.0"),
        ({"lock": "../secrets.lock"}, "protocol.environment.lock"),
    ],
)
def test_a_bad_environment_is_refused_with_its_field(
    workspace: Workspace, environment: dict[str, Any], expected: str
) -> None:
    call = copy.deepcopy(TEST_CALL)
    call["protocol"]["environment"] = environment
    write_yaml(workspace.calls_dir / "test-call.yaml", call)
    with pytest.raises(InvalidError, match=re.escape(expected)):
        workspace.call("test-call")


def test_the_kernel_support_copied_into_an_environment_imports_only_itself() -> None:
    """What `env build` copies must not import a workbench module it leaves out, or every
    kernel of the environment dies at start."""
    import ast

    from workbench.environments import KERNEL_SUPPORT

    package = ROOT / "workbench"
    copied = {name.removesuffix(".py").replace("/", ".") for name in KERNEL_SUPPORT}
    copied = {name.removesuffix(".__init__") for name in copied} | {""}
    missing = set()
    for name in KERNEL_SUPPORT:
        tree = ast.parse((package / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                module = node.module
            elif isinstance(node, ast.Import):
                module = node.names[0].name
            else:
                continue
            inside = module == "workbench" or module.startswith("workbench.")
            if inside and module.removeprefix("workbench").lstrip(".") not in copied:
                missing.add(f"{name} imports {module}")
    assert not missing, sorted(missing)
