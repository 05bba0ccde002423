"""Reproduction: runs of a submission compared, metric by metric, with its reference run.

`reproduce` runs a submission again and compares the new runs with its latest succeeded
run; a batch whose call asks for `repeats` compares each submission's repeats with the
first of them. Both give their verdict through `compare_runs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, Field

from workbench.errors import InputError

if TYPE_CHECKING:
    from workbench.calls import Protocol
    from workbench.runner.records import RunRecord
    from workbench.store import RunRow, Store
    from workbench.workspace import Workspace

Verdict = Literal["reproduced", "diverged"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
SHOWN_METRICS = 4  # how many differing metrics a one-line summary names


class Difference(BaseModel):
    run_id: str
    metric: str
    reference: float | None
    value: float | None
    delta: float | None
    allowed: float | None = Field(description="the tolerance at the reference value")
    reason: str = ""


class Reproduction(BaseModel):
    submission: str
    reference_run_id: str
    run_ids: list[str]
    verdict: Verdict
    differences: list[Difference] = Field(default_factory=list)


def compare(
    run_id: str, reference: dict[str, float], metrics: dict[str, float], protocol: Protocol
) -> list[Difference]:
    """Every metric of `reference` that `metrics` misses or moves beyond the call's tolerance."""
    differences = []
    for name in sorted(set(reference) | set(metrics)):
        ref, value = reference.get(name), metrics.get(name)
        tolerance = protocol.tolerance(name)
        if ref is None or value is None:
            missing = "the reference" if ref is None else "this run"
            differences.append(
                Difference(
                    run_id=run_id,
                    metric=name,
                    reference=ref,
                    value=value,
                    delta=None,
                    allowed=None,
                    reason=f"not recorded by {missing}",
                )
            )
        elif not tolerance.accepts(ref, value):
            differences.append(
                Difference(
                    run_id=run_id,
                    metric=name,
                    reference=ref,
                    value=value,
                    delta=value - ref,
                    allowed=tolerance.abs + tolerance.rel * abs(ref),
                )
            )
    return differences


@dataclass(frozen=True)
class Attempt:
    """What a comparison needs of one run, whether just finished or read from the store."""

    run_id: str
    status: str
    message: str
    metrics: dict[str, float]

    @classmethod
    def of_record(cls, record: RunRecord) -> Attempt:
        return cls(record.run_id, record.status, record.message, dict(record.metrics))

    @classmethod
    def of_row(cls, row: RunRow) -> Attempt:
        metrics = {m.name: m.value for m in row.metrics}
        return cls(row.run_id, row.status, row.record.get("message", ""), metrics)


def compare_runs(
    submission: str, reference: Attempt, others: Sequence[Attempt], protocol: Protocol
) -> Reproduction:
    """The verdict of runs of one submission against its reference run.

    The one comparison behind both `reproduce` (new runs against the latest succeeded one)
    and a batch's repeats (every repeat against the first that succeeded): a run that did
    not succeed, or a metric it misses or moves beyond the call's tolerance, diverges.
    """
    differences = []
    for run in others:
        if run.status != "succeeded":
            differences.append(
                Difference(
                    run_id=run.run_id,
                    metric="status",
                    reference=None,
                    value=None,
                    delta=None,
                    allowed=None,
                    reason=f"the run {run.status}: {run.message}",
                )
            )
        differences += compare(run.run_id, reference.metrics, run.metrics, protocol)
    return Reproduction(
        submission=submission,
        reference_run_id=reference.run_id,
        run_ids=[run.run_id for run in others],
        verdict="diverged" if differences else "reproduced",
        differences=differences,
    )


def repeats_verdict(
    store: Store, submission: str, input_sha256: str, protocol: Protocol
) -> Reproduction | None:
    """Store and return the verdict of a submission's settled runs of one input.

    The first succeeded run is the reference and every other settled run is compared with
    it. None (nothing stored) with fewer than two settled runs or none that succeeded.
    """
    from workbench.runner.records import SETTLED_STATUSES

    runs = [
        Attempt.of_row(row)
        for row in store.runs(submission)
        if row.input_sha256 == input_sha256 and row.status in SETTLED_STATUSES
    ]
    reference = next((run for run in runs if run.status == "succeeded"), None)
    if len(runs) < 2 or reference is None:
        return None
    others = [run for run in runs if run is not reference]
    result = compare_runs(submission, reference, others, protocol)
    store.add_reproduction(result.model_dump(mode="json"))
    return result


def reproduce(
    workspace: Workspace, ref: str | Path, *, runs: int = 1, isolation: str | None = None
) -> Reproduction:
    """Run a submission `runs` times more and store the verdict against its reference run.

    The reference is the submission's latest succeeded run. Every new run is stored like
    any other; the verdict is appended, never overwritten.
    """
    from workbench.batch import run_submission
    from workbench.store import open_store
    from workbench.submissions import validate_submission

    if runs < 1:
        raise InputError("--runs must be at least 1")
    folder = workspace.submission_dir(ref)
    sub, call = validate_submission(folder, workspace)
    with open_store(workspace.db_url) as store:
        succeeded = [r for r in store.runs(sub.key) if r.status == "succeeded"]
    if not succeeded:
        raise InputError(f"{sub.key}: no succeeded run to reproduce; run it first")
    reference = Attempt.of_row(succeeded[-1])
    new_runs = [
        Attempt.of_record(run_submission(workspace, folder, isolation=isolation))
        for _ in range(runs)
    ]
    result = compare_runs(sub.key, reference, new_runs, call.protocol)
    with open_store(workspace.db_url) as store:
        store.add_reproduction(result.model_dump(mode="json"))
    return result


def diverged_metrics(result: Mapping[str, Any]) -> str:
    """The metrics that differ, as a one-line summary names them: the first few, sorted."""
    metrics = sorted({d["metric"] for d in result.get("differences", [])})
    more = ", ..." if len(metrics) > SHOWN_METRICS else ""
    return ", ".join(metrics[:SHOWN_METRICS]) + more


def describe(result: Mapping[str, Any]) -> str:
    """One line for a table: the verdict and what differs."""
    if result["verdict"] == "reproduced":
        return "reproduced"
    return f"diverged ({diverged_metrics(result)})"


def describe_difference(difference: Mapping[str, Any]) -> str:
    """One difference in words: how far the metric moved and what was allowed, or why not."""
    d = difference
    if d.get("delta") is None:
        return f"{d['metric']}: {d.get('reason', '')}"
    return (
        f"{d['metric']}: {d['reference']:.6g} -> {d['value']:.6g} "
        f"(delta {d['delta']:+.3g}, allowed {d['allowed']:.3g})"
    )
