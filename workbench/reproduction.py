"""Reproduction: run a submission again and compare every metric with its reference run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, Field

from workbench.errors import InputError

if TYPE_CHECKING:
    from workbench.calls import Protocol
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
    reference = succeeded[-1]
    reference_metrics = {m.name: m.value for m in reference.metrics}
    run_ids, differences = [], []
    for _ in range(runs):
        record = run_submission(workspace, folder, isolation=isolation)
        run_ids.append(record.run_id)
        if record.status != "succeeded":
            differences.append(
                Difference(
                    run_id=record.run_id,
                    metric="status",
                    reference=None,
                    value=None,
                    delta=None,
                    allowed=None,
                    reason=f"the run {record.status}: {record.message}",
                )
            )
        differences += compare(record.run_id, reference_metrics, record.metrics, call.protocol)
    result = Reproduction(
        submission=sub.key,
        reference_run_id=reference.run_id,
        run_ids=run_ids,
        verdict="diverged" if differences else "reproduced",
        differences=differences,
    )
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
