"""Every contract's sample payloads decode as they should; every malformed one is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.errors import ContractError, decode_json
from contracts.incidents import IncidentReport
from contracts.schemas import SCHEMAS

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

# Each malformed sample and words its error message must contain, so a sample that fails for a
# reason other than the one it was written for does not pass unnoticed.
INVALID = {
    "incident-report.malformed.json": "malformed JSON",
    "incident-report.wrong-types.json": "title: Input should be a valid string",
    "incident-report.naive-datetime.json": "occurred_at: Input should have timezone info",
    "incident-report.extra-field.json": "priority: Extra inputs are not permitted",
    "incident-report.level-v.json": "level: Value error, level must be one of I, II, III, IV",
    "incident-report.occurred-after-reported.json": "occurred_at is after reported_at",
    "incident-report.schema-version-2.json": "schema_version: Input should be 1",
    "incident-create.exercise-string.json": "exercise: Input should be a valid boolean",
    "incident-create.duplicate-cities.json": "city 'shangqiu' is listed more than once",
    "incident-create.blank-title.json": "title: String should have at least 1 character",
    "incident-create.bad-city.json": "affected_cities[0]: String should match pattern",
    "notification.bad-reason.json": "reason: Input should be 'affected' or 'neighbour'",
    "follow-up-create.empty.json": "body: required but missing",
}


def _schema_name(path: Path) -> str:
    """Return the schema a sample is for: the file name up to its first dot."""
    return path.name.split(".", 1)[0]


def _valid_samples() -> list[Path]:
    """List the valid JSON samples, the MQTT payloads' (in their own folder) included."""
    return sorted([*SAMPLES.glob("*.json"), *SAMPLES.glob("mqtt/*.json"), *SAMPLES.glob("partner/*.json")])


@pytest.mark.parametrize("path", _valid_samples(), ids=lambda p: p.name)
def test_valid_sample_decodes_and_round_trips(path: Path) -> None:
    model = SCHEMAS[_schema_name(path)]
    decoded = decode_json(model, path.read_bytes())
    assert decode_json(model, decoded.model_dump_json()) == decoded


def test_every_schema_has_a_valid_sample() -> None:
    covered = {_schema_name(path) for path in _valid_samples()}
    assert covered == set(SCHEMAS)


def test_every_invalid_sample_has_an_expectation() -> None:
    on_disk = {path.name for path in (SAMPLES / "invalid").glob("*.json")}
    assert on_disk == set(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_sample_is_refused_with_a_clear_message(name: str) -> None:
    model = SCHEMAS[name.split(".", 1)[0]]
    with pytest.raises(ContractError) as caught:
        decode_json(model, (SAMPLES / "invalid" / name).read_bytes())
    assert INVALID[name] in str(caught.value)
    assert str(caught.value).startswith(f"invalid {model.__name__}: ")


def test_sample_content_is_what_the_hub_reads() -> None:
    report = decode_json(IncidentReport, (SAMPLES / "incident-report.json").read_bytes())
    assert report.level.roman == "II"
    assert report.level.label_zh == "重大"
    assert report.category.label_zh == "自然灾害"
    assert [r.kind.label_zh for r in report.reports] == ["初报", "续报"]
    assert report.occurred_at.utcoffset() is not None
