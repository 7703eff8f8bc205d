"""Bulletins and warnings as CAP 1.2: what the hub emits, it reads back unchanged in meaning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts.bulletins import BulletinMessage
from contracts.cap import (
    CapScope,
    CapStatus,
    alert_from_bulletin,
    build_cap,
    parse_cap,
    warning_fields_from_cap,
)
from contracts.common import IncidentCategory, WarningColour


def _message(**overrides: object) -> BulletinMessage:
    issued = datetime(2026, 11, 29, 1, 30, tzinfo=UTC)
    body = {
        "id": uuid.uuid4(),
        "kind": "warning",
        "issuing_city": "linyi",
        "colour": "orange",
        "category": "natural_disaster",
        "area": "沂河流域临沂段",
        "title": "沂河洪水橙色预警",
        "text": "预计未来12小时沂河临沂段将出现超警戒水位，请沿河各地做好防范。",
        "scope": "restricted",
        "addressed_cities": ["xuzhou", "suqian"],
        "receipt_deadline": issued + timedelta(minutes=30),
        "issued_at": issued,
        "expires_at": issued + timedelta(hours=12),
        "exercise": False,
    }
    body.update(overrides)
    return BulletinMessage.model_validate(body)


def test_warning_round_trip_keeps_its_meaning() -> None:
    message = _message()
    alert = alert_from_bulletin(message, sender="linyi@huaihai-hub", division_code="371300")
    again = parse_cap(build_cap(alert))
    assert again == alert
    assert again.identifier.startswith("371300000")
    assert again.scope is CapScope.RESTRICTED and "xuzhou" in (again.restriction or "")
    fields = warning_fields_from_cap(again)
    assert fields["colour"] is WarningColour.ORANGE
    assert fields["category"] is IncidentCategory.NATURAL
    assert (fields["title"], fields["text"], fields["area"]) == (message.title, message.text, message.area)
    assert fields["addressed_cities"] == ("xuzhou", "suqian")
    assert fields["expires_at"] == message.expires_at
    assert fields["scope"] == "restricted" and fields["exercise"] is False


def test_exercise_and_cancel() -> None:
    alert = alert_from_bulletin(
        _message(exercise=True, cancelled=True, scope="public"), sender="s", division_code=None
    )
    assert alert.status is CapStatus.EXERCISE
    assert alert.msg_type.value == "Cancel"
    assert alert.identifier.startswith("urn:uuid:")
