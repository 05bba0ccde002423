"""The `sandbox` isolation level, and the fault suite: one hostile notebook per case.

Every fault notebook is in tests/notebooks/faults/ (written by build.py there) and runs
at the `sandbox` level through `run_submission`, a couple through the real CLI. The
call gives them 10 s and 2 GB.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest

import workbench
from tests.conftest import ROOT, TEST_CALL, MakeSubmission, requires_sandbox, write_yaml
from workbench.batch import run_submission
from workbench.errors import SandboxError
from workbench.runner import cgroups
from workbench.runner import isolation as sandbox
from workbench.runner.execute import OUTPUT_TRUNCATED, PHASES_UNTAGGED, RECORD_FILE, OutputBudget
from workbench.runner.isolation import BubblewrapIsolation, Limits, isolation_levels
from workbench.runner.records import RunRecord
from workbench.store import open_store
from workbench.workspace import Workspace

CGROUPS = cgroups.unavailable_reason() is None  # then limits hold per run, not per process
TIME_LIMIT_S = 10
FAULT_CALL: dict[str, Any] = {
    **TEST_CALL,
    "protocol": {"isolation": "sandbox", "time_limit_s": TIME_LIMIT_S, "memory_limit_mb": 2048},
}
# Quotes of every kind, backslashes, newlines, format braces, shell and Python code.
HOSTILE_TEXT = (
    'q"uote\' back\\slash \\n not-a-newline\nnewline """triple""" \'\'\' {x} {{y}} '
    '$HOME `id` é 中 \t tab \r\n"); import os; os.system("id") #'
)


Faults = Callable[..., str]


@pytest.fixture
def faults(workspace: Workspace, make_submission: MakeSubmission) -> Faults:
    """`faults(case, sub_id=case, **parameters)`: a submission of a fault notebook."""
    write_yaml(workspace.calls_dir / "test-call.yaml", FAULT_CALL)

    def make(case: str, sub_id: str | None = None, **parameters: Any) -> str:
        sub_id = sub_id or case.replace("_", "-")
        make_submission(sub_id, notebook=f"faults/{case}", parameters={"n": 1, **parameters})
        return f"test-call/{sub_id}"

    return make


def run(workspace: Workspace, ref: str) -> RunRecord:
    return run_submission(workspace, ref, isolation="sandbox")


def wait_until_gone(marker: str) -> None:
    """Poll (bounded) until no process has `marker` in its command line."""
    deadline = time.monotonic() + 20
    while True:
        left = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(proc.pid)
        if not left:
            return
        assert time.monotonic() < deadline, f"processes outlived their run: {left}"
        time.sleep(0.2)


# -- the command line and the checks, without a kernel ------------------------------------


def test_command_line_isolates_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "_probed", {("bwrap", True): None, ("bwrap", False): None})
    monkeypatch.setattr(sandbox, "_bwrap_path", lambda: "bwrap")
    monkeypatch.setenv("JURY_TOKEN", "secret")
    monkeypatch.setenv("WORKBENCH_DB", "sqlite:///secret.db")
    run_dir = tmp_path / "runs" / "r1"
    (run_dir / "data").mkdir(parents=True)
    (run_dir / "input.ipynb").write_text("{}")
    level = BubblewrapIsolation()
    connection = level.connection(run_dir)
    sockets = Path(connection["ip"]).parent  # a folder of their own, not the run folder
    assert connection == {
        "transport": "ipc",
        "connection_file": str(sockets / "kernel.json"),
        "ip": str(sockets / "kernel"),
    }
    assert not sockets.is_relative_to(run_dir)
    cmd = level.kernel_command(["python", "-m", "ipykernel"], run_dir, Limits(memory_mb=512))
    line = " ".join(cmd)
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--die-with-parent"):
        assert flag in cmd
    assert "--new-session" in cmd and "--clearenv" in cmd
    assert f"--bind {run_dir} {run_dir}" in line
    assert f"--ro-bind {run_dir / 'input.ipynb'} {run_dir / 'input.ipynb'}" in line
    assert f"--ro-bind {run_dir / 'data'} {run_dir / 'data'}" in line
    assert f"--ro-bind {run_dir / RECORD_FILE} {run_dir / RECORD_FILE}" in line
    assert "--tmpfs /tmp" in line and "--proc /proc" in line and "--dev /dev" in line
    package = Path(workbench.__file__).resolve().parent
    assert f"--ro-bind {package} {package}" in line
    assert f"--ro-bind {ROOT} {ROOT} " not in line  # the repository stays out
    assert "secret" not in line and "JURY_TOKEN" not in line and "JPY_PARENT_PID" not in line
    assert "--memory-mb=512" in line and "--chdir" in cmd
    launcher = cmd[cmd.index("--") + 1 :]
    assert launcher[1:4] == ["-I", "-m", "workbench.runner.launcher"]
    assert launcher[-3:] == ["python", "-m", "ipykernel"]
    if os.geteuid() == 0:
        assert "--user=65534:65534" in launcher
        assert run_dir.stat().st_uid == sandbox.SANDBOX_UID
        level.cleanup(run_dir)
        assert run_dir.stat().st_uid == 0
    else:
        assert "--unshare-user" in cmd


def test_long_run_paths_get_a_short_socket_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / ("x" * 120)
    run_dir.mkdir()
    level = BubblewrapIsolation()
    ip = Path(level.connection(run_dir)["ip"])
    assert len(f"{ip}-65535") <= sandbox.SOCKET_PATH_MAX and ip.parent.is_dir()
    level.cleanup(run_dir)
    assert not ip.parent.exists()


def test_the_record_file_is_pinned() -> None:
    assert RECORD_FILE in sandbox.RUNNER_LATE_FILES


def test_missing_bwrap_fails_closed_and_says_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sandbox, "BWRAP", str(tmp_path / "missing" / "bwrap"))
    with pytest.raises(SandboxError) as caught:
        isolation_levels.get("sandbox").check()
    message = str(caught.value)
    assert "apt-get install bubblewrap" in message and "--isolation process" in message


def test_bwrap_without_namespaces_fails_closed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox, "BWRAP", str(fake))
    monkeypatch.setattr(sandbox, "_probed", {})
    with pytest.raises(SandboxError, match=r"cannot create namespaces.*No permissions") as caught:
        isolation_levels.get("sandbox").check()
    assert "apt-get install bubblewrap" in str(caught.value)


def test_output_budget_marks_what_it_discards() -> None:
    budget = OutputBudget(stream=10, rich=10)
    outs: list[Any] = []
    assert budget.room("stream") == 10
    budget.take("stream", 10)
    marker = budget.discard("stream", 3 * 1024 * 1024, outs, cell_index=1)
    assert outs == [marker] and "output truncated" in marker.text and "3.0 MB" in marker.text
    assert budget.discard("stream", 1024 * 1024, outs, cell_index=1) is None  # one per cell
    assert "4.0 MB" in marker.text and budget.truncated
    nbformat.validate(  # the marker is a valid output
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", outputs=[marker])])
    )


# -- the fault suite ----------------------------------------------------------------------


@pytest.mark.kernel
@requires_sandbox
def test_infinite_loop_times_out_and_its_tree_is_gone(workspace: Workspace, faults: Faults) -> None:
    token = f"fault-{uuid.uuid4().hex}"
    record = run(workspace, faults("infinite_loop", token=token))
    assert record.status == "timed_out", record.message
    assert record.duration_s is not None and record.duration_s >= TIME_LIMIT_S
    wait_until_gone(token)  # the kernel's child, started before the loop


@pytest.mark.kernel
@requires_sandbox
def test_sleep_beyond_the_limit_times_out(workspace: Workspace, faults: Faults) -> None:
    assert run(workspace, faults("sleep_beyond_limit")).status == "timed_out"


@pytest.mark.kernel
@requires_sandbox
def test_kernel_that_kills_itself_died(workspace: Workspace, faults: Faults) -> None:
    record = run(workspace, faults("kill_self"))
    assert record.status == "kernel_died"
    assert Path(record.notebook).is_file()


@pytest.mark.kernel
@requires_sandbox
def test_memory_beyond_the_limit_is_a_memory_error(workspace: Workspace, faults: Faults) -> None:
    record = run(workspace, faults("memory_hog"))
    if CGROUPS:  # the run's cgroup holds the limit: its OOM killer ends the kernel
        assert record.status == "out_of_memory", record.message
        return
    assert record.status == "failed", record.message
    assert record.error is not None and record.error.ename == "MemoryError"
    assert record.error.cell_index == 1


@pytest.mark.kernel
@requires_sandbox
def test_fork_bomb_is_contained_by_the_process_cap(workspace: Workspace, faults: Faults) -> None:
    record = run(workspace, faults("fork_bomb"))
    assert record.status == "succeeded", record.message
    assert record.metrics["fork_exit"] == 3  # some fork was refused: the cap held
    wait_until_gone("os.waitstatus_to_exitcode")  # no process of the bomb survives


@pytest.mark.kernel
@requires_sandbox
def test_output_flood_is_cut_marked_and_flagged(workspace: Workspace, faults: Faults) -> None:
    # Six times the 10 MB budget, light enough for a loaded machine within the time limit.
    record = run(workspace, faults("output_flood", megabytes=60))
    assert record.status == "succeeded", record.message
    assert record.flags == [OUTPUT_TRUNCATED, PHASES_UNTAGGED]  # the fault has no phase tags
    assert record.metrics == {"n_predictions": 1.0}  # records after the flood still count
    executed = nbformat.read(record.notebook, as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "output truncated" in text and "50.0 MB discarded" in text
    budget = OutputBudget().stream
    assert Path(record.notebook).stat().st_size < 2 * budget
    assert (Path(record.run_dir) / "output.log").stat().st_size < 2 * budget
    stored = json.loads((Path(record.run_dir) / RECORD_FILE).read_text())
    assert stored["flags"] == [OUTPUT_TRUNCATED, PHASES_UNTAGGED]


@pytest.mark.kernel
@requires_sandbox
def test_sys_exit_is_incomplete(workspace: Workspace, faults: Faults) -> None:
    record = run(workspace, faults("sys_exit"))
    assert record.status == "incomplete"
    assert record.error is not None and record.error.ename == "SystemExit"


@pytest.mark.kernel
@requires_sandbox
def test_no_network_inside(workspace: Workspace, faults: Faults) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        record = run(workspace, faults("network", port=listener.getsockname()[1]))
        assert record.status == "succeeded", record.message
        # The sandbox has its own loopback, where nothing listens: the host's is unreachable.
        assert record.records["loopback"]["value"] == "ConnectionRefusedError:ECONNREFUSED"
        assert record.records["outside"]["value"] == "OSError:ENETUNREACH"
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected


def _secrets(workspace: Workspace, make_submission: MakeSubmission) -> list[Path]:
    other = make_submission("team-b")
    token = workspace.root / "jury" / "token.txt"
    token.parent.mkdir()
    token.write_text("juror-token-0123456789")
    return [
        other / "submission.yaml",
        other / "notebook.ipynb",
        workspace.root / "workbench.db",
        token,
        ROOT / "pyproject.toml",  # the repository around the installed package
    ]


@pytest.mark.kernel
@requires_sandbox
def test_files_outside_the_run_cannot_be_read(
    workspace: Workspace, faults: Faults, make_submission: MakeSubmission
) -> None:
    paths = _secrets(workspace, make_submission)
    record = run(workspace, faults("read_outside", paths=os.pathsep.join(map(str, paths))))
    assert record.status == "succeeded", record.message
    assert (workspace.root / "workbench.db").is_file()  # it existed during the run
    reads = record.records["reads"]["value"]
    assert reads == {str(p): "FileNotFoundError:ENOENT" for p in paths}


@pytest.mark.kernel
@requires_sandbox
def test_nothing_outside_the_run_can_be_written(
    workspace: Workspace, faults: Faults, make_submission: MakeSubmission
) -> None:
    old_run = workspace.runs_dir / "20260101T000000-000000"
    old_run.mkdir(parents=True)
    private = f"/tmp/fault-{uuid.uuid4().hex}"
    targets = [
        workspace.root / "pwned.txt",
        workspace.submissions_dir / "test-call" / "pwned.txt",
        old_run / "notebook.ipynb",
        Path(workbench.__file__).resolve().parent / "pwned.py",
        Path(sys.prefix) / "pwned.txt",
        Path("/etc/pwned"),
        Path("/usr/pwned"),
    ]
    ref = faults("write_outside", paths=os.pathsep.join(map(str, [*targets, private])))
    record = run(workspace, ref)
    assert record.status == "succeeded", record.message
    writes = record.records["writes"]["value"]
    assert writes.pop(private) == "ok"  # the sandbox's own /tmp...
    assert not Path(private).exists()  # ...is not the host's
    assert all(outcome != "ok" for outcome in writes.values()), writes
    assert not any(target.exists() for target in targets)
    inside = record.records["inside"]["value"]
    assert inside.pop("new_file") == "ok"
    assert all(outcome != "ok" for outcome in inside.values()), inside
    run_dir = Path(record.run_dir)
    assert (run_dir / "notebook-output.txt").is_file()
    assert not (run_dir / RECORD_FILE).is_symlink()
    assert json.loads((run_dir / RECORD_FILE).read_text())["status"] == "succeeded"
    assert run_dir.stat().st_uid == os.getuid()  # given back after the run


@pytest.mark.kernel
@requires_sandbox
def test_result_files_written_by_the_notebook_are_ignored(
    workspace: Workspace, faults: Faults
) -> None:
    record = run(workspace, faults("fake_results"))
    assert record.status == "succeeded", record.message
    assert (Path(record.run_dir) / "metrics.json").is_file()
    assert record.metrics == {"n_predictions": 1.0}  # not the files' 999


@pytest.mark.kernel
@requires_sandbox
def test_the_kernel_sees_only_its_run(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    write_yaml(workspace.calls_dir / "test-call.yaml", FAULT_CALL)
    data = b"x,y\n1,2\n3,4\n5,6\n"
    folder = make_submission(
        "inside",
        notebook="faults/inside_view",
        parameters={"n": 1},
        data=[{"path": "data/values.csv", "sha256": hashlib.sha256(data).hexdigest()}],
    )
    (folder / "data").mkdir()
    (folder / "data" / "values.csv").write_bytes(data)
    record = run(workspace, "test-call/inside")
    assert record.status == "succeeded", record.message
    inside = record.records["inside"]["value"]
    assert inside["rows"] == 3  # numpy, pandas, sklearn, plotly, workbench imported too
    assert inside["cwd"] == record.run_dir and inside["home"] == "/tmp"
    assert inside["hostname"] == "sandbox"
    # Its own PID namespace: bwrap's init, the kernel and, for a kernel forked into the
    # sandbox by the zygote, the placeholder that holds the namespaces.
    assert inside["processes"] <= 3
    assert inside["no_new_privs"] == "1" and int(inside["cap_eff"], 16) == 0
    if os.geteuid() == 0:
        assert inside["uid"] == sandbox.SANDBOX_UID


@pytest.mark.kernel
@requires_sandbox
def test_sandbox_scrubs_the_environment(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_DB", workspace.db_url)
    monkeypatch.setenv("JURY_TOKEN", "secret")
    make_submission(notebook="env_probe")
    record = run(workspace, "test-call/team-a")
    assert record.status == "succeeded", record.message
    names = record.records["env"]["value"]
    assert "JURY_TOKEN" not in names and "WORKBENCH_DB" not in names
    assert set(names) <= set(sandbox.ENV_ALLOWLIST) | {
        # set by ipykernel itself when it starts
        "MPLBACKEND",
        "CLICOLOR",
        "CLICOLOR_FORCE",
        "FORCE_COLOR",
        "GIT_PAGER",
        "PAGER",
        "PYDEVD_USE_FRAME_EVAL",
        "TERM",
    }


def test_bwrap_missing_runs_nothing(
    workspace: Workspace, faults: Faults, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ref = faults("sys_exit")
    monkeypatch.setattr(sandbox, "BWRAP", str(tmp_path / "missing" / "bwrap"))
    with pytest.raises(SandboxError, match="apt-get install bubblewrap"):
        run_submission(workspace, ref)  # the call itself requires the sandbox
    assert not workspace.runs_dir.exists() or not any(workspace.runs_dir.iterdir())
    store = open_store(workspace.db_url)
    try:
        assert store.runs(ref) == []
    finally:
        store.close()


# -- through the real CLI -----------------------------------------------------------------


def _cli(workspace: Workspace, *args: str, path: str | None = None) -> Any:
    env = {**os.environ, "WORKBENCH_HOME": str(workspace.root)}
    env.pop("WORKBENCH_DB", None)
    if path is not None:
        env["PATH"] = path
    exe = Path(sys.executable).parent / "workbench"
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env)


@pytest.mark.kernel
@requires_sandbox
def test_cli_parameter_arrives_as_the_same_literal(workspace: Workspace, faults: Faults) -> None:
    ref = faults("parameter_literal", text=HOSTILE_TEXT)
    done = _cli(workspace, "run", ref, "--isolation", "sandbox", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded" and summary["isolation"] == "sandbox"
    assert summary["parameters"]["text"] == HOSTILE_TEXT
    stored = json.loads((Path(summary["run_dir"]) / RECORD_FILE).read_text())
    assert stored["records"]["text"] == {"kind": "string", "value": HOSTILE_TEXT}


def test_cli_without_bwrap_says_how_to_fix_and_runs_nothing(
    workspace: Workspace, faults: Faults
) -> None:
    ref = faults("sys_exit")
    done = _cli(workspace, "run", ref, path=str(Path(sys.executable).parent))
    assert done.returncode == SandboxError.exit_code, done.stderr
    assert "apt-get install bubblewrap" in done.stderr and "--isolation process" in done.stderr
    assert not workspace.runs_dir.exists() or not any(workspace.runs_dir.iterdir())


@pytest.mark.kernel
@requires_sandbox
def test_cli_sys_exit_is_recorded_incomplete(workspace: Workspace, faults: Faults) -> None:
    done = _cli(workspace, "run", faults("sys_exit"), "--json")
    assert done.returncode == 1, done.stderr  # recorded, not succeeded
    assert json.loads(done.stdout)["status"] == "incomplete"


# -- all of them, one after another -------------------------------------------------------

EXPECTED = {
    "infinite_loop": "timed_out",
    "sleep_beyond_limit": "timed_out",
    "kill_self": "kernel_died",
    "memory_hog": "out_of_memory" if CGROUPS else "failed",
    "fork_bomb": "succeeded",
    "output_flood": "succeeded",
    "sys_exit": "incomplete",
    "network": "succeeded",
    "read_outside": "succeeded",
    "write_outside": "succeeded",
    "fake_results": "succeeded",
    "parameter_literal": "succeeded",
}


@pytest.mark.kernel
@requires_sandbox
def test_a_batch_of_every_fault_finishes_with_the_right_statuses(
    workspace: Workspace, faults: Faults, make_submission: MakeSubmission
) -> None:
    secrets = os.pathsep.join(map(str, _secrets(workspace, make_submission)))
    parameters: dict[str, dict[str, Any]] = {
        "infinite_loop": {"token": f"fault-{uuid.uuid4().hex}"},
        "network": {"port": 9},
        "read_outside": {"paths": secrets},
        "write_outside": {"paths": str(workspace.root / "pwned.txt")},
        "parameter_literal": {"text": HOSTILE_TEXT},
        # Past the 10 MB budget, yet light enough to finish well within the time limit on
        # a loaded machine (the flood's own test above prints 60 MB).
        "output_flood": {"megabytes": 30},
    }
    refs = {case: faults(case, **parameters.get(case, {})) for case in EXPECTED}
    records = {case: run(workspace, ref) for case, ref in refs.items()}
    assert {case: r.status for case, r in records.items()} == EXPECTED
    assert records["output_flood"].flags == [OUTPUT_TRUNCATED, PHASES_UNTAGGED]
    assert [case for case, r in records.items() if OUTPUT_TRUNCATED in r.flags] == ["output_flood"]
    assert records["parameter_literal"].records["text"]["value"] == HOSTILE_TEXT
    assert records["fake_results"].metrics == {"n_predictions": 1.0}
    store = open_store(workspace.db_url)
    try:
        stored = {row.submission_key: row.status for row in store.runs(call_id="test-call")}
    finally:
        store.close()
    assert stored == {ref: EXPECTED[case] for case, ref in refs.items()}
