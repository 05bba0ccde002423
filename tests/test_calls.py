from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_CALL, write_yaml
from workbench.calls import Scale, Tolerance, load_call
from workbench.errors import InvalidError, NotFoundError


@pytest.mark.parametrize("path", sorted((ROOT / "calls").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_calls_load_and_say_they_are_examples(path: Path) -> None:
    call = load_call(path)
    assert call.id == path.stem
    assert sum(c.weight for c in call.rubric) == pytest.approx(1.0)
    assert call.notice is not None
    assert "exemple" in call.notice.fr.lower() and "example" in call.notice.en.lower()
    assert call.protocol.country_iso_code == "FRA"


def test_diat_rubric_covers_the_call_criteria() -> None:
    ids = {c.id for c in load_call(ROOT / "calls" / "diat.yaml").rubric}
    assert {"frugality", "benefit", "environment", "replicability", "data-governance"} <= ids


def test_feder_questionnaire_has_nantes_style_questions() -> None:
    call = load_call(ROOT / "calls" / "feder-ami-hdf.yaml")
    ids = {q.id for q in call.questionnaire}
    assert {"legal-compliance", "working-conditions", "energy-sobriety", "benefit-vs-no-ai"} <= ids
    assert "custom" in call.templates


def _bad_call(tmp_path: Path, **changes: object) -> Path:
    doc = {**TEST_CALL, **changes}
    return write_yaml(tmp_path / "calls" / "test-call.yaml", doc)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        (
            {"rubric": [{**TEST_CALL["rubric"][0], "weight": 0.5}, TEST_CALL["rubric"][1]]},
            "-",
            "sum to 1",
        ),
        ({"templates": ["../etc"]}, "templates", "not a slug"),
        ({"protocol": {"isolation": "docker"}}, "protocol.isolation", "sandbox"),
        ({"protocol": {"pue": 0.5}}, "protocol.pue", "greater than or equal to 1"),
        ({"deadline": "someday"}, "deadline", "date"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
        (
            {"questionnaire": [{"id": "q", "type": "choice", "text": {"fr": "a", "en": "b"}}]},
            "questionnaire.0",
            "two choices",
        ),
    ],
)
def test_bad_calls_are_reported_with_file_and_field(
    tmp_path: Path, changes: dict[str, object], field: str, fragment: str
) -> None:
    path = _bad_call(tmp_path, **changes)
    with pytest.raises(InvalidError) as info:
        load_call(path)
    lines = str(info.value).splitlines()
    assert any(line.startswith(f"{path}: {field}") and fragment in line for line in lines), lines


def test_call_id_must_match_file_name(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "other.yaml", TEST_CALL)
    with pytest.raises(InvalidError, match="does not match the file name"):
        load_call(path)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: broken\ntitle: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidError) as info:
        load_call(path)
    assert str(info.value).startswith(f"{path}: -: invalid YAML: line")
    assert len(str(info.value).splitlines()) == 1


def test_missing_call_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_call(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("tolerance", "reference", "value", "ok"),
    [
        (Tolerance(), 1.0, 1.0, True),
        (Tolerance(), 1.0, 1.0000001, False),
        (Tolerance(abs=0.1), 1.0, 1.1, True),
        (Tolerance(rel=0.05), 100.0, 104.9, True),
        (Tolerance(rel=0.05), 100.0, 105.1, False),
        (Tolerance(abs=1, rel=0.01), 100.0, 102.0, True),
    ],
)
def test_tolerance(tolerance: Tolerance, reference: float, value: float, ok: bool) -> None:
    assert tolerance.accepts(reference, value) is ok


def test_scale_steps() -> None:
    scale = Scale(min=0, max=5, step=0.5)
    assert scale.contains(2.5) and scale.contains(5)
    assert not scale.contains(2.25) and not scale.contains(6)
