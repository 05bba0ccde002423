"""Results of a call: each submission's latest run, its status and its metrics."""

from __future__ import annotations

from typing import Any

from workbench.store import Store


def call_results(store: Store, call_id: str) -> list[dict[str, Any]]:
    """One row per registered submission of the call, from its latest run."""
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
            }
        )
    return rows
