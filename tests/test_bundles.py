"""Handing a dossier in: `pack` on the team's side, `receive` on the funder's."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import TEST_CALL, MakeSubmission, write_yaml
from workbench import bundles
from workbench.bundles import BundleRefused, pack_submission, receive_bundle
from workbench.cli import main
from workbench.errors import InvalidError
from workbench.store import SubmissionRow, TransitionRow, open_store
from workbench.workspace import Workspace

PARIS = dt.timezone(dt.timedelta(hours=1))  # Paris in winter, where the test call's deadline is
ON_TIME = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
LATE = dt.datetime(2027, 1, 2, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def team(workspace: Workspace) -> Workspace:
    return workspace


@pytest.fixture
def funder(tmp_path: Path) -> Workspace:
    root = tmp_path / "funder"
    write_yaml(root / "calls" / "test-call.yaml", TEST_CALL)
    return Workspace(root)


@pytest.fixture
def bundle(team: Workspace, make_submission: MakeSubmission, tmp_path: Path) -> Path:
    """A valid bundle of `test-call/team-a`."""
    make_submission("team-a")
    return pack_submission(team, "test-call/team-a", tmp_path / "team-a.zip", now=ON_TIME).path


def snapshot(ws: Workspace) -> tuple[dict[str, bytes | None], dict[str, int] | None]:
    """Every file and folder of the workspace, and the store's row counts."""
    tree: dict[str, bytes | None] = {}
    for path in sorted(ws.root.rglob("*")):
        rel = path.relative_to(ws.root).as_posix()
        if rel.startswith("workbench.db"):
            tree[rel] = None  # its bytes move with SQLite's checkpoints; its rows are counted
        else:
            tree[rel] = path.read_bytes() if path.is_file() else None
    counts = None
    if (ws.root / "workbench.db").exists():
        with open_store(ws.db_url) as store:
            counts = {m.__tablename__: store.count(m) for m in (SubmissionRow, TransitionRow)}
    return tree, counts


def read_entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_bundle(
    path: Path,
    entries: dict[str, bytes],
    *,
    fix_manifest: bool = False,
    special: tuple[tuple[zipfile.ZipInfo, bytes], ...] = (),
) -> Path:
    """Write a zip of `entries`; with `fix_manifest`, the manifest lists them exactly."""
    entries = dict(entries)
    if fix_manifest:
        manifest = json.loads(entries["manifest.json"])
        manifest["files"] = [
            {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in entries.items()
            if name != "manifest.json"
        ] + [
            {"path": info.filename, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for info, data in special
        ]
        entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for info, data in special:
            zf.writestr(info, data)
    return path


def special_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def with_submission(entries: dict[str, bytes], **changes: Any) -> dict[str, bytes]:
    doc = yaml.safe_load(entries["submission.yaml"])
    doc.update(changes)
    return {**entries, "submission.yaml": yaml.safe_dump(doc, allow_unicode=True).encode()}


# Packing --------------------------------------------------------------------------------


def test_pack_writes_the_declared_files_and_a_manifest(
    team: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    folder = make_submission("team-a")
    (folder / "data").mkdir()
    (folder / "data" / "input.csv").write_text("a,b\n1,2\n")
    digest = hashlib.sha256((folder / "data" / "input.csv").read_bytes()).hexdigest()
    doc = yaml.safe_load((folder / "submission.yaml").read_text())
    doc["data"] = [{"path": "data/input.csv", "sha256": digest}]
    write_yaml(folder / "submission.yaml", doc)
    (folder / "scratch.txt").write_text("notes")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "notebook-checkpoint.ipynb").write_text("{}")

    packed = pack_submission(team, "test-call/team-a", tmp_path / "b.zip", now=ON_TIME)

    entries = read_entries(packed.path)
    assert sorted(entries) == [
        "data/input.csv",
        "manifest.json",
        "notebook.ipynb",
        "submission.yaml",
    ]
    assert packed.left_out == [".ipynb_checkpoints/notebook-checkpoint.ipynb", "scratch.txt"]
    manifest = json.loads(entries["manifest.json"])
    assert manifest["format"] == "workbench-bundle"
    assert manifest["version"] == 1
    assert (manifest["call"], manifest["submission"]) == ("test-call", "team-a")
    assert dt.datetime.fromisoformat(manifest["created_at"]) == ON_TIME
    for item in manifest["files"]:
        data = entries[item["path"]]
        assert item["sha256"] == hashlib.sha256(data).hexdigest()
        assert item["size"] == len(data)
    assert entries["data/input.csv"] == b"a,b\n1,2\n"


def test_pack_refuses_an_invalid_submission_listing_every_missing_answer(
    team: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    make_submission("team-a", answers={})
    with pytest.raises(InvalidError) as caught:
        pack_submission(team, "test-call/team-a", tmp_path / "b.zip")
    fields = sorted(p.field for p in caught.value.problems)
    assert fields == ["answers.hosting", "answers.open-data"]
    assert list(tmp_path.glob("*.zip")) == []
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


# Receiving ------------------------------------------------------------------------------


def test_round_trip_lands_the_dossier_with_a_receipt_and_an_audit_row(
    team: Workspace, funder: Workspace, bundle: Path
) -> None:
    reception = receive_bundle(funder, bundle, actor="Service instructeur", now=ON_TIME)

    receipt = reception.receipt
    assert (receipt.key, receipt.version, receipt.late) == ("test-call/team-a", 1, False)
    landed = funder.submissions_dir / "test-call" / "team-a"
    source = team.submissions_dir / "test-call" / "team-a"
    for name in ("submission.yaml", "notebook.ipynb"):
        assert (landed / name).read_bytes() == (source / name).read_bytes()
    assert not (landed / "manifest.json").exists()
    assert funder.submission_dirs() == [landed]

    bundle_sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    record = json.loads((funder.root / "receipts/test-call/team-a-1.json").read_text())
    assert record["bundle_sha256"] == bundle_sha
    assert record["bundle_size"] == bundle.stat().st_size
    assert {f["path"] for f in record["files"]} == {"submission.yaml", "notebook.ipynb"}
    text = reception.text_receipt.read_text(encoding="utf-8")
    assert text.index("Accusé de réception") < text.index("Receipt")
    assert bundle_sha in text and "dans les délais" in text and "on time" in text

    with open_store(funder.db_url) as store:
        assert store.current_states("test-call") == {"test-call/team-a": "submitted"}
        with store.session() as s:
            rows = list(s.query(TransitionRow))
    assert len(rows) == 1
    assert (rows[0].from_state, rows[0].to_state) == ("draft", "submitted")
    assert rows[0].actor == "Service instructeur"
    assert bundle_sha in rows[0].reason and str(bundle.stat().st_size) in rows[0].reason
    assert rows[0].created_at.replace(tzinfo=dt.UTC) == ON_TIME


def test_a_second_bundle_is_version_2_and_keeps_version_1(
    team: Workspace, funder: Workspace, bundle: Path, tmp_path: Path
) -> None:
    receive_bundle(funder, bundle, now=ON_TIME)
    folder = team.submissions_dir / "test-call" / "team-a"
    doc = yaml.safe_load((folder / "submission.yaml").read_text())
    doc["title"] = "Un projet de test, deuxième version"
    write_yaml(folder / "submission.yaml", doc)
    second = pack_submission(team, "test-call/team-a", tmp_path / "v2.zip", now=ON_TIME).path

    reception = receive_bundle(funder, second, now=ON_TIME + dt.timedelta(hours=1))

    assert reception.receipt.version == 2
    latest = funder.submissions_dir / "test-call" / "team-a" / "submission.yaml"
    kept = funder.root / "versions" / "test-call" / "team-a" / "1" / "submission.yaml"
    assert "deuxième version" in latest.read_text(encoding="utf-8")
    assert "deuxième version" not in kept.read_text(encoding="utf-8")
    assert funder.submission_dirs() == [latest.parent]
    assert (funder.root / "receipts/test-call/team-a-1.json").is_file()
    assert (funder.root / "receipts/test-call/team-a-2.txt").is_file()
    with open_store(funder.db_url) as store:
        assert store.count(TransitionRow) == 2

    from workbench.validation import validate

    assert validate(funder).ok  # the kept version is not taken for a submission


def test_the_identical_bundle_again_is_a_no_op(funder: Workspace, bundle: Path) -> None:
    receive_bundle(funder, bundle, now=ON_TIME)
    before = snapshot(funder)

    again = receive_bundle(funder, bundle, now=ON_TIME + dt.timedelta(days=1))

    assert again.already_received
    assert again.receipt.version == 1
    assert "already received" in again.summary()
    assert snapshot(funder) == before


def test_a_late_bundle_accepted_with_a_reason_records_its_lateness(
    funder: Workspace, bundle: Path
) -> None:
    reception = receive_bundle(
        funder, bundle, accept_late=True, reason="panne du portail le 1er janvier", now=LATE
    )

    assert reception.receipt.late
    assert reception.receipt.late_reason == "panne du portail le 1er janvier"
    record = json.loads((funder.root / "receipts/test-call/team-a-1.json").read_text())
    assert record["late"] is True and record["late_reason"] == "panne du portail le 1er janvier"
    assert "panne du portail" in reception.text_receipt.read_text(encoding="utf-8")
    with open_store(funder.db_url) as store, store.session() as s:
        (row,) = s.query(TransitionRow)
        assert "late" in row.reason and "panne du portail" in row.reason


@pytest.mark.parametrize(
    ("at", "late"),
    [
        (dt.datetime(2027, 1, 1, 23, 30, tzinfo=PARIS), False),
        (dt.datetime(2027, 1, 2, 0, 30, tzinfo=PARIS), True),  # still Jan 1 in UTC
    ],
)
def test_the_deadline_is_the_end_of_its_day_in_paris(
    funder: Workspace, bundle: Path, at: dt.datetime, late: bool
) -> None:
    if late:
        with pytest.raises(BundleRefused, match="after the deadline"):
            receive_bundle(funder, bundle, now=at)
    else:
        assert not receive_bundle(funder, bundle, now=at).receipt.late


def test_a_dossier_under_review_takes_no_new_version(
    team: Workspace, funder: Workspace, bundle: Path, tmp_path: Path
) -> None:
    from workbench.dossiers import decide

    receive_bundle(funder, bundle, now=ON_TIME)
    decide(funder, "test-call/team-a", "in_review", actor="Service instructeur")
    second = write_bundle(
        tmp_path / "v2.zip",
        with_submission(read_entries(bundle), title="Autre titre"),
        fix_manifest=True,
    )
    before = snapshot(funder)
    with pytest.raises(BundleRefused, match="'in_review'"):
        receive_bundle(funder, second, now=ON_TIME)
    assert snapshot(funder) == before


# Hostile bundles: each is refused, and nothing is written -------------------------------


def _traversal(good: dict[str, bytes], path: Path) -> Path:
    return write_bundle(path, {**good, "../x": b"x"}, fix_manifest=True)


def _absolute(good: dict[str, bytes], path: Path) -> Path:
    return write_bundle(path, {**good, "/tmp/x": b"x"}, fix_manifest=True)


def _symlink(good: dict[str, bytes], path: Path) -> Path:
    link = special_entry("data/link", stat.S_IFLNK | 0o777)
    return write_bundle(path, good, fix_manifest=True, special=((link, b"/etc/passwd"),))


def _device(good: dict[str, bytes], path: Path) -> Path:
    device = special_entry("data/dev", stat.S_IFCHR | 0o666)
    return write_bundle(path, good, fix_manifest=True, special=((device, b""),))


def _bomb(good: dict[str, bytes], path: Path) -> Path:
    return write_bundle(path, {**good, "data/zeros.bin": bytes(200_000)}, fix_manifest=True)


def _too_many_files(good: dict[str, bytes], path: Path) -> Path:
    extra = {f"data/{i}.txt": b"x" for i in range(4)}
    return write_bundle(path, {**good, **extra}, fix_manifest=True)


def _too_many_bytes(good: dict[str, bytes], path: Path) -> Path:
    incompressible = random.Random(0).randbytes(400_000)
    return write_bundle(path, {**good, "data/big.bin": incompressible}, fix_manifest=True)


def _no_manifest(good: dict[str, bytes], path: Path) -> Path:
    return write_bundle(path, {k: v for k, v in good.items() if k != "manifest.json"})


def _altered(good: dict[str, bytes], path: Path) -> Path:
    notebook = bytearray(good["notebook.ipynb"])
    notebook[-2:-1] = b" "  # same size, other content
    return write_bundle(path, {**good, "notebook.ipynb": bytes(notebook)})


def _wrong_size(good: dict[str, bytes], path: Path) -> Path:
    return write_bundle(path, {**good, "notebook.ipynb": good["notebook.ipynb"] + b"\n"})


def _unlisted(good: dict[str, bytes], path: Path) -> Path:
    return write_bundle(path, {**good, "extra.txt": b"not in the manifest"})


def _listed_but_missing(good: dict[str, bytes], path: Path) -> Path:
    manifest = json.loads(good["manifest.json"])
    manifest["files"].append({"path": "data/gone.csv", "sha256": "0" * 64, "size": 1})
    return write_bundle(path, {**good, "manifest.json": json.dumps(manifest).encode()})


def _invalid(good: dict[str, bytes], path: Path) -> Path:
    return write_bundle(path, with_submission(good, answers={}), fix_manifest=True)


def _not_a_zip(good: dict[str, bytes], path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 not really")
    return path


HOSTILE = {
    "traversal": (_traversal, "'../x' leaves the bundle"),
    "absolute": (_absolute, "'/tmp/x' is an absolute path"),
    "symlink": (_symlink, "'data/link' is a symbolic link"),
    "device": (_device, "'data/dev' is a device"),
    "zip bomb": (_bomb, "zip bomb"),
    "too many files": (_too_many_files, "more than 5 files"),
    "too many bytes": (_too_many_bytes, "more than 300000 bytes"),
    "no manifest": (_no_manifest, "no manifest.json"),
    "altered file": (_altered, "notebook.ipynb: content does not match manifest.json"),
    "wrong size": (_wrong_size, "notebook.ipynb: .* bytes, manifest.json says"),
    "not in the manifest": (_unlisted, "not in manifest.json: extra.txt"),
    "missing file": (_listed_but_missing, "data/gone.csv is in manifest.json but not in"),
    "invalid submission": (_invalid, "the submission is invalid"),
    "not a zip": (_not_a_zip, "not a zip file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_bundle_is_refused_and_nothing_is_written(
    funder: Workspace,
    bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    make, message = HOSTILE[case]
    receive_bundle(funder, bundle, now=ON_TIME)  # a version 1 that must stay as it is
    monkeypatch.setattr(bundles, "RATIO_MIN_BYTES", 100_000)
    monkeypatch.setattr(bundles, "MAX_FILES", 5)
    monkeypatch.setattr(bundles, "MAX_BYTES", 300_000)
    hostile = make(read_entries(bundle), tmp_path / "hostile.zip")
    before = snapshot(funder)

    with pytest.raises(BundleRefused, match=message) as caught:
        receive_bundle(funder, hostile, now=ON_TIME)

    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"{hostile}: refused: ")
    assert snapshot(funder) == before
    assert before[1] == {"submissions": 1, "transitions": 1}


def test_an_invalid_submission_lists_every_problem_inside_the_bundle(
    funder: Workspace, bundle: Path, tmp_path: Path
) -> None:
    hostile = _invalid(read_entries(bundle), tmp_path / "hostile.zip")
    with pytest.raises(BundleRefused) as caught:
        receive_bundle(funder, hostile, now=ON_TIME)
    lines = str(caught.value).splitlines()
    assert lines[1:] == [
        f"{hostile}: submission.yaml: answers.open-data: not answered",
        f"{hostile}: submission.yaml: answers.hosting: not answered",
    ]
    assert not funder.submissions_dir.exists()


def test_a_late_bundle_is_refused_without_accept_late(funder: Workspace, bundle: Path) -> None:
    before = snapshot(funder)
    with pytest.raises(BundleRefused, match=r"after the deadline .*2027-01-01.*--accept-late"):
        receive_bundle(funder, bundle, now=LATE)
    assert snapshot(funder) == before
    assert sorted(before[0]) == ["calls", "calls/test-call.yaml"]


def test_a_bundle_for_an_unknown_call_is_refused(funder: Workspace, bundle: Path) -> None:
    (funder.calls_dir / "test-call.yaml").unlink()
    before = snapshot(funder)
    with pytest.raises(BundleRefused, match="unknown call 'test-call'"):
        receive_bundle(funder, bundle, now=ON_TIME)
    assert snapshot(funder) == before


@pytest.mark.parametrize("first", [True, False])
def test_a_store_failure_puts_everything_back(
    funder: Workspace,
    bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    first: bool,
) -> None:
    from workbench.errors import StoreError

    if not first:
        receive_bundle(funder, bundle, now=ON_TIME)
        bundle = write_bundle(
            tmp_path / "v2.zip",
            with_submission(read_entries(bundle), title="Autre titre"),
            fix_manifest=True,
        )
    before = snapshot(funder)

    def fail(*_args: object, **_kwargs: object) -> None:
        raise StoreError("the store is down")

    monkeypatch.setattr(bundles, "_record_reception", fail)
    with pytest.raises(StoreError, match="down"):
        receive_bundle(funder, bundle, now=ON_TIME)
    after = snapshot(funder)
    if first:  # opening the store created it, empty
        assert after[0] == {**before[0], "workbench.db": None}
    else:
        assert after == before


# The commands ---------------------------------------------------------------------------


def test_pack_and_receive_commands(
    team: Workspace, funder: Workspace, make_submission: MakeSubmission, tmp_path: Path
) -> None:
    folder = make_submission("team-a")
    (folder / "scratch.txt").write_text("notes")
    runner = CliRunner()
    out = tmp_path / "team-a.zip"
    packed = runner.invoke(
        main, ["-w", str(team.root), "pack", "test-call/team-a", "--out", str(out)]
    )
    assert packed.exit_code == 0, packed.output
    assert "left out (not declared in submission.yaml): scratch.txt" in packed.stderr
    assert f"wrote {out}" in packed.stdout

    broken = tmp_path / "broken.zip"
    write_bundle(broken, {**read_entries(out), "extra.txt": b"x"})
    shutil.copy(out, tmp_path / "again.zip")
    result = runner.invoke(
        main,
        ["-w", str(funder.root), "receive", str(broken), str(out), str(tmp_path / "again.zip")],
    )
    assert result.exit_code == 2
    assert f"error: {broken}: refused: not in manifest.json: extra.txt" in result.stderr
    assert "received test-call/team-a version 1 from team-a.zip" in result.stdout
    assert f"receipt: {funder.root / 'receipts/test-call/team-a-1.txt'}" in result.stdout
    assert "again.zip: already received as test-call/team-a version 1" in result.stdout


def test_receive_command_needs_a_reason_to_accept_late(funder: Workspace, bundle: Path) -> None:
    result = CliRunner().invoke(
        main, ["-w", str(funder.root), "receive", "--accept-late", str(bundle)]
    )
    assert result.exit_code == 2
    assert "--reason" in result.output
    assert not funder.submissions_dir.exists()
