"""Receipts: what the funder received, when, and whether it was late, in JSON and in words.

`receipts/<call>/<id>-<n>.json` is the record (n is the dossier's version); the `.txt`
beside it is the acknowledgement sent back to the team, in French first, then English.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from workbench.errors import StoreError

if TYPE_CHECKING:
    from workbench.workspace import Workspace

RECEIPT_FORMAT = "workbench-receipt"
DEADLINE_ZONE = "Europe/Paris"  # a call's deadline is a date, read as the end of that day in Paris


class ReceivedFile(BaseModel):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Receipt(BaseModel):
    format: str = RECEIPT_FORMAT
    call: str
    submission: str
    version: int
    bundle: str
    bundle_sha256: str
    bundle_size: int
    received_at: dt.datetime
    received_by: str
    deadline: dt.date
    late: bool
    late_reason: str | None = None
    files: list[ReceivedFile]

    @property
    def key(self) -> str:
        return f"{self.call}/{self.submission}"

    def summary(self) -> str:
        """One line for the funder's terminal."""
        total = sum(f.size for f in self.files)
        timing = f"late, accepted: {self.late_reason}" if self.late else "on time"
        return (
            f"received {self.key} version {self.version} from {self.bundle}: "
            f"{len(self.files)} file(s), {total} bytes, {timing}"
        )


def receipts_dir(workspace: Workspace, call_id: str) -> Path:
    return workspace.root / "receipts" / call_id


def receipt_path(workspace: Workspace, call_id: str, submission_id: str, version: int) -> Path:
    return receipts_dir(workspace, call_id) / f"{submission_id}-{version}.json"


def received_versions(workspace: Workspace, call_id: str, submission_id: str) -> list[Receipt]:
    """The receipts of every version of a dossier received so far, oldest first."""
    found = []
    for path in receipts_dir(workspace, call_id).glob(f"{submission_id}-*.json"):
        number = path.stem[len(submission_id) + 1 :]
        if not number.isdigit():  # `team-a-2.json` is not a receipt of `team`
            continue
        try:
            found.append(Receipt.model_validate_json(path.read_bytes()))
        except (OSError, ValidationError) as exc:
            raise StoreError(f"{path}: not a readable receipt ({exc})") from exc
    return sorted(found, key=lambda r: r.version)


def local_time(at: dt.datetime) -> dt.datetime:
    """A time in Paris time; a naive one is a stored UTC time (SQLite gives them back so)."""
    from zoneinfo import ZoneInfo

    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(ZoneInfo(DEADLINE_ZONE))


def is_late(at: dt.datetime, deadline: dt.date) -> bool:
    """Received after the deadline's day has ended in Paris."""
    return local_time(at).date() > deadline


def _size(n: int, lang: str) -> str:
    unit = "octets" if lang == "fr" else "bytes"
    return f"{n:,}".replace(",", "\u202f" if lang == "fr" else ",") + f" {unit}"


def receipt_text(receipt: Receipt) -> str:
    """The acknowledgement in French, then in English."""
    when = local_time(receipt.received_at).strftime("%Y-%m-%d %H:%M:%S")
    deadline = receipt.deadline.isoformat()
    lines = [
        "Accusé de réception",
        "",
        f"Appel : {receipt.call}",
        f"Dossier : {receipt.submission} (version {receipt.version})",
        f"Reçu le : {when} (heure de Paris), par {receipt.received_by}",
        f"Paquet : {receipt.bundle}, {_size(receipt.bundle_size, 'fr')}",
        f"  sha256 {receipt.bundle_sha256}",
    ]
    if receipt.late:
        lines.append(f"Délai : reçu après la date limite du {deadline}, accepté.")
        lines.append(f"  Motif : {receipt.late_reason}")
    else:
        lines.append(f"Délai : reçu dans les délais (date limite : {deadline}).")
    lines.append(f"Fichiers reçus ({len(receipt.files)}) :")
    lines += [f"  {f.path}  {_size(f.size, 'fr')}  sha256 {f.sha256}" for f in receipt.files]
    lines += [
        "",
        "Receipt",
        "",
        f"Call: {receipt.call}",
        f"Dossier: {receipt.submission} (version {receipt.version})",
        f"Received: {when} (Paris time), by {receipt.received_by}",
        f"Bundle: {receipt.bundle}, {_size(receipt.bundle_size, 'en')}",
        f"  sha256 {receipt.bundle_sha256}",
    ]
    if receipt.late:
        lines.append(f"Deadline: received after the deadline of {deadline}, accepted.")
        lines.append(f"  Reason: {receipt.late_reason}")
    else:
        lines.append(f"Deadline: received on time (deadline: {deadline}).")
    lines.append(f"Files received ({len(receipt.files)}):")
    lines += [f"  {f.path}  {_size(f.size, 'en')}  sha256 {f.sha256}" for f in receipt.files]
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    part = path.with_name(path.name + ".part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)


def write_receipt(workspace: Workspace, receipt: Receipt) -> tuple[Path, Path]:
    """Write the JSON record and the text receipt; refuse to replace an existing one."""
    path = receipt_path(workspace, receipt.call, receipt.submission, receipt.version)
    text_path = path.with_suffix(".txt")
    if path.exists() or text_path.exists():
        raise StoreError(f"{path}: a receipt of this version already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = receipt.model_dump(mode="json")
    _write_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    _write_atomically(text_path, receipt_text(receipt))
    return path, text_path
