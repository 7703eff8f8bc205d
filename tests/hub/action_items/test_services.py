"""Action items in the database: owner-only changes, evidence to close, chair reopens, reminders once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from contracts.consultations import ActionItemClose, ActionItemCreate, ActionItemProgress, ActionItemReopen
from hub.action_items import services as action_items
from hub.action_items.models import ActionItemReminder
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput
from hub.kernel.models import AuditEntry, FlowRequest


@pytest.fixture
def item(make_user, city):
    chair = Actor.for_user(make_user("ly", "linyi"))
    (opened,) = action_items.open_items(
        db.session,
        chair,
        [
            ActionItemCreate(
                owner_city="xuzhou", title="巡查沂河徐州段", due_on=date.today() + timedelta(days=5)
            )
        ],
        origin="resolution",
        origin_id=1,
        context_id=None,
        chair_city_id=city("linyi").id,
    )
    db.session.commit()
    return opened


def test_open_records_the_event_and_audit(item) -> None:
    assert [e.kind for e in item.events] == ["opened"]
    assert item.state == "open" and item.owner_city.slug == "xuzhou"
    assert db.session.scalars(select(AuditEntry.action)).all()[-1] == "action_item.opened"


def test_only_the_owner_updates_and_closes_with_evidence(item, make_user) -> None:
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    linyi = Actor.for_user(make_user("ly2", "linyi"))
    with pytest.raises(Forbidden):
        action_items.add_progress(db.session, linyi, item.public_id, ActionItemProgress(note="x"))
    action_items.add_progress(db.session, xuzhou, item.public_id, ActionItemProgress(note="已巡查一半"))
    closed = action_items.close(
        db.session, xuzhou, item.public_id, ActionItemClose.model_validate({"evidence": {"note": "巡查完毕"}})
    )
    assert closed.state == "closed" and closed.evidence == {"note": "巡查完毕", "documents": []}
    with pytest.raises(Conflict):
        action_items.add_progress(db.session, xuzhou, item.public_id, ActionItemProgress(note="又一次"))
    with pytest.raises(Forbidden):
        action_items.reopen(db.session, xuzhou, item.public_id, ActionItemReopen(reason="不够"))
    action_items.reopen(db.session, linyi, item.public_id, ActionItemReopen(reason="证据不足"))
    assert item.state == "reopened" and item.evidence is None
    assert [e.kind for e in item.events] == ["opened", "progress", "closed", "reopened"]


def test_a_past_due_date_is_refused(make_user, city) -> None:
    chair = Actor.for_user(make_user("ly", "linyi"))
    with pytest.raises(InvalidInput):
        action_items.open_items(
            db.session,
            chair,
            [ActionItemCreate(owner_city="xuzhou", title="x", due_on=date(2020, 1, 1))],
            origin="resolution",
            origin_id=1,
            context_id=None,
            chair_city_id=city("linyi").id,
        )


def test_each_reminder_slot_is_requested_and_sent_once(item, city) -> None:
    due_day = item.due_on - timedelta(days=3)
    at = datetime(due_day.year, due_day.month, due_day.day, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    action_items.schedule_reminders(db.session, at, None)
    action_items.schedule_reminders(db.session, at + timedelta(minutes=5), None)
    (request,) = db.session.scalars(select(FlowRequest)).all()
    assert request.key == f"action-item:{item.public_id}:before-3d-{due_day.isoformat()}"
    assert action_items.record_reminder(db.session, **request.parameters) is True
    assert action_items.record_reminder(db.session, **request.parameters) is False
    assert len(db.session.scalars(select(ActionItemReminder)).all()) == 1


def test_overdue_items_of_a_city(item, city) -> None:
    later = datetime.combine(item.due_on + timedelta(days=2), datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=4
    )
    assert [i.id for i in action_items.overdue_for(db.session, city("xuzhou").id, later)] == [item.id]
    assert action_items.overdue_for(db.session, city("xuzhou").id) == []
    assert action_items.days_overdue(item, later) == 2


def test_overdue_items_reach_the_chair(item, city) -> None:
    later = datetime.combine(item.due_on + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=4
    )
    assert [i.id for i in action_items.overdue_chaired_by(db.session, city("linyi").id, later)] == [item.id]
    assert action_items.overdue_chaired_by(db.session, city("xuzhou").id, later) == []
