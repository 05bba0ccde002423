"""Calls for projects, written as code: one YAML file per call, validated here."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator

from workbench.documents import SLUG_PATTERN, Document, load_document
from workbench.errors import InvalidError, NotFoundError
from workbench.runner.isolation import isolation_levels

Slug = Annotated[str, Field(pattern=SLUG_PATTERN, max_length=64)]


def _registered_isolation(value: str) -> str:
    if value not in isolation_levels.names():
        raise ValueError(f"must be one of: {', '.join(isolation_levels.names())}")
    return value


# The registry is the one list of levels: a level registered there is accepted here.
IsolationLevel = Annotated[
    str,
    AfterValidator(_registered_isolation),
    WithJsonSchema({"type": "string", "enum": isolation_levels.names()}),
]
CUSTOM_TEMPLATE = "custom"


class LocalizedText(Document):
    """A text in French (the calls' language) and English."""

    fr: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.fr


class Tolerance(Document):
    """How far a reproduced metric may drift: |a - b| <= abs + rel * |b|."""

    abs: float = Field(default=0.0, ge=0)
    rel: float = Field(default=0.0, ge=0)

    def accepts(self, reference: float, value: float) -> bool:
        allowed = self.abs + self.rel * abs(reference)
        gap = abs(value - reference)
        # isclose: 1.1 - 1.0 is 0.10000000000000009, which a 0.1 tolerance must accept.
        return gap <= allowed or math.isclose(gap, allowed, rel_tol=1e-9)


class Environment(Document):
    """The packages a call's notebooks may use: requirements with version bounds, or a lock.

    `lock` names a file beside the call file (`name==version` per line, as
    `workbench env show` prints), installed exactly. Built by `workbench env build`.
    """

    requirements: list[Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][^\n]*$")]] = Field(
        default_factory=list, description="e.g. `tabulate>=0.9,<1`"
    )
    lock: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*\.lock$",
        description="a lock file beside the call file, e.g. `diat.lock`",
    )

    @model_validator(mode="after")
    def _something_declared(self) -> Environment:
        if not self.requirements and self.lock is None:
            raise ValueError("declare `requirements`, a `lock` file, or no environment at all")
        return self


class Protocol(Document):
    """How every submission of a call is measured, the same way for all."""

    country_iso_code: str = Field(default="FRA", pattern=r"^[A-Z]{3}$")
    pue: float = Field(default=1.0, ge=1.0, description="power usage effectiveness")
    time_limit_s: float = Field(default=600, gt=0, description="wall-clock limit of a whole run")
    memory_limit_mb: int = Field(
        default=4096, gt=0, description="memory of the whole run: its processes and tmpfs"
    )
    pids_limit: int = Field(
        default=1024, ge=16, description="processes and threads of the whole run at once"
    )
    tmp_size_mb: int = Field(
        default=512, gt=0, description="size of each of the sandbox's private /tmp and /dev/shm"
    )
    disk_limit_mb: int = Field(
        default=4096, gt=0, description="what a run may write in its run folder, all files"
    )
    cpu_limit: float | None = Field(
        default=None, gt=0, description="cores' worth of CPU time a run may use (no quota: none)"
    )
    isolation: IsolationLevel = "sandbox"
    tolerances: dict[str, Tolerance] = Field(default_factory=dict)
    default_tolerance: Tolerance = Field(default_factory=lambda: Tolerance(rel=1e-6))
    reference_machine: str | None = Field(
        default=None, description="fingerprint of the machine every run must be measured on"
    )
    wue: float | None = Field(default=None, ge=0, description="water usage effectiveness, L/kWh")
    repeats: int = Field(
        default=1,
        ge=1,
        le=20,
        description=(
            "runs of each submission; its figures are the median of the runs with a 95 % interval"
        ),
    )

    environment: Environment | None = Field(
        default=None,
        description="the call's own kernel environment; without it, the workbench's own",
    )

    def tolerance(self, metric: str) -> Tolerance:
        return self.tolerances.get(metric, self.default_tolerance)


class Question(Document):
    id: Slug
    text: LocalizedText
    type: Literal["yes_no", "text", "choice"]
    choices: list[str] = Field(default_factory=list)
    # What a juror reads for a choice; a choice without a label is shown by its id.
    choice_labels: dict[str, LocalizedText] = Field(default_factory=dict)
    required: bool = True

    @model_validator(mode="after")
    def _choices_match_type(self) -> Question:
        if self.type == "choice" and len(self.choices) < 2:
            raise ValueError("a 'choice' question needs at least two choices")
        if self.type != "choice" and self.choices:
            raise ValueError(f"a '{self.type}' question takes no choices")
        unknown = sorted(set(self.choice_labels) - set(self.choices))
        if unknown:
            raise ValueError(f"labels for choices it does not offer: {', '.join(unknown)}")
        return self

    def choice_label(self, choice: str, lang: str) -> str:
        """A choice as a juror reads it: its label, else its id made readable."""
        label = self.choice_labels.get(choice)
        if label is not None:
            return label.get(lang)
        return choice.replace("-", " ").replace("_", " ")

    def check_answer(self, value: object) -> str | None:
        """The problem with `value` as an answer, or None when it is acceptable."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return "not answered" if self.required else None
        if self.type == "yes_no" and not isinstance(value, bool):
            return f"expected yes or no (true/false), got {value!r}"
        if self.type == "text" and not isinstance(value, str):
            return f"expected a text, got {value!r}"
        if self.type == "choice" and value not in self.choices:
            return f"expected one of {', '.join(self.choices)}, got {value!r}"
        return None


class Scale(Document):
    min: float = 0
    max: float = 5
    step: float = Field(default=1, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError("max must be greater than min")
        return self

    def contains(self, value: float) -> bool:
        if not self.min <= value <= self.max:
            return False
        steps = (value - self.min) / self.step
        return math.isclose(steps, round(steps), abs_tol=1e-9)


class Criterion(Document):
    id: Slug
    label: LocalizedText
    scale: Scale = Field(default_factory=Scale)
    weight: float = Field(gt=0, le=1)


class Review(Document):
    """How the jury works: blind or not, and whether jurors read beyond their assignment."""

    blind: bool = Field(
        default=False,
        description="jurors see neither the team, the organisation nor the contact",
    )
    assigned_only: bool = Field(
        default=False, description="jurors open only the dossiers assigned to them"
    )


class Call(Document):
    """A funding call: who funds it, what it accepts, how it measures and how it judges."""

    id: Slug
    title: LocalizedText
    funder: str = Field(min_length=1)
    programme: str = Field(min_length=1)
    deadline: dt.date
    notice: LocalizedText | None = Field(
        default=None, description="shown with the call, e.g. that it is an example"
    )
    templates: list[str] = Field(min_length=1)
    protocol: Protocol = Field(default_factory=Protocol)
    required_metrics: list[str] = Field(default_factory=list)
    questionnaire: list[Question] = Field(default_factory=list)
    rubric: list[Criterion] = Field(min_length=1)
    disagreement_spread: float = Field(
        default=2.0, gt=0, description="jurors disagree on a criterion when max - min exceeds this"
    )
    review: Review = Field(default_factory=Review)

    @field_validator("templates")
    @classmethod
    def _template_ids(cls, value: list[str]) -> list[str]:
        import re

        for template in value:
            if not re.match(SLUG_PATTERN, template):
                raise ValueError(f"template id {template!r} is not a slug")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Call:
        total = sum(c.weight for c in self.rubric)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"rubric weights must sum to 1, they sum to {total:g}")
        for name, items in (("rubric", self.rubric), ("questionnaire", self.questionnaire)):
            ids = [item.id for item in items]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ValueError(f"duplicate {name} ids: {', '.join(duplicates)}")
        return self

    def accepts_template(self, template: str) -> bool:
        return template in self.templates

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questionnaire if q.id == question_id), None)


def load_call(path: Path) -> Call:
    """Load and validate one call file; its id must match its file name."""
    call = load_document(path, Call)
    if call.id != path.stem:
        raise InvalidError.single(path, "id", f"{call.id!r} does not match the file name")
    return call


def call_path(calls_dir: Path, call_id: str) -> Path:
    import re

    if not re.match(SLUG_PATTERN, call_id):
        raise NotFoundError(f"{call_id!r} is not a valid call id")
    path = calls_dir / f"{call_id}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in calls_dir.glob("*.yaml"))) or "none"
        raise NotFoundError(f"{path}: unknown call {call_id!r} (known calls: {known})")
    return path
