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
    cap_reference,
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


def test_cancel_names_the_alert_it_cancels() -> None:
    message = _message()
    original = alert_from_bulletin(message, sender="linyi@huaihai-hub", division_code="371300")
    cancelled_at = message.issued_at + timedelta(hours=1)
    cancel = alert_from_bulletin(
        message.model_copy(update={"cancelled": True}),
        sender="linyi@huaihai-hub",
        division_code="371300",
        cancelled_at=cancelled_at,
    )
    assert cancel.msg_type.value == "Cancel"
    assert cancel.sent == cancelled_at and cancel.identifier != original.identifier
    assert cancel.referenced() == ((original.sender, original.identifier, original.sent),)
    assert parse_cap(build_cap(cancel)) == cancel


def test_cancel_in_the_second_of_issue_still_has_its_own_identifier() -> None:
    for division_code in ("371300", None):
        message = _message()
        original = alert_from_bulletin(message, sender="s", division_code=division_code)
        cancel = alert_from_bulletin(
            message.model_copy(update={"cancelled": True}), sender="s", division_code=division_code
        )
        assert cancel.identifier != original.identifier
        assert cancel.references == cap_reference(original)


def test_cancel_after_the_warning_lapsed_carries_no_expiry() -> None:
    message = _message(cancelled=True)
    assert message.expires_at is not None
    cancel = alert_from_bulletin(
        message, sender="s", division_code=None, cancelled_at=message.expires_at + timedelta(hours=1)
    )
    assert cancel.infos[0].expires is None


def test_a_private_bulletin_is_a_private_alert_with_its_addresses() -> None:
    message = _message(scope="private")
    alert = alert_from_bulletin(message, sender="linyi@huaihai-hub", division_code="371300")
    assert (alert.scope, alert.addressees(), alert.restriction) == (
        CapScope.PRIVATE,
        ("xuzhou", "suqian"),
        None,
    )
    # The addresses it came with are written back as they were, quotes and all.
    kept = alert_from_bulletin(
        message, sender="linyi@huaihai-hub", division_code="371300", addresses='320300 "Suqian EOC"'
    )
    again = parse_cap(build_cap(kept))
    assert again.addresses == '320300 "Suqian EOC"' and again.addressees() == ("320300", "Suqian EOC")
    assert warning_fields_from_cap(again)["scope"] == "private"
    # A cancelled private bulletin is a Private Cancel to the same addressees.
    cancel = alert_from_bulletin(
        _message(scope="private", cancelled=True), sender="linyi@huaihai-hub", division_code="371300"
    )
    assert (cancel.scope, cancel.addressees()) == (CapScope.PRIVATE, ("xuzhou", "suqian"))


def test_restricted_keeps_the_addresses_it_came_with() -> None:
    alert = alert_from_bulletin(
        _message(), sender="linyi@huaihai-hub", division_code="371300", addresses="xuzhou"
    )
    assert (alert.scope, alert.addressees()) == (CapScope.RESTRICTED, ("xuzhou",))
    assert (
        alert_from_bulletin(_message(), sender="linyi@huaihai-hub", division_code="371300").addresses is None
    )
