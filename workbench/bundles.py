"""Bundles: a team hands its dossier in as one zip; the funder receives it.

`pack_submission` validates a submission and zips what it declares (submission.yaml, the
notebook, the declared data files) with a manifest of every file's sha256 and size.

`receive_bundle` treats a bundle as hostile until proven otherwise. Every check runs
before anything is written: the zip's entries (no `..`, absolute path, link or device;
at most `MAX_FILES` files and `MAX_BYTES` bytes; no zip-bomb compression ratio), the
manifest (every file listed, every hash and size right), the call, the submission itself
(validated in a temporary folder outside the workspace) and the call's deadline. Only
then is the dossier moved into `submissions/<call>/<id>/`; the version it replaces is
kept under `versions/<call>/<id>/<n>/`, a receipt is written to `receipts/<call>/` and
the reception is appended to the dossier's audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import stat
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.documents import SLUG_PATTERN
from workbench.errors import InputError, InvalidError, NotFoundError, Problem
from workbench.receipts import Receipt, ReceivedFile
from workbench.submissions import MAX_SUBMISSION_BYTES, SUBMISSION_FILE

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.store import Store
    from workbench.submissions import Submission
    from workbench.workspace import Workspace

BUNDLE_FORMAT = "workbench-bundle"
BUNDLE_VERSION = 1
MANIFEST_FILE = "manifest.json"

# Limits of a received bundle, read at each reception (tests lower them).
MAX_FILES = 1000
MAX_BYTES = 2 * 1024**3  # uncompressed, all files together
MAX_RATIO = 100  # uncompressed / compressed, for an entry over RATIO_MIN_BYTES
RATIO_MIN_BYTES = 1024**2
MAX_MANIFEST_BYTES = 1024**2
# The submission's own limits (submission.yaml, each answer, the notebook's bytes and cells)
# are `submissions.MAX_*`: the validation of the extracted dossier applies them, and
# submission.yaml's size is checked from the zip's entry before anything is extracted.

# A new version is received only while the dossier is not under review or decided.
RECEIVABLE_STATES = ("draft", "submitted")
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")

Slug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]


class BundleRefused(InputError):
    """A received bundle was refused; nothing was written."""

    def __init__(self, bundle: Path, reason: str, problems: list[Problem] | None = None) -> None:
        self.bundle = bundle
        self.reason = reason
        self.problems = list(problems or [])
        lines = [f"{bundle}: refused: {reason}"] + [f"{bundle}: {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["workbench-bundle"]
    version: Literal[1]
    call: Slug
    submission: Slug
    created_at: dt.datetime
    files: list[ManifestFile]


@dataclass(frozen=True)
class Packed:
    path: Path
    manifest: Manifest
    sha256: str
    left_out: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.manifest.files)


@dataclass(frozen=True)
class Reception:
    """What `receive_bundle` did: a new version, or nothing for a bundle already received."""

    bundle: Path
    receipt: Receipt
    text_receipt: Path
    already_received: bool = False

    def summary(self) -> str:
        if self.already_received:
            r = self.receipt
            return (
                f"{self.bundle}: already received as {r.key} version {r.version} "
                f"(same sha256); nothing changed"
            )
        return self.receipt.summary()


def _utcnow(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC)


def _sha256_size(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


# Packing --------------------------------------------------------------------------------


def pack_submission(
    workspace: Workspace, ref: str | Path, out: Path, *, now: dt.datetime | None = None
) -> Packed:
    """Validate a submission and write its bundle to `out`; undeclared files are left out."""
    import os

    from workbench.submissions import validate_submission

    folder = workspace.submission_dir(ref)
    sub, _call = validate_submission(folder, workspace)
    declared = list(dict.fromkeys([SUBMISSION_FILE, sub.notebook, *(d.path for d in sub.data)]))
    declared = list(dict.fromkeys(PurePosixPath(p).as_posix() for p in declared))
    out = out.resolve()
    present = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.resolve() != out
    )
    left_out = [p for p in present if p not in declared]
    if not out.parent.is_dir():
        raise NotFoundError(f"{out.parent}: no such folder for the bundle")
    created = _utcnow(now)
    stamp = created.timetuple()[:6]
    files: list[ManifestFile] = []
    part = out.with_name(f".{out.name}.{uuid.uuid4().hex}.part")
    try:
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel in declared:
                files.append(_add_file(zf, folder / rel, rel, stamp))
            manifest = Manifest(
                format=BUNDLE_FORMAT,
                version=BUNDLE_VERSION,
                call=sub.call,
                submission=sub.id,
                created_at=created,
                files=files,
            )
            info = zipfile.ZipInfo(MANIFEST_FILE, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, manifest.model_dump_json(indent=2))
        os.replace(part, out)
    finally:
        part.unlink(missing_ok=True)
    return Packed(out, manifest, _sha256_size(out)[0], left_out)


def _add_file(zf: zipfile.ZipFile, path: Path, rel: str, stamp: tuple[int, ...]) -> ManifestFile:
    info = zipfile.ZipInfo(rel, date_time=stamp)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.file_size = path.stat().st_size  # lets zipfile choose ZIP64 for large files
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as src, zf.open(info, "w") as dst:
        for block in iter(lambda: src.read(_CHUNK), b""):
            digest.update(block)
            size += len(block)
            dst.write(block)
    return ManifestFile(path=rel, sha256=digest.hexdigest(), size=size)


# Receiving ------------------------------------------------------------------------------


def receive_bundle(
    workspace: Workspace,
    bundle: Path,
    *,
    accept_late: bool = False,
    reason: str = "",
    actor: str = "workbench",
    now: dt.datetime | None = None,
) -> Reception:
    """Check a bundle completely, then land it as the dossier's next version with a receipt.

    Raises `BundleRefused` (nothing written) for anything wrong with the bundle.
    """
    from workbench.receipts import receipt_path, received_versions

    if accept_late and not reason.strip():
        raise InputError("accepting a late bundle needs a reason (--reason)")
    received_at = _utcnow(now)
    if not bundle.is_file():
        raise BundleRefused(bundle, "no such file")
    bundle_sha256, bundle_size = _sha256_size(bundle)
    try:
        zf = zipfile.ZipFile(bundle)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleRefused(bundle, f"not a zip file ({exc})") from exc
    with zf, tempfile.TemporaryDirectory(prefix="workbench-bundle-") as tmp:
        entries = _check_entries(bundle, zf)
        manifest = _read_manifest(bundle, zf, entries)
        for earlier in received_versions(workspace, manifest.call, manifest.submission):
            if earlier.bundle_sha256 == bundle_sha256:
                path = receipt_path(workspace, earlier.call, earlier.submission, earlier.version)
                return Reception(bundle, earlier, path.with_suffix(".txt"), already_received=True)
        try:
            call = workspace.call(manifest.call)
        except NotFoundError as exc:
            raise BundleRefused(bundle, f"unknown call {manifest.call!r}") from exc
        folder = Path(tmp) / manifest.call / manifest.submission
        _extract(bundle, zf, entries, manifest, folder)
        sub = _validate(bundle, folder, workspace)
        late = _check_deadline(bundle, call, received_at, accept_late)
        receipt = Receipt(
            call=call.id,
            submission=sub.id,
            version=0,  # set once the store says which version this is
            bundle=bundle.name,
            bundle_sha256=bundle_sha256,
            bundle_size=bundle_size,
            received_at=received_at,
            received_by=actor,
            deadline=call.deadline,
            late=late,
            late_reason=reason.strip() if late else None,
            files=[ReceivedFile(**f.model_dump()) for f in manifest.files],
        )
        return _land(workspace, bundle, folder, call, sub, receipt)


def _entry_problem(name: str) -> str | None:
    pure = PurePosixPath(name)
    if "\\" in name or "\x00" in name:
        return "has a backslash or NUL in its name"
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if ".." in pure.parts:
        return "leaves the bundle (..)"
    if not pure.parts:
        return "has an empty name"
    return None


def _check_entries(bundle: Path, zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The bundle's files by name, once every entry and the totals have passed."""
    files: dict[str, zipfile.ZipInfo] = {}
    total = 0
    infos = zf.infolist()
    if len(infos) > MAX_FILES + 1:  # folder entries count too, the manifest is one more
        raise BundleRefused(bundle, f"more than {MAX_FILES} files")
    for info in infos:
        name = info.filename
        issue = _entry_problem(name)
        if issue:
            raise BundleRefused(bundle, f"entry {name!r} {issue}")
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise BundleRefused(bundle, f"entry {name!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise BundleRefused(bundle, f"entry {name!r} is a device or special file")
        if info.flag_bits & 0x1:
            raise BundleRefused(bundle, f"entry {name!r} is encrypted")
        if info.is_dir():
            continue
        key = PurePosixPath(name).as_posix()
        if key in files:
            raise BundleRefused(bundle, f"entry {name!r} appears twice")
        if len(files) > MAX_FILES:  # the manifest is one of `files`
            raise BundleRefused(bundle, f"more than {MAX_FILES} files")
        total += info.file_size
        if total > MAX_BYTES:
            raise BundleRefused(bundle, f"more than {MAX_BYTES} bytes uncompressed")
        if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            raise BundleRefused(
                bundle,
                f"entry {name!r} expands {info.file_size // max(info.compress_size, 1)} times "
                f"(more than {MAX_RATIO}:1, a zip bomb)",
            )
        files[key] = info
    return files


def _read_manifest(
    bundle: Path, zf: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo]
) -> Manifest:
    info = entries.pop(MANIFEST_FILE, None)
    if info is None:
        raise BundleRefused(bundle, f"no {MANIFEST_FILE}")
    if info.file_size > MAX_MANIFEST_BYTES:
        raise BundleRefused(bundle, f"{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = Manifest.model_validate(json.loads(_read_entry(bundle, zf, info)))
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        detail = f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first else str(exc)
        raise BundleRefused(bundle, f"{MANIFEST_FILE} is not a valid manifest: {detail}") from exc
    listed: set[str] = set()
    for item in manifest.files:
        issue = _entry_problem(item.path)
        key = PurePosixPath(item.path).as_posix()
        if issue or key == MANIFEST_FILE:
            raise BundleRefused(
                bundle, f"{MANIFEST_FILE}: path {item.path!r} {issue or 'reserved'}"
            )
        if key in listed:
            raise BundleRefused(bundle, f"{MANIFEST_FILE}: {item.path!r} is listed twice")
        listed.add(key)
        if key not in entries:
            raise BundleRefused(bundle, f"{item.path} is in {MANIFEST_FILE} but not in the bundle")
        if entries[key].file_size != item.size:
            raise BundleRefused(
                bundle,
                f"{item.path}: {entries[key].file_size} bytes, {MANIFEST_FILE} says {item.size}",
            )
    extra = sorted(set(entries) - listed)
    if extra:
        raise BundleRefused(bundle, f"not in {MANIFEST_FILE}: {', '.join(extra)}")
    if SUBMISSION_FILE not in listed:
        raise BundleRefused(bundle, f"no {SUBMISSION_FILE}")
    if entries[SUBMISSION_FILE].file_size > MAX_SUBMISSION_BYTES:
        raise BundleRefused(
            bundle, f"{SUBMISSION_FILE} is larger than {MAX_SUBMISSION_BYTES} bytes"
        )
    return manifest


def _read_entry(bundle: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:  # bad CRC, ...
        raise BundleRefused(bundle, f"entry {info.filename!r} is corrupt ({exc})") from exc


def _extract(
    bundle: Path,
    zf: zipfile.ZipFile,
    entries: dict[str, zipfile.ZipInfo],
    manifest: Manifest,
    folder: Path,
) -> None:
    """Write each listed file into `folder` as a plain file, checking its sha256 and size."""
    for item in manifest.files:
        info = entries[PurePosixPath(item.path).as_posix()]
        target = folder / PurePosixPath(item.path)
        digest, size = hashlib.sha256(), 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("xb") as dst:
                while size <= item.size and (block := src.read(_CHUNK)):
                    size += len(block)
                    digest.update(block)
                    dst.write(block)
        except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
            raise BundleRefused(bundle, f"entry {info.filename!r} is corrupt ({exc})") from exc
        except OSError as exc:
            raise BundleRefused(bundle, f"entry {info.filename!r} cannot be extracted") from exc
        if size != item.size or digest.hexdigest() != item.sha256:
            raise BundleRefused(bundle, f"{item.path}: content does not match {MANIFEST_FILE}")


def _validate(bundle: Path, folder: Path, workspace: Workspace) -> Submission:
    """The extracted submission, fully checked; problems name the file inside the bundle."""
    from workbench.submissions import validate_submission

    try:
        sub, _call = validate_submission(folder, workspace)
    except InvalidError as exc:
        prefix = f"{folder}/"
        problems = [
            Problem(p.path.removeprefix(prefix), p.field, p.message.replace(prefix, ""))
            for p in exc.problems
        ]
        raise BundleRefused(bundle, "the submission is invalid", problems) from exc
    except InputError as exc:
        raise BundleRefused(bundle, f"the submission is invalid: {exc}") from exc
    return sub


def _check_deadline(bundle: Path, call: Call, at: dt.datetime, accept_late: bool) -> bool:
    from workbench.receipts import is_late, local_time

    late = is_late(at, call.deadline)
    if late and not accept_late:
        when = local_time(at).strftime("%Y-%m-%d %H:%M")
        raise BundleRefused(
            bundle,
            f"received {when} (Paris time), after the deadline of call {call.id!r} "
            f"({call.deadline}); --accept-late --reason TEXT accepts it",
        )
    return late


# Landing --------------------------------------------------------------------------------


def _land(
    workspace: Workspace, bundle: Path, folder: Path, call: Call, sub: Submission, receipt: Receipt
) -> Reception:
    """Move the checked dossier in, keep the version it replaces, write the receipt, log it."""
    from workbench.errors import StoreError
    from workbench.receipts import receipts_dir, received_versions, write_receipt
    from workbench.store import open_store

    with open_store(workspace.db_url) as store:
        state = store.current_states(call.id).get(sub.key, "draft")
        if state not in RECEIVABLE_STATES:
            raise BundleRefused(
                bundle,
                f"{sub.key} is {state!r}: a new version is received only while the dossier "
                f"is {' or '.join(RECEIVABLE_STATES)}",
            )
        earlier = received_versions(workspace, call.id, sub.id)
        version = (earlier[-1].version if earlier else 0) + 1
        receipt = receipt.model_copy(update={"version": version})
        dest = workspace.submissions_dir / call.id / sub.id
        versions = workspace.root / "versions" / call.id / sub.id
        with _undo_on_error() as undo:
            staging = versions / f".incoming-{uuid.uuid4().hex}"
            _makedirs(staging.parent, undo)
            undo.append(lambda: shutil.rmtree(staging, ignore_errors=True))
            shutil.copytree(folder, staging)
            if dest.exists():
                # A folder there with no receipt was not received: it is kept as version 0.
                archive = versions / str(version - 1)
                if archive.exists():
                    raise StoreError(f"{archive}: already exists; {dest} is left as it is")
                dest.rename(archive)
                undo.append(lambda: archive.rename(dest))
            _makedirs(dest.parent, undo)
            staging.rename(dest)
            undo.append(lambda: shutil.rmtree(dest, ignore_errors=True))
            _makedirs(receipts_dir(workspace, call.id), undo)
            path, text = write_receipt(workspace, receipt)
            undo += [lambda: path.unlink(missing_ok=True), lambda: text.unlink(missing_ok=True)]
            _record_reception(store, call, sub, receipt, actor=receipt.received_by)
    for empty in (versions, versions.parent, versions.parent.parent):  # left by version 1
        with suppress(OSError):
            empty.rmdir()
    return Reception(bundle, receipt, text)


def _makedirs(path: Path, undo: list[Callable[[], object]]) -> None:
    """Create `path` and its missing parents; undoing removes those it created."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):  # undone newest first, so deepest first
        undo.append(created.rmdir)


@contextmanager
def _undo_on_error() -> Iterator[list[Callable[[], object]]]:
    """Collect undo steps; run them newest first if the block raises."""
    steps: list[Callable[[], object]] = []
    try:
        yield steps
    except BaseException:
        for step in reversed(steps):
            with suppress(OSError):  # put back as much as can be
                step()
        raise


def _record_reception(
    store: Store, call: Call, sub: Submission, receipt: Receipt, *, actor: str
) -> None:
    """Append the reception to the dossier's audit log (state `submitted`)."""
    late = f"; late (deadline {receipt.deadline}), accepted: {receipt.late_reason}"
    reason = (
        f"received version {receipt.version}: bundle {receipt.bundle}, "
        f"sha256 {receipt.bundle_sha256}, {receipt.bundle_size} bytes"
        + (late if receipt.late else "")
    )
    store.register(call, sub)
    store.append_transition(
        sub.key,
        "submitted",
        actor=actor,
        reason=reason,
        declared="draft",
        check=lambda _state: None,  # the state was checked before anything was written
        at=receipt.received_at,
    )
