"""Enumerations, field rules and the error helpers of the JSON contracts."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus, WarningColour
from contracts.errors import ContractError, decode_data, decode_json
from contracts.incidents import FollowUpCreate, IncidentCreate, IncidentReport, Notification

NOW = datetime(2025, 7, 12, 4, 5, tzinfo=UTC)


def _create(**changes: object) -> dict[str, object]:
    """Return a valid IncidentCreate body with `changes` applied."""
    body: dict[str, object] = {
        "category": "natural_disaster",
        "level": "II",
        "title": "暴雨",
        "occurred_at": "2025-07-12T03:40:00+08:00",
        "affected_cities": ["xuzhou"],
    }
    return body | changes


@pytest.mark.parametrize(
    ("given", "expected"),
    [("I", IncidentLevel.I), (" iii ", IncidentLevel.III), (4, IncidentLevel.IV), (2, 2)],
)
def test_level_reads_roman_or_number(given: object, expected: IncidentLevel) -> None:
    assert decode_data(IncidentCreate, _create(level=given)).level == expected


@pytest.mark.parametrize("given", ["V", 0, 5, True, "2", None, 2.0])
def test_level_refuses_anything_else(given: object) -> None:
    with pytest.raises(ContractError, match="level"):
        decode_data(IncidentCreate, _create(level=given))


def test_level_is_written_as_roman_in_json_and_kept_as_enum_in_python() -> None:
    create = decode_data(IncidentCreate, _create(level=1))
    assert '"level":"I"' in create.model_dump_json()
    assert create.model_dump()["level"] is IncidentLevel.I


def test_enum_labels_are_chinese() -> None:
    assert [c.label_zh for c in IncidentCategory] == [
        "自然灾害",
        "事故灾难",
        "公共卫生事件",
        "社会安全事件",
    ]
    assert [lvl.label_zh for lvl in IncidentLevel] == ["特别重大", "重大", "较大", "一般"]
    assert [lvl.roman for lvl in IncidentLevel] == ["I", "II", "III", "IV"]
    assert [s.label_zh for s in IncidentStatus] == ["已接报", "处置中", "已结束"]


def test_colour_maps_to_cap_severity() -> None:
    assert {c.value: c.cap_severity for c in WarningColour} == {
        "red": "Extreme",
        "orange": "Severe",
        "yellow": "Moderate",
        "blue": "Minor",
    }
    assert WarningColour.ORANGE.label_zh == "橙色"


def test_title_is_stripped_and_bounded() -> None:
    assert decode_data(IncidentCreate, _create(title="  暴雨  ")).title == "暴雨"
    with pytest.raises(ContractError, match="title: String should have at most 200"):
        decode_data(IncidentCreate, _create(title="雨" * 201))


def test_affected_cities_are_one_to_ten() -> None:
    with pytest.raises(ContractError, match="affected_cities: Tuple should have at least 1"):
        decode_data(IncidentCreate, _create(affected_cities=[]))
    many = [f"city-{n}" for n in range(11)]
    with pytest.raises(ContractError, match="affected_cities: Tuple should have at most 10"):
        decode_data(IncidentCreate, _create(affected_cities=many))


def test_occurred_at_may_lead_reported_at_by_clock_skew_only() -> None:
    fields = {
        "id": uuid4(),
        "reporting_city": "xuzhou",
        "category": "accident_disaster",
        "level": "IV",
        "title": "车辆追尾",
        "reported_at": NOW,
        "affected_cities": ["xuzhou"],
    }
    skewed = NOW.replace(minute=9)
    assert IncidentReport(**fields, occurred_at=skewed).occurred_at == skewed
    with pytest.raises(ContractError, match="occurred_at is after reported_at"):
        decode_data(IncidentReport, fields | {"occurred_at": NOW.replace(minute=11)})


def test_models_are_frozen() -> None:
    follow_up = FollowUpCreate(body="续报内容")
    with pytest.raises(ValueError, match="frozen"):
        follow_up.body = "改"  # type: ignore[misc]


def test_notification_reason_and_defaults() -> None:
    note = Notification(
        id=uuid4(),
        incident_id=uuid4(),
        recipient_city="suqian",
        reason="affected",
        level=IncidentLevel.II,
        title="暴雨",
        reporting_city="xuzhou",
        created_at=NOW,
    )
    assert note.schema_version == 1
    assert note.exercise is False


def test_decode_json_refuses_oversize_before_parsing() -> None:
    with pytest.raises(ContractError, match="more than the limit of 10 bytes") as caught:
        decode_json(FollowUpCreate, '{"body": "一二三"}', max_bytes=10)
    assert caught.value.problems[0].location == ""


def test_decode_json_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(ContractError, match="invalid FollowUpCreate: malformed JSON"):
        decode_json(FollowUpCreate, b'{"body": "\xff\xfe"}')


def test_decode_json_lists_every_problem_location() -> None:
    with pytest.raises(ContractError) as caught:
        decode_json(IncidentCreate, b'{"category": "flood", "level": "V"}')
    locations = [problem.location for problem in caught.value.problems]
    assert locations == ["category", "level", "title", "occurred_at", "affected_cities"]
    assert isinstance(caught.value, ValueError)
