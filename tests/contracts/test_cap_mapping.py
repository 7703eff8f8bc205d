"""Incidents become CAP alerts in the GB/T 35965.1 form, and CAP alerts give incident fields."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from contracts.cap import (
    CapAlert,
    CapError,
    CapStatus,
    alert_from_incident,
    build_cap,
    cap_reference,
    gbt_identifier,
    incident_fields_from_cap,
    parse_cap,
)
from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus, WarningColour
from contracts.errors import ContractError
from contracts.incidents import IncidentReport

REPORT = IncidentReport(
    id=UUID("3f6d2a8e-5b1c-4e7a-9d0f-2c8b7a6e5d41"),
    reporting_city="xuzhou",
    category=IncidentCategory.NATURAL,
    level=IncidentLevel.II,
    title="徐州市铜山区暴雨引发城市内涝",
    description="多处道路积水。",
    location="徐州市铜山区",
    occurred_at=datetime(2025, 7, 11, 19, 40, tzinfo=UTC),
    reported_at=datetime(2025, 7, 11, 20, 5, 30, 123456, tzinfo=UTC),
    affected_cities=("xuzhou", "suzhou-ah"),
)


def _alert(report: IncidentReport = REPORT, **options: object) -> CapAlert:
    """Map `report` with the usual sender and a division code, `options` overriding."""
    arguments: dict[str, object] = {
        "sender": "xuzhou@huaihai.example",
        "division_code": "320300",
        "sequence": 0,
    }
    return alert_from_incident(report, **(arguments | options))  # type: ignore[arg-type]


def test_identifier_has_the_gbt_35965_form_in_beijing_time() -> None:
    assert _alert().identifier == "32030000000000_20250712040530_0"
    assert gbt_identifier("320300", REPORT.reported_at, 7, agency_code="123") == (
        "32030012300000_20250712040530_7"
    )


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"division_code": "3203"}, "division code must be 6 digits"),
        ({"agency_code": "12"}, "agency code must be 3 digits"),
        ({"sequence": 10}, "sequence must be 0 to 9"),
    ],
)
def test_identifier_parts_are_checked(arguments: dict[str, object], words: str) -> None:
    with pytest.raises(ContractError, match=words):
        _alert(**arguments)


def test_identifier_without_division_code_is_a_stable_uuid_urn() -> None:
    first = _alert(division_code=None).identifier
    assert first.startswith("urn:uuid:")
    assert _alert(division_code=None).identifier == first
    assert _alert(division_code=None, sequence=1).identifier != first


def test_incident_maps_to_cap_fields() -> None:
    alert = _alert()
    info = alert.infos[0]
    assert (alert.status, alert.msg_type, alert.scope) == ("Actual", "Alert", "Restricted")
    assert alert.incidents == str(REPORT.id)
    assert (info.language, info.categories, info.event) == ("zh-CN", ("Met",), "自然灾害")
    assert (info.severity, info.urgency, info.certainty) == ("Severe", "Immediate", "Observed")
    assert info.headline == REPORT.title
    assert info.parameter("事件级别") == "II"
    assert info.areas[0].area_desc == "徐州市铜山区"
    assert [g.value for g in info.areas[0].geocodes] == ["xuzhou", "suzhou-ah"]


def test_colour_sets_severity_and_a_parameter() -> None:
    info = _alert(colour=WarningColour.ORANGE).infos[0]
    assert info.severity == "Severe"
    assert info.parameter("预警颜色") == "橙色"
    assert _alert(colour=WarningColour.RED).infos[0].severity == "Extreme"


def test_exercise_is_always_sent_as_exercise() -> None:
    drill = REPORT.model_copy(update={"exercise": True})
    assert _alert(drill).status is CapStatus.EXERCISE
    assert _alert(drill, status="Exercise").status is CapStatus.EXERCISE
    with pytest.raises(ContractError, match="must be sent with status Exercise"):
        _alert(drill, status="Actual")
    with pytest.raises(ContractError, match="must be sent with status Actual"):
        _alert(status="Exercise")


def test_update_refers_to_the_earlier_alert() -> None:
    first = _alert()
    update = _alert(sequence=1, references=cap_reference(first))
    assert update.msg_type == "Update"
    assert update.references == (
        "xuzhou@huaihai.example,32030000000000_20250712040530_0,2025-07-12T04:05:30+08:00"
    )


def test_closed_incident_is_all_clear() -> None:
    info = _alert(REPORT.model_copy(update={"status": IncidentStatus.CLOSED})).infos[0]
    assert (info.urgency, info.response_types) == ("Past", ("AllClear",))


def test_built_alert_parses_back_and_gives_the_incident_fields() -> None:
    alert = _alert(colour=WarningColour.ORANGE)
    assert parse_cap(build_cap(alert)) == alert
    assert incident_fields_from_cap(parse_cap(build_cap(alert))) == {
        "category": IncidentCategory.NATURAL,
        "level": IncidentLevel.II,
        "title": REPORT.title,
        "description": REPORT.description,
        "exercise": False,
        "colour": WarningColour.ORANGE,
    }


def _foreign(info: str, status: str = "Actual") -> CapAlert:
    """Parse an alert from another system, with one info."""
    return parse_cap(
        f"""<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
        <identifier>A</identifier><sender>s</sender><sent>2025-07-12T04:05:00+08:00</sent>
        <status>{status}</status><msgType>Alert</msgType><scope>Public</scope>
        <info><language>en-US</language><category>Met</category><event>Rain</event>
        <urgency>Expected</urgency><severity>Minor</severity><certainty>Likely</certainty>
        <headline>Heavy rain</headline></info>{info}</alert>""".encode()
    )


def test_fields_prefer_the_chinese_info_and_map_cap_categories() -> None:
    chinese = """<info><language>zh-CN</language><category>Env</category><event>污染</event>
        <urgency>Expected</urgency><severity>Unknown</severity><certainty>Likely</certainty>
        <parameter><valueName>预警颜色</valueName><value>yellow</value></parameter></info>"""
    fields = incident_fields_from_cap(_foreign(chinese, status="Exercise"))
    assert fields["category"] is IncidentCategory.ACCIDENT
    assert fields["level"] is IncidentLevel.III
    assert fields["colour"] is WarningColour.YELLOW
    assert (fields["title"], fields["description"], fields["exercise"]) == ("污染", "", True)


def test_fields_fall_back_to_severity() -> None:
    fields = incident_fields_from_cap(_foreign(""))
    assert (fields["level"], fields["colour"], fields["title"]) == (
        IncidentLevel.IV,
        WarningColour.BLUE,
        "Heavy rain",
    )


@pytest.mark.parametrize(
    ("info", "status", "words"),
    [
        ("", "Test", "status Test does not describe an incident"),
        (
            """<info><language>zh-CN</language><category>Other</category><event>e</event>
            <urgency>Past</urgency><severity>Minor</severity><certainty>Likely</certainty></info>""",
            "Actual",
            "CAP categories Other do not map",
        ),
        (
            """<info><language>zh-CN</language><category>Met</category><event>e</event>
            <urgency>Past</urgency><severity>Unknown</severity><certainty>Likely</certainty></info>""",
            "Actual",
            "severity Unknown and no colour",
        ),
    ],
)
def test_fields_refuse_what_is_not_an_incident(info: str, status: str, words: str) -> None:
    with pytest.raises(CapError, match=words):
        incident_fields_from_cap(_foreign(info, status))
