"""Kernels forked from the zygote: fresh processes, faithful start-up, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import ROOT, TEST_CALL, MakeSubmission, requires_sandbox, write_yaml
from workbench.batch import run_submission
from workbench.runner import zygote
from workbench.runner.execute import execute_submission
from workbench.runner.records import RunRecord
from workbench.workspace import Workspace

pytestmark = pytest.mark.kernel

# Kernels are forked into their sandbox only when the runner is root.
forked_into_sandbox = pytest.mark.skipif(os.geteuid() != 0, reason="the runner is not root")

PROBE = """\
import os, sys
import workbench
workbench.record("n_predictions", 1)
workbench.record("parent_pid", float(os.getppid()))
workbench.record("seen_before", float(hasattr(sys, "_workbench_probe")))
sys._workbench_probe = True
workbench.record("hash_of_name", float(hash("workbench") % 1_000_000))
workbench.record("forked", float("workbench.runner.zygote" in " ".join(sys.orig_argv)))
"""


def probe_submission(make_submission: MakeSubmission, sub_id: str, code: str = PROBE) -> Path:
    folder = make_submission(sub_id, notebook="ok", template="custom")
    params = new_code_cell("n = 1")
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, new_code_cell(code)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, folder / "notebook.ipynb")
    return folder


def test_each_run_gets_a_fresh_kernel_forked_from_the_zygote(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    probe_submission(make_submission, "first")
    probe_submission(make_submission, "second")
    first = run_submission(workspace, "test-call/first")
    second = run_submission(workspace, "test-call/second")
    assert first.status == second.status == "succeeded", (first.message, second.message)
    parent = float(zygote.shared_zygote().process.pid)
    assert first.metrics["parent_pid"] == second.metrics["parent_pid"] == parent
    assert first.metrics["forked"] == second.metrics["forked"] == 1.0  # not exec'd
    # What the first kernel did is not in the second: each is its own process.
    assert first.metrics["seen_before"] == second.metrics["seen_before"] == 0.0


def test_turned_off_kernels_are_started_by_this_process(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(zygote.DISABLE_ENV, "0")
    probe_submission(make_submission, "plain")
    record = run_submission(workspace, "test-call/plain")
    assert record.status == "succeeded", record.message
    assert record.metrics["parent_pid"] == float(os.getpid())
    assert record.metrics["forked"] == 0.0


def test_a_kernel_asking_for_another_start_up_gets_it(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    zygote.shared_zygote()  # started without a hash seed
    monkeypatch.setenv("PYTHONHASHSEED", "1234")
    probe_submission(make_submission, "seeded")
    # `none` passes the environment through: the kernel must honour the seed.
    record = run_submission(workspace, "test-call/seeded", isolation="none")
    assert record.status == "succeeded", record.message
    expected = subprocess.run(
        [sys.executable, "-c", "print(hash('workbench') % 1_000_000)"],
        env={**os.environ, "PYTHONHASHSEED": "1234"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert record.metrics["hash_of_name"] == float(expected)
    assert record.metrics["forked"] == 0.0  # the child exec'd a kernel of its own


def test_fork_requests_only_for_this_interpreters_ipykernel() -> None:
    launcher = [sys.executable, "-I", "-m", "workbench.runner.launcher", "--log=/tmp/k.log", "--"]
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "/tmp/k.json"]
    request = zygote.fork_request([*launcher, *kernel], {"cwd": "/tmp", "env": {"A": "1"}})
    assert request == {
        "argv": ["--log=/tmp/k.log", "--", *kernel],
        "cwd": "/tmp",
        "env": {"A": "1"},
    }
    assert zygote.fork_request(kernel, {}) is None  # no launcher
    assert zygote.fork_request(["bwrap", "--unshare-net", "--", *launcher, *kernel], {}) is None
    other_kernel = [sys.executable, "-m", "other_kernel", "-f", "/tmp/k.json"]
    assert zygote.fork_request([*launcher, *other_kernel], {}) is None
    other_python = ["/usr/bin/false", "-m", "ipykernel_launcher", "-f", "/tmp/k.json"]
    assert zygote.fork_request([*launcher, *other_python], {}) is None


def test_a_scrubbed_environment_is_scrubbed_before_it_reaches_the_zygote() -> None:
    launcher = [sys.executable, "-I", "-m", "workbench.runner.launcher", "--scrub-env", "--"]
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "/tmp/k.json"]
    env = {"PATH": "/usr/bin", "WORKBENCH_DB": "postgresql://user:secret@db/workbench"}
    request = zygote.fork_request([*launcher, *kernel], {"cwd": "/tmp", "env": env})
    assert request is not None
    assert request["env"] == {"PATH": "/usr/bin"}


def _connection_file(folder: Path) -> Path:
    from jupyter_client.connect import write_connection_file

    path = folder / "kernel.json"
    write_connection_file(str(path))
    return path


def test_a_forked_kernel_can_be_killed_and_reports_how_it_ended(tmp_path: Path) -> None:
    connection = _connection_file(tmp_path)
    argv = [f"--log={tmp_path / 'kernel.log'}", "--", sys.executable, "-m", "ipykernel_launcher"]
    kernel = zygote.shared_zygote().spawn(
        [*argv, "-f", str(connection)], str(tmp_path), dict(os.environ)
    )
    assert kernel.poll() is None
    assert os.getsid(kernel.pid) == kernel.pid  # its own session, as Popen would make it
    kernel.kill()
    assert kernel.wait(timeout=30) == -signal.SIGKILL
    assert kernel.poll() == -signal.SIGKILL
    kernel.kill()  # a second kill of an ended kernel is harmless


COORDINATOR = """\
import os, sys, time
sys.path.insert(0, {root!r})
from jupyter_client.connect import write_connection_file
from workbench.runner import zygote
write_connection_file({connection!r})
kernel = zygote.shared_zygote().spawn(
    ["--", sys.executable, "-m", "ipykernel_launcher", "-f", {connection!r}],
    {folder!r},
    dict(os.environ),
)
print(zygote.shared_zygote().process.pid, kernel.pid, flush=True)
time.sleep(600)
"""


def test_kernels_die_with_a_killed_coordinator(tmp_path: Path) -> None:
    script = COORDINATOR.format(
        root=str(ROOT), connection=str(tmp_path / "kernel.json"), folder=str(tmp_path)
    )
    coordinator = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    assert coordinator.stdout is not None
    zygote_pid, kernel_pid = (int(p) for p in coordinator.stdout.readline().split())
    kernel = psutil.Process(kernel_pid)
    assert kernel.ppid() == zygote_pid
    coordinator.kill()  # SIGKILL: no clean-up of its own
    coordinator.wait()
    _, alive = psutil.wait_procs([kernel, psutil.Process(zygote_pid)], timeout=30)
    assert not alive, alive


SLEEPY = """\
import time
import workbench
time.sleep(0.3)
workbench.record("n_predictions", 1)
"""


def test_cells_wait_for_a_slot_without_using_their_time_limit(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    call = dict(TEST_CALL, protocol={**TEST_CALL["protocol"], "time_limit_s": 3})
    write_yaml(workspace.root / "calls" / "test-call.yaml", call)
    folders = [probe_submission(make_submission, f"s{i}", SLEEPY) for i in range(2)]
    from workbench.submissions import validate_submission

    slot = threading.BoundedSemaphore(1)
    slot.acquire()  # held longer than the time limit before any cell may run
    records: list[RunRecord] = []

    def run(folder: Path) -> None:
        sub, loaded = validate_submission(folder, workspace)
        records.append(execute_submission(folder, sub, loaded, workspace.runs_dir, slot=slot))

    threads = [threading.Thread(target=run, args=(f,)) for f in folders]
    for thread in threads:
        thread.start()
    time.sleep(4)
    slot.release()
    for thread in threads:
        thread.join()
    assert [r.status for r in records] == ["succeeded", "succeeded"], [r.message for r in records]
    # One slot: the two notebooks' cells never ran at the same time.
    first, second = sorted(
        (min(c.start for c in r.cells), max(c.end for c in r.cells)) for r in records
    )
    assert first[1] <= second[0]
    # The cell slept 0.3 s: its timing covers its execution, not just its sending.
    sleepy = [c for r in records for c in r.cells if c.index == 2]
    assert len(sleepy) == 2 and all(c.end - c.start >= 0.3 for c in sleepy)


def test_zygote_process_holds_no_secret_of_the_coordinator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKBENCH_DB", "postgresql://user:secret@db/workbench")
    z = zygote.Zygote()
    try:
        environ = psutil.Process(z.process.pid).environ()
        assert "WORKBENCH_DB" not in environ
        assert psutil.Process(z.process.pid).cwd() == "/"
    finally:
        z.close()


def test_zygote_forks_from_a_single_thread(tmp_path: Path) -> None:
    connection = _connection_file(tmp_path)
    z = zygote.shared_zygote()
    # It answers only once its imports are done: forking is safe from one thread only.
    kernel = z.spawn(
        ["--", sys.executable, "-m", "ipykernel_launcher", "-f", str(connection)],
        str(tmp_path),
        dict(os.environ),
    )
    kernel.kill()
    assert psutil.Process(z.process.pid).num_threads() == 1


KILL_THE_ZYGOTE = """\
import os, signal, time
import workbench
workbench.record("n_predictions", 1)
os.kill(os.getppid(), signal.SIGKILL)
time.sleep(60)
"""


def test_a_zygote_that_dies_takes_its_kernel_with_it_and_the_next_run_gets_a_new_one(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    probe_submission(make_submission, "killer", KILL_THE_ZYGOTE)
    probe_submission(make_submission, "after")
    old = zygote.shared_zygote().process.pid
    record = run_submission(workspace, "test-call/killer")
    # Seen dead at once, not waited for until the time limit.
    assert record.status == "kernel_died", record.message
    after = run_submission(workspace, "test-call/after")
    assert after.status == "succeeded", after.message
    assert after.metrics["parent_pid"] != float(old)
    assert after.metrics["forked"] == 1.0


def test_answers_go_to_the_request_that_asked(tmp_path: Path) -> None:
    z = zygote.shared_zygote()
    folders = [tmp_path / f"k{i}" for i in range(4)]
    kernels: dict[Path, zygote.ForkedKernel] = {}

    def spawn(folder: Path) -> None:
        folder.mkdir()
        connection = _connection_file(folder)
        argv = ["--", sys.executable, "-m", "ipykernel_launcher", "-f", str(connection)]
        kernels[folder] = z.spawn(argv, str(folder), dict(os.environ))

    threads = [threading.Thread(target=spawn, args=(f,)) for f in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        for folder, kernel in kernels.items():
            deadline = time.monotonic() + 30
            while psutil.Process(kernel.pid).cwd() != str(folder):
                assert time.monotonic() < deadline, (folder, kernel.pid)
                time.sleep(0.05)
    finally:
        for kernel in kernels.values():
            kernel.kill()
    assert len(kernels) == 4


def test_a_child_that_fails_at_once_is_reported_not_lost(tmp_path: Path) -> None:
    argv = ["--", sys.executable, "-m", "ipykernel_launcher", "-f", "kernel.json"]
    kernel = zygote.shared_zygote().spawn(argv, str(tmp_path / "missing"), dict(os.environ))
    assert kernel.wait(timeout=30) == 1  # chdir failed in the child


def test_watchdog_kills_a_kernel_whose_start_outlasted_the_time_limit() -> None:
    from workbench.runner.execute import RunControl

    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    control = RunControl(deadline=time.monotonic() + 0.2)
    with control.watchdog():
        time.sleep(0.6)  # the deadline passes before any pid is known
        control.kernel_pid = sleeper.pid
        assert sleeper.wait(timeout=30) == -signal.SIGKILL
    assert control.timed_out


SANDBOX_PROBE = """\
import os, socket, sys
import workbench
workbench.record("n_predictions", 1)
workbench.record("forked", float("workbench.runner.zygote" in " ".join(sys.orig_argv)))
workbench.record("uid", float(os.getuid()))
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
workbench.record("cap_bounding", float(int(status["CapBnd"].strip(), 16)))
workbench.record("no_new_privs", float(status["NoNewPrivs"].strip()))
workbench.record("hostname_is_sandbox", float(socket.gethostname() == "sandbox"))
"""


@requires_sandbox
@forked_into_sandbox
def test_a_sandboxed_kernel_is_forked_into_its_own_sandbox(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    probe_submission(make_submission, "boxed", SANDBOX_PROBE)
    record = run_submission(workspace, "test-call/boxed", isolation="sandbox")
    assert record.status == "succeeded", record.message
    assert record.metrics["forked"] == 1.0
    assert record.metrics["uid"] == 65534.0
    assert record.metrics["cap_bounding"] == 0.0
    assert record.metrics["no_new_privs"] == 1.0
    assert record.metrics["hostname_is_sandbox"] == 1.0


INTERRUPTIBLE = """\
import pathlib, time
import workbench
workbench.record("n_predictions", 1)
pathlib.Path("sleeping").write_text("")
time.sleep(60)
"""


@requires_sandbox
@forked_into_sandbox
def test_an_interrupt_reaches_a_kernel_forked_into_a_sandbox(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    probe_submission(make_submission, "interrupted", INTERRUPTIBLE)
    keeper = zygote.shared_zygote().process.pid

    def interrupt() -> None:
        # jupyter_client interrupts a kernel with SIGINT to its process group, whose
        # leader is the process outside the sandbox that keeps the kernel.
        deadline = time.monotonic() + 60
        while not list(workspace.runs_dir.glob("*/sleeping")):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for child in psutil.Process(keeper).children():
            os.kill(child.pid, signal.SIGINT)

    thread = threading.Thread(target=interrupt)
    thread.start()
    record = run_submission(workspace, "test-call/interrupted", isolation="sandbox")
    thread.join()
    assert record.status == "failed", record.message
    assert record.error is not None and record.error.ename == "KeyboardInterrupt"


@requires_sandbox
@forked_into_sandbox
def test_a_sandboxed_kernels_end_is_reported_as_its_keepers(tmp_path: Path) -> None:
    from workbench.runner.isolation import Limits, isolation_levels

    level = isolation_levels.get("sandbox")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    connection = _connection_file(run_dir)
    kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection)]
    cmd = level.kernel_command(kernel_cmd, run_dir, Limits(memory_mb=2048))
    request = zygote.fork_request(cmd, {}, getattr(level, "fork", None))
    assert request is not None and "sandbox" in request
    keeper = zygote.shared_zygote().spawn(**request)
    try:
        deadline = time.monotonic() + 30
        while not (kernels := _sandboxed_kernels(keeper.pid)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert kernels[0].uids().real == 65534
        kernels[0].kill()
        # The keeper ends the way its kernel did: killed.
        assert keeper.wait(timeout=30) == -signal.SIGKILL
    finally:
        keeper.kill()
        level.cleanup(run_dir)


def _sandboxed_kernels(keeper: int) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(keeper).children(recursive=True)
        if "ipykernel_launcher" in " ".join(p.cmdline()) or p.uids().real == 65534
    ]
