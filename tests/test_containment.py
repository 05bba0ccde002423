"""Limits per run, not per process: each run's cgroup, its limits, its CPU, its end.

The cgroup tests need root and a writable cgroupfs (v1 or v2): elsewhere they skip with
the reason; CI runs as root, where they run. Both kernel interfaces' file writes are
also checked against fake cgroupfs trees, which need neither.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import TEST_CALL, MakeSubmission, requires_sandbox, write_yaml
from workbench.batch import run_submission
from workbench.runner import cgroups, isolation, launcher, zygote
from workbench.runner.cgroups import CgroupLimits, CgroupsUnavailable, detect
from workbench.runner.control import folder_bytes
from workbench.runner.isolation import BubblewrapIsolation, Limits, isolation_levels
from workbench.runner.metering import FakeMeter, set_process_meter
from workbench.runner.records import RunRecord
from workbench.validation import validate
from workbench.workspace import Workspace


def _cgroups_unavailable() -> str | None:
    return cgroups.unavailable_reason()


CGROUPS_UNAVAILABLE = _cgroups_unavailable()
requires_cgroups = pytest.mark.skipif(
    CGROUPS_UNAVAILABLE is not None, reason=f"no cgroups for runs here: {CGROUPS_UNAVAILABLE}"
)
RECORD = "import workbench\nworkbench.record('n_predictions', 1)"


@pytest.fixture
def no_cgroups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """This process sees no cgroup file system (as a machine without one would)."""
    monkeypatch.setenv(cgroups.ROOT_ENV, str(tmp_path / "no-cgroupfs"))
    yield
    cgroups._detected.pop(str(tmp_path / "no-cgroupfs"), None)


def notebook_submission(
    workspace: Workspace,
    make_submission: MakeSubmission,
    sub_id: str,
    cells: list[tuple[str, list[str]]],
    **protocol: Any,
) -> str:
    """A submission whose notebook is `cells` ((source, tags) each), under a call of `protocol`."""
    call = {**TEST_CALL, "protocol": {**TEST_CALL["protocol"], **protocol}}
    write_yaml(workspace.calls_dir / "test-call.yaml", call)
    folder = make_submission(sub_id)
    nb = new_notebook(cells=[new_code_cell("n = 1", metadata={"tags": ["parameters"]})])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nb.cells += [new_code_cell(source, metadata={"tags": tags}) for source, tags in cells]
    nbformat.write(nb, folder / "notebook.ipynb")
    return f"test-call/{sub_id}"


# -- the two kernel interfaces, on fake trees ---------------------------------------------


def test_v2_tree_gets_the_run_limits_and_reads_cpu_and_oom(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    found = detect(root)
    assert found.version == "v2"
    assert (root / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (root / "workbench" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    group = found.create("run-b", CgroupLimits(memory_mb=512, pids=64, cpus=1.5))
    folder = root / "workbench" / "run-b"
    assert (folder / "memory.max").read_text() == str(512 * 2**20)
    assert (folder / "pids.max").read_text() == "64"
    assert (folder / "cpu.max").read_text() == "150000 100000"
    assert group.procs_files == (str(folder / "cgroup.procs"),)
    (folder / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n")
    assert group.cpu_seconds() == 2.5
    assert group.oom_kills() == 2
    (folder / "cgroup.kill").write_text("")
    group.kill()
    assert (folder / "cgroup.kill").read_text() == "1"


def test_v2_without_the_controllers_or_writable_tree_says_why(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu io\n")
    with pytest.raises(CgroupsUnavailable, match="lacks the memory, pids controller"):
        detect(root)
    (root / "cgroup.controllers").write_text("memory pids\n")
    (root / "workbench").write_text("")  # not a folder: the parent cannot be made
    with pytest.raises(CgroupsUnavailable, match="cannot set up cgroups under"):
        detect(root)
    with pytest.raises(CgroupsUnavailable, match="no cgroup file system"):
        detect(tmp_path / "missing")


def test_v1_tree_nests_under_the_own_cgroup_per_controller(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    for controller in ("memory", "pids", "cpu,cpuacct", "freezer"):
        (root / controller).mkdir(parents=True)
        (root / controller / "cgroup.procs").write_text("")
    (root / "memory/jobs/42").mkdir(parents=True)  # this process's own memory cgroup
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text("8:pids:/\n4:memory:/jobs/42\n2:cpu,cpuacct:/\n6:freezer:/\n")
    found = detect(root, self_cgroup)
    assert found.version == "v1"
    group = found.create("run-x", CgroupLimits(memory_mb=256, pids=32, cpus=0.5))
    memory = root / "memory/jobs/42/workbench/run-x"
    assert (memory / "memory.limit_in_bytes").read_text() == str(256 * 2**20)
    assert (root / "pids/workbench/run-x/pids.max").read_text() == "32"
    cpu = root / "cpu,cpuacct/workbench/run-x"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert set(group.procs_files) == {
        str(memory / "cgroup.procs"),
        str(root / "pids/workbench/run-x/cgroup.procs"),
        str(cpu / "cgroup.procs"),
        str(root / "freezer/workbench/run-x/cgroup.procs"),
    }
    (cpu / "cpuacct.usage").write_text("1250000000\n")
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert group.cpu_seconds() == 1.25
    assert group.oom_kills() == 1


def test_v1_without_a_pids_controller_says_why(tmp_path: Path) -> None:
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "cgroup.procs").write_text("")
    with pytest.raises(CgroupsUnavailable, match="no cgroup pids controller"):
        detect(tmp_path, tmp_path / "none")


# -- without cgroups: said, and the per-process limits kept --------------------------------


def test_validate_and_the_record_say_when_runs_get_no_cgroup(
    workspace: Workspace, make_submission: MakeSubmission, no_cgroups: None
) -> None:
    report = validate(workspace, [workspace.calls_dir / "test-call.yaml"])
    assert report.ok
    assert any("get no cgroup on this machine (no cgroup file system" in n for n in report.notes)


@pytest.mark.kernel
def test_a_run_without_cgroups_keeps_per_process_limits_and_says_so(
    workspace: Workspace, make_submission: MakeSubmission, no_cgroups: None
) -> None:
    probe = (
        "import resource\nworkbench.record('as_limit', resource.getrlimit(resource.RLIMIT_AS)[0])"
    )
    ref = notebook_submission(workspace, make_submission, "plain", [(RECORD, []), (probe, [])])
    record = run_submission(workspace, ref)
    assert record.status == "succeeded", record.message
    assert record.containment is not None and record.containment.cgroup is None
    assert "no cgroup file system" in (record.containment.reason or "")
    assert record.metrics["as_limit"] == 4096 * 2**20


# -- a run's own cgroup --------------------------------------------------------------------

CHILDREN_300MB = """
import os, time
pids = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (300 * 2**20)  # written, so resident
        time.sleep(3)
        os._exit(0)
    pids.append(pid)
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
"""


@pytest.mark.kernel
@requires_cgroups
def test_children_past_the_run_memory_limit_are_out_of_memory(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    ref = notebook_submission(
        workspace, make_submission, "hog", [(CHILDREN_300MB, []), (RECORD, [])], memory_limit_mb=512
    )
    record = run_submission(workspace, ref)
    assert record.status == "out_of_memory", record.message
    assert "memory limit of 512 MB" in record.message
    assert record.containment is not None and record.containment.cgroup in ("v1", "v2")
    assert not any(p.name.endswith(record.run_id) for p in _run_groups())


def _run_groups() -> list[Path]:
    found = cgroups.machine_cgroups()
    return [child for base in found.bases.values() for child in base.iterdir() if child.is_dir()]


TMP_FILL = """
import errno
full = {}
for folder in ("/tmp", "/dev/shm"):
    try:
        with open(f"{folder}/fill", "wb") as handle:
            for _ in range(32):
                handle.write(b"x" * 2**20)
                handle.flush()
        full[folder] = 0
    except OSError as exc:
        full[folder] = int(exc.errno == errno.ENOSPC)
workbench.record("tmp_full", full["/tmp"])
workbench.record("shm_full", full["/dev/shm"])
"""


@pytest.mark.kernel
@requires_sandbox
def test_a_write_past_the_private_tmp_size_fails_inside_the_run(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    ref = notebook_submission(
        workspace, make_submission, "tmp", [(RECORD, []), (TMP_FILL, [])], tmp_size_mb=16
    )
    record = run_submission(workspace, ref, isolation="sandbox")
    assert record.status == "succeeded", record.message
    assert record.metrics["tmp_full"] == 1 and record.metrics["shm_full"] == 1


BOMB = """
import os, time
deadline, capped, children = time.monotonic() + 4, False, []
for _ in range(12):
    try:
        pid = os.fork()
    except OSError:
        capped = True
        break
    if pid == 0:
        children = []
        continue
    children.append(pid)
time.sleep(max(0.0, deadline - time.monotonic()))
for pid in children:
    capped = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 3 or capped
os._exit(3 if capped else 0)
"""
# Exit status 3: some fork was refused (EAGAIN), the run's process limit held.
BOMB_CELL = (
    "import subprocess, sys\n"
    f"done = subprocess.run([sys.executable, '-c', {BOMB!r}], timeout=60)\n"
    "workbench.record('fork_exit', done.returncode)"
)
INNOCENT = """
import subprocess, sys, threading, time
time.sleep(1)  # while the other run's bomb is at its peak
threads = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(32)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


@pytest.mark.kernel
@requires_sandbox
@requires_cgroups
def test_a_fork_bomb_beside_an_innocent_run_leaves_it_untouched(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    bomb = notebook_submission(
        workspace, make_submission, "bomb", [(RECORD, []), (BOMB_CELL, [])], pids_limit=64
    )
    innocent = notebook_submission(
        workspace, make_submission, "innocent", [(INNOCENT, []), (RECORD, [])], pids_limit=64
    )
    records: dict[str, RunRecord] = {}

    def run(ref: str) -> None:
        records[ref] = run_submission(workspace, ref, isolation="sandbox")

    threads = [threading.Thread(target=run, args=(ref,)) for ref in (bomb, innocent)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert records[innocent].status == "succeeded", records[innocent].message
    assert records[bomb].status == "succeeded", records[bomb].message
    assert records[bomb].metrics["fork_exit"] == 3  # some fork was refused: pids.max held


DAEMON = """
import os, sys, time
marker = "{marker}"
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "while True: pass", marker])
    os._exit(0)
os.wait()
time.sleep(0.5)
"""


@pytest.mark.kernel
@requires_cgroups
def test_a_double_forked_daemon_at_process_level_ends_with_its_run(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    marker = f"daemon-{uuid.uuid4().hex}"
    cell = DAEMON.replace("{marker}", marker)
    ref = notebook_submission(workspace, make_submission, "daemon", [(cell, []), (RECORD, [])])
    try:
        record = run_submission(workspace, ref, isolation="process")
        assert record.status == "succeeded", record.message
        left = [
            p
            for p in psutil.process_iter(["cmdline", "status"])
            if marker in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE
        ]
        assert [p.pid for p in left] == []
    finally:
        for proc in psutil.process_iter(["cmdline"]):  # a daemon that survived spins no more
            if marker in (proc.info["cmdline"] or []):
                proc.kill()


FORKED_WORK = """
import os, time
for _ in range(100):
    pid = os.fork()
    if pid == 0:
        start = time.process_time()
        while time.process_time() - start < 0.03:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
"""
ONE_PROCESS_WORK = """
import time
start = time.process_time()
while time.process_time() - start < 3.0:
    pass
"""


@pytest.fixture
def fake_meter() -> Iterator[None]:
    set_process_meter(FakeMeter())
    yield
    set_process_meter(None)


@pytest.mark.kernel
@pytest.mark.parametrize(
    "with_cgroup",
    [
        pytest.param(True, marks=requires_cgroups, id="cgroup"),
        pytest.param(False, id="reaped-children"),
    ],
)
def test_short_lived_children_are_metered(
    workspace: Workspace,
    make_submission: MakeSubmission,
    fake_meter: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    with_cgroup: bool,
) -> None:
    if not with_cgroup:
        monkeypatch.setenv(cgroups.ROOT_ENV, str(tmp_path / "no-cgroupfs"))
    seconds = {}
    for name, work in (("forked", FORKED_WORK), ("single", ONE_PROCESS_WORK)):
        ref = notebook_submission(
            workspace, make_submission, name, [(work, ["train"]), (RECORD, [])]
        )
        record = run_submission(workspace, ref, isolation="process")
        assert record.status == "succeeded", record.message
        assert record.energy is not None and record.energy.measured, record.energy
        assert (record.containment and record.containment.cgroup is not None) == with_cgroup
        seconds[name] = record.energy.cpu_seconds or 0.0
    assert seconds["single"] >= 3.0
    assert seconds["forked"] >= 0.9 * seconds["single"], seconds


def test_cgroup_join_writes_this_process_into_each_file(tmp_path: Path) -> None:
    files = [tmp_path / "a", tmp_path / "b"]
    cgroups.join([str(f) for f in files])
    assert [f.read_text() for f in files] == [str(os.getpid())] * 2


# -- the wiring: who joins the cgroup, and the run folder's size ---------------------------


def test_a_contained_kernel_joins_its_cgroup_instead_of_per_process_caps(tmp_path: Path) -> None:
    limits = Limits(
        memory_mb=512, cgroup=["/cg/memory/run/cgroup.procs", "/cg/pids/run/cgroup.procs"]
    )
    assert limits.cgroup == ("/cg/memory/run/cgroup.procs", "/cg/pids/run/cgroup.procs")
    cmd = isolation_levels.get("process").kernel_command(["python", "-m", "k"], tmp_path, limits)
    assert (
        "--cgroup=/cg/memory/run/cgroup.procs" in cmd
        and "--cgroup=/cg/pids/run/cgroup.procs" in cmd
    )
    assert not any(a.startswith(("--memory-mb", "--processes")) for a in cmd)
    plain = isolation_levels.get("process").kernel_command(
        ["python", "-m", "k"], tmp_path, Limits(memory_mb=512)
    )
    assert "--memory-mb=512" in plain and not any(a.startswith("--cgroup") for a in plain)
    args = launcher.parse(cmd[4:])
    assert args.cgroup == list(limits.cgroup) and args.memory_mb is None


@requires_sandbox
def test_a_sandboxed_kernel_joins_its_cgroup_before_bwrap(tmp_path: Path) -> None:
    level = BubblewrapIsolation()
    procs = (str(tmp_path / "cgroup.procs"),)
    cmd = level.kernel_command(
        [sys.executable, "-m", zygote.KERNEL_MODULE, "-f", "k.json"],
        tmp_path,
        Limits(memory_mb=512, tmp_size_mb=16, cgroup=procs),
    )
    bwrap = cmd.index(shutil.which(isolation.BWRAP) or isolation.BWRAP)
    outer = launcher.parse(cmd[4 : bwrap + 1])  # its command: bwrap
    assert outer.cgroup == list(procs)  # outside: the launcher inside cannot see /sys
    inside = cmd[cmd.index("--chdir") :]
    assert not any(a.startswith("--cgroup") for a in inside)
    assert cmd[cmd.index("/tmp") - 3 : cmd.index("/tmp")] == ["--size", str(16 * 2**20), "--tmpfs"]
    if level.fork is not None:  # as root, forked by the zygote: its child joins first
        request = zygote.fork_request(cmd, {"cwd": str(tmp_path), "env": {}}, level.fork)
        assert request is not None and request["sandbox"]["cgroup"] == list(procs)


def test_folder_bytes_counts_each_file_once_and_follows_no_link(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a").write_bytes(b"x" * 2**20)
    os.link(tmp_path / "sub" / "a", tmp_path / "hardlink")
    (tmp_path / "outside").symlink_to("/usr")
    used = folder_bytes(tmp_path)
    assert 2**20 <= used < 2 * 2**20


DISK_FILL = """
import time
for i in range(8):
    with open(f"part-{i}", "wb") as handle:
        handle.write(b"x" * 8 * 2**20)
time.sleep(30)
"""


@pytest.mark.kernel
def test_a_run_writing_past_its_disk_limit_is_killed(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    ref = notebook_submission(
        workspace, make_submission, "disk", [(DISK_FILL, []), (RECORD, [])], disk_limit_mb=32
    )
    record = run_submission(workspace, ref)
    assert record.status == "kernel_died", record.message
    assert record.error is not None and record.error.ename == "DiskLimitExceeded"
    assert "disk limit of 32 MB" in record.message


def test_every_final_status_has_its_label_french_first() -> None:
    from workbench.i18n import TEXTS
    from workbench.runner.records import FINAL_STATUSES, SETTLED_STATUSES

    assert "out_of_memory" in SETTLED_STATUSES  # the team's notebook's doing: not run again
    for status in FINAL_STATUSES:
        assert list(TEXTS[f"status_{status}"]) == ["fr", "en"]
