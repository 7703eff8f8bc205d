"""One text rule for every contract: no control characters XML 1.0 cannot carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from contracts.bulletins import BulletinCreate, ReceiptCreate
from contracts.common import NOT_XML_TEXT, refuse_control_characters
from contracts.daily_reports import DailyReportCreate
from contracts.incidents import FollowUpCreate, IncidentCreate
from contracts.mqtt import NoticeAction, VehicleState, VehicleStatus
from contracts.verifications import VerificationAnswerCreate, VerificationCreate

SOON = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
BASE: list[tuple[type[BaseModel], dict[str, object], str]] = [
    (
        IncidentCreate,
        {
            "category": "natural_disaster",
            "level": "II",
            "title": "t",
            "occurred_at": datetime.now(UTC).isoformat(),
            "affected_cities": ["linyi"],
        },
        "title",
    ),
    (
        IncidentCreate,
        {
            "category": "natural_disaster",
            "level": "II",
            "title": "t",
            "occurred_at": SOON,
            "affected_cities": ["linyi"],
            "description": "d",
        },
        "description",
    ),
    (
        IncidentCreate,
        {
            "category": "natural_disaster",
            "level": "II",
            "title": "t",
            "occurred_at": SOON,
            "affected_cities": ["linyi"],
            "location": "l",
        },
        "location",
    ),
    (FollowUpCreate, {"body": "b"}, "body"),
    (
        BulletinCreate,
        {
            "category": "natural_disaster",
            "area": "a",
            "title": "t",
            "text": "x",
            "all_neighbours": True,
            "receipt_deadline": SOON,
        },
        "title",
    ),
    (
        BulletinCreate,
        {
            "category": "natural_disaster",
            "area": "a",
            "title": "t",
            "text": "x",
            "all_neighbours": True,
            "receipt_deadline": SOON,
        },
        "area",
    ),
    (
        BulletinCreate,
        {
            "category": "natural_disaster",
            "area": "a",
            "title": "t",
            "text": "x",
            "all_neighbours": True,
            "receipt_deadline": SOON,
        },
        "text",
    ),
    (ReceiptCreate, {"acknowledged_by": "p"}, "acknowledged_by"),
    (VerificationCreate, {"to_city": "xuzhou", "subject": "s", "question": "q", "deadline": SOON}, "subject"),
    (
        VerificationCreate,
        {"to_city": "xuzhou", "subject": "s", "question": "q", "deadline": SOON},
        "question",
    ),
    (VerificationAnswerCreate, {"answer": "a"}, "answer"),
    (DailyReportCreate, {"body": "b"}, "body"),
    (VehicleStatus, {"state": VehicleState.STANDBY, "note": "n", "at": SOON}, "note"),
    (NoticeAction, {"title": "t", "text": "x", "colour": "red"}, "text"),
]


@pytest.mark.parametrize(
    "bad", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ufffe", "\uffff", "\ud800"]
)
@pytest.mark.parametrize(("model", "fields", "field"), BASE, ids=[f"{m.__name__}.{f}" for m, _, f in BASE])
def test_every_text_field_refuses_control_characters(
    model: type[BaseModel], fields: dict[str, object], field: str, bad: str
) -> None:
    model.model_validate(fields)
    for value in (f"a{bad}b", f"{bad}a", f"a {bad}"):
        with pytest.raises(ValidationError, match="control characters"):
            model.model_validate({**fields, field: value})


def test_tab_line_feed_and_carriage_return_are_text() -> None:
    assert FollowUpCreate(body="一\t二\n三\r\n四").body == "一\t二\n三\r\n四"
    assert refuse_control_characters("\u2028\u202e😀") == "\u2028\u202e😀"
    assert NOT_XML_TEXT.search("\x7f\x85") is None
