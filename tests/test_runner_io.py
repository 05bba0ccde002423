"""Runner I/O: nothing the notebook made is followed, a bad job never stops a batch, and
runs a killed coordinator left `running` end `abandoned`.

Each test is a recipe that once worked: a cell's `os.symlink('/etc/shadow', 'loot')` made a
Dask worker ship the host's file back; a FIFO or an unreadable link aborted the batch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import MakeSubmission, requires_sandbox
from workbench import i18n
from workbench.batch import run_batch
from workbench.runner import records, wire
from workbench.runner.records import Fingerprint, RunRecord, coordinator_id
from workbench.store import open_store
from workbench.submissions import load_submission
from workbench.workspace import Workspace

SECRET = "root:$6$host-secret:19000:0:99999:7:::\n"


def _plant(run_dir: Path, outside: Path) -> None:
    """What a hostile notebook leaves in its run folder besides its own files."""
    (run_dir / "own.txt").write_text("made by the run")
    os.symlink(outside, run_dir / "loot")
    os.symlink(run_dir / "own.txt", run_dir / "inner-link")
    os.symlink(run_dir / "nowhere", run_dir / "dangling")
    os.mkfifo(run_dir / "pipe")  # reading it would block the worker forever
    (run_dir / "folder").mkdir()
    (run_dir / "folder" / "nested.txt").write_text("not packed")
    os.link(outside, run_dir / "hard")


def test_packing_sends_only_the_run_folder_own_regular_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "shadow"
    outside.write_text(SECRET)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _plant(run_dir, outside)
    (run_dir / "big.bin").write_bytes(b"x" * 2000)
    monkeypatch.setattr(wire, "MAX_FILE_BYTES", 1000)
    files, skipped = wire.pack_run_folder(run_dir)
    assert files == {"own.txt": b"made by the run"}
    assert skipped == {
        "big.bin": "larger than 1000 bytes",
        "dangling": "a symbolic link",
        "folder": "not a regular file",
        "hard": "a hard link",
        "inner-link": "a symbolic link",
        "loot": "a symbolic link",
        "pipe": "not a regular file",
    }


def test_packing_stops_at_the_run_folder_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(b"x" * 400)
    monkeypatch.setattr(wire, "MAX_RUN_BYTES", 1000)
    files, skipped = wire.pack_run_folder(tmp_path)
    assert sorted(files) == ["a", "b"] and list(skipped) == ["c"]


def test_landing_writes_plain_names_only(tmp_path: Path) -> None:
    record = _record("test-call/x", "20261201T000000-aaaaaa", None)
    result = {
        "record": record.model_dump(mode="json"),
        "files": {"../../escape": b"1", "executed.ipynb": b"{}", "..": b"2"},
    }
    landed = wire.land(result, tmp_path / "runs")
    assert sorted(p.name for p in Path(landed.run_dir).iterdir()) == [
        "escape",
        "executed.ipynb",
    ]
    assert not (tmp_path / "escape").exists()


HOSTILE_CELL = """\
import os
open('own.txt', 'w').write('made by the run')
os.symlink({outside!r}, 'loot')
os.mkfifo('pipe')
"""


@pytest.mark.kernel
def test_a_worker_never_ships_what_a_link_points_at(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    outside = tmp_path / "shadow"
    outside.write_text(SECRET)
    folder = make_submission("hostile", notebook="untagged", parameters={})
    nb = new_notebook(
        cells=[
            new_code_cell(HOSTILE_CELL.format(outside=str(outside))),
            new_code_cell("import workbench\nworkbench.record('n_predictions', 1)"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(nb, folder / "notebook.ipynb")
    sub = load_submission(folder)
    payload = wire.ship(
        folder,
        sub,
        workspace.call("test-call"),
        run_id="20261201T000000-bbbbbb",
        isolation="process",
        kernel_name="python3",
    )
    result = wire.remote_execute(payload)  # what a Dask worker runs, here in-process
    assert result["record"]["status"] == "succeeded", result["record"]["message"]
    assert "loot" not in result["files"] and "pipe" not in result["files"]
    assert all(SECRET.encode() not in content for content in result["files"].values())
    landed = wire.land(result, tmp_path / "runs")
    assert landed.skipped_files == {"loot": "a symbolic link", "pipe": "not a regular file"}
    assert (Path(landed.run_dir) / "own.txt").read_text() == "made by the run"


def _record(key: str, run_id: str, coordinator: str | None) -> RunRecord:
    fingerprint = Fingerprint(
        notebook_sha256="0" * 64,
        parameters_sha256="0" * 64,
        python="3",
        packages_sha256="0" * 64,
        kernel="python3",
    )
    return RunRecord(
        run_id=run_id,
        submission=key,
        call=key.split("/")[0],
        status="running",
        started_at=dt.datetime.now(dt.UTC),
        fingerprint=fingerprint,
        isolation="process",
        notebook="executed.ipynb",
        run_dir=run_id,
        coordinator=coordinator,
    )


@pytest.mark.kernel
def test_a_job_that_raises_is_its_own_problem_and_the_batch_goes_on(
    workspace: Workspace, make_submission: MakeSubmission, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.runner import execute

    make_submission("crash", parameters={"n": 5})
    make_submission("innocent")
    real = execute.execute_submission

    def flaky(folder: Path, sub: Any, *args: Any, **kwargs: Any) -> RunRecord:
        if sub.id == "crash":
            kwargs["on_start"](_record(sub.key, kwargs["run_id"], None))
            raise PermissionError(13, "Permission denied", "loot")
        return real(folder, sub, *args, **kwargs)

    monkeypatch.setattr(execute, "execute_submission", flaky)
    report = run_batch(workspace, "test-call", workers=1)
    assert [r.submission for r in report.records] == ["test-call/innocent"]
    assert report.records[0].status == "succeeded"
    assert report.failed == [("crash", "PermissionError: [Errno 13] Permission denied: 'loot'")]
    with open_store(workspace.db_url) as store:
        statuses = {r.submission_key: r.status for r in store.runs(call_id="test-call")}
    # Stored `running` when it started, it ends as a runner fault: run again next time.
    assert statuses == {"test-call/crash": "error", "test-call/innocent": "succeeded"}


def _gone_coordinator() -> str:
    code = "from workbench.runner.records import coordinator_id; print(coordinator_id())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_next_batch_marks_abandoned_only_runs_whose_coordinator_is_gone(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    folder = make_submission("left", state="draft")  # a draft: the batch itself runs nothing
    sub = load_submission(folder)
    host = coordinator_id().split("/")[0]
    runs = {
        "20261201T000001-000001": _gone_coordinator(),  # killed: this machine, process ended
        "20261201T000002-000002": coordinator_id(),  # another batch, live, in this process
        "20261201T000003-000003": f"another-{host}/1/1.00",  # another machine: cannot tell
        "20261201T000004-000004": None,  # an older record: no coordinator named
    }
    with open_store(workspace.db_url) as store:
        store.register(workspace.call("test-call"), sub)
        for run_id, coordinator in runs.items():
            store.start_run(_record(sub.key, run_id, coordinator))
    before = dt.datetime.now(dt.UTC)
    report = run_batch(workspace, "test-call")
    assert report.abandoned == ["20261201T000001-000001"]
    with open_store(workspace.db_url) as store:
        rows = {r.run_id: r for r in store.runs(call_id="test-call")}
        assert store.mark_abandoned() == []  # once only
    assert {k: r.status for k, r in rows.items()} == {
        "20261201T000001-000001": "abandoned",
        "20261201T000002-000002": "running",
        "20261201T000003-000003": "running",
        "20261201T000004-000004": "running",
    }
    abandoned = rows["20261201T000001-000001"]
    assert abandoned.finished_at is not None
    finished = abandoned.finished_at.replace(tzinfo=abandoned.finished_at.tzinfo or dt.UTC)
    assert finished >= before.replace(microsecond=0) - dt.timedelta(seconds=1)
    assert abandoned.record["status"] == "abandoned"
    assert "ended before it finished" in abandoned.record["message"]


def test_a_reused_pid_is_not_the_coordinator() -> None:
    host, pid, _started = coordinator_id().split("/")
    assert not records.coordinator_gone(coordinator_id())
    assert records.coordinator_gone(f"{host}/{pid}/1.00")  # same pid, another start time
    assert not records.coordinator_gone(None)


def test_every_status_is_listed_once_and_labelled_in_french_and_english() -> None:
    statuses = typing.get_args(records.Status)
    assert len(set(statuses)) == len(statuses)
    assert len(set(records.FINAL_STATUSES)) == len(records.FINAL_STATUSES)
    assert set(records.FINAL_STATUSES) == set(statuses) - {"running"}
    assert "abandoned" not in records.SETTLED_STATUSES
    for status in statuses:
        assert i18n.status_label(status, "fr") != status
        assert i18n.status_label(status, "en")
    assert i18n.status_label("abandoned", "fr").startswith("abandonné")


FORGED_COUNT = """\
import pandas as pd
import workbench
predictions = pd.DataFrame({"truth": [1.0, 2.0, 3.0], "ai": [1.0, 2.0, 3.5], "baseline": [2.0] * 3})
workbench.record("primary_metric", {"name": "mae", "direction": "lower"})
workbench.record("ai.mae", 0.5 / 3)
workbench.record("baseline.mae", 2.0 / 3)
workbench.record("n_predictions", 10**12)
workbench.record("predictions", predictions)
"""


def _inference_cell(source: str) -> Any:
    return new_code_cell(source, metadata={"tags": ["inference"]})


@pytest.mark.kernel
def test_the_count_of_predictions_is_the_tables_and_a_forged_one_is_flagged(
    workspace: Workspace, make_submission: MakeSubmission
) -> None:
    from workbench.runner.execute import execute_submission
    from workbench.runner.metering import FakeMeter

    folder = make_submission("forger", notebook="untagged", parameters={})
    nb = new_notebook(
        cells=[_inference_cell(FORGED_COUNT)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(nb, folder / "notebook.ipynb")
    record = execute_submission(
        folder,
        load_submission(folder),
        workspace.call("test-call"),
        workspace.runs_dir,
        meter=FakeMeter(),
    )
    assert record.status == "succeeded", record.message
    assert record.metrics["n_predictions"] == 3
    assert record.score is not None and record.score.disagrees  # the notebook said 10**12
    assert record.energy is not None and record.energy.measured
    inference_wh = record.energy.phases["inference"] * 1000
    assert inference_wh > 0  # else any count would give 0
    assert record.energy.wh_per_1000_predictions == pytest.approx(inference_wh * 1000 / 3)


def test_a_count_that_matches_its_table_is_not_flagged() -> None:
    from workbench.recording import numeric_metrics, predictions_disagree

    table = {"kind": "dataframe", "value": {"columns": ["ai"], "data": [[1], [2]]}}
    honest = {"n_predictions": {"kind": "number", "value": 2}, "predictions": table}
    assert numeric_metrics(honest)["n_predictions"] == 2 and not predictions_disagree(honest)
    undeclared = {"predictions": table}
    assert numeric_metrics(undeclared)["n_predictions"] == 2
    assert not predictions_disagree(undeclared)
    no_table = {"n_predictions": {"kind": "number", "value": 7}}
    assert numeric_metrics(no_table)["n_predictions"] == 7 and not predictions_disagree(no_table)


def test_only_the_kernels_own_socket_is_connected_to(tmp_path: Path) -> None:
    import socket

    from workbench.errors import SandboxError
    from workbench.runner.isolation import check_kernel_socket

    own = tmp_path / "kernel-1"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(own))
        uid = own.stat().st_uid
        check_kernel_socket(str(own), uid)
        check_kernel_socket(str(tmp_path / "kernel-2"), uid)  # not bound yet: nothing ran
        with pytest.raises(SandboxError, match="belongs to uid"):
            check_kernel_socket(str(own), uid + 1)
        os.symlink(own, tmp_path / "kernel-3")
        with pytest.raises(SandboxError, match="is a symbolic link"):
            check_kernel_socket(str(tmp_path / "kernel-3"), uid)
        (tmp_path / "kernel-4").write_text("")
        with pytest.raises(SandboxError, match="is not a socket"):
            check_kernel_socket(str(tmp_path / "kernel-4"), uid)


SOCKET_SWAP = """\
import errno, json, os, time
from ipykernel.connect import get_connection_file

info = json.load(open(get_connection_file()))
path = f"{info['ip']}-{info['stdin_port']}"
get_ipython().kernel.stdin_socket.close()  # the runner's side now reconnects, again and again


def attempt(action, *args):
    try:
        action(*args)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "ok"


attempts = {
    "outside_run_folder": not os.path.dirname(path).startswith(os.getcwd()),
    "unlink": attempt(os.unlink, path),
    "symlink": attempt(os.symlink, HOST, path),
    "rename": attempt(os.rename, path, path + ".old"),
}
time.sleep(1.0)  # ten reconnection attempts at zmq's default interval
import workbench
workbench.record("attempts", attempts)
workbench.record("n_predictions", 1)
"""


@pytest.mark.kernel
@requires_sandbox
@pytest.mark.skipif(os.geteuid() != 0, reason="the socket folder is locked when run as root")
def test_a_sandboxed_kernel_cannot_point_the_runner_at_a_host_socket(
    workspace: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    import socket

    from workbench.runner.execute import execute_submission

    host = tmp_path / "host.sock"
    folder = make_submission("swapper", notebook="untagged", parameters={})
    nb = new_notebook(
        cells=[new_code_cell(f"HOST = {str(host)!r}\n" + SOCKET_SWAP)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    nbformat.write(nb, folder / "notebook.ipynb")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(host))
        server.listen(64)
        record = execute_submission(
            folder,
            load_submission(folder),
            workspace.call("test-call"),
            workspace.runs_dir,
            isolation="sandbox",
            metered=False,
        )
        server.setblocking(False)
        connections = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                server.accept()[0].close()
                connections += 1
    assert record.status == "succeeded", record.message
    attempts = record.records["attempts"]["value"]
    assert attempts["outside_run_folder"] is True
    assert attempts["unlink"] == "EACCES" and attempts["rename"] == "EACCES"
    assert attempts["symlink"] in ("EACCES", "EEXIST")
    assert connections == 0
