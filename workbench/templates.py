"""Notebook templates: what each one is for, read from its `metadata.workbench`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.workspace import Workspace


@dataclass(frozen=True)
class TemplateInfo:
    id: str
    title: dict[str, str]
    description: dict[str, str]
    use_case: str
    primary_metric: dict[str, Any]
    metrics: list[str] = field(default_factory=list)
    data_columns: dict[str, str] = field(default_factory=dict)

    def text(self, key: str, lang: str) -> str:
        value = getattr(self, key)
        return str(value.get(lang) or value.get("en") or "")


def template_info(workspace: Workspace, template: str) -> TemplateInfo:
    from workbench.notebooks import read_notebook, workbench_metadata

    meta = workbench_metadata(read_notebook(workspace.template_path(template)))
    return TemplateInfo(
        id=template,
        title=dict(meta.get("title", {})),
        description=dict(meta.get("description", {})),
        use_case=str(meta.get("use_case", "")),
        primary_metric=dict(meta.get("primary_metric", {})),
        metrics=list(meta.get("metrics", [])),
        data_columns=dict(meta.get("data_schema", {}).get("columns", {})),
    )


def list_templates(workspace: Workspace) -> list[TemplateInfo]:
    return [template_info(workspace, t) for t in workspace.template_ids()]
