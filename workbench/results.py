"""Results of a call: each submission's latest run, its status, metrics, score and energy."""

from __future__ import annotations

from typing import Any

from workbench.store import Store


def call_results(
    store: Store, call_id: str, reference_machine: str | None = None
) -> list[dict[str, Any]]:
    """One row per registered submission of the call, from its latest run.

    `energy.comparable_reason` says why a run's energy cannot be compared with the
    others' (another machine or another measuring method); it is empty when it can.
    """
    from workbench.metering import comparability

    reproductions = store.latest_reproductions(call_id)
    rows = []
    for sub, run in store.latest_runs(call_id):
        record = run.record if run is not None else {}
        rows.append(
            {
                "submission": sub.key,
                "team": sub.team,
                "template": sub.template,
                "run_id": run.run_id if run else None,
                "status": run.status if run else "not_run",
                "started_at": run.started_at.isoformat() if run else None,
                "duration_s": run.duration_s if run else None,
                "message": record.get("message", ""),
                "metrics": {m.name: m.value for m in run.metrics} if run else {},
                "score": record.get("score"),
                "energy": record.get("energy"),
                "reproduction": reproductions.get(sub.key),
            }
        )
    reasons = comparability([row["energy"] for row in rows], reference_machine)
    for row, reason in zip(rows, reasons, strict=True):
        if row["energy"] is not None:
            row["energy"] = {
                **row["energy"],
                "comparable": reason == "",
                "comparable_reason": reason,
            }
    return rows
