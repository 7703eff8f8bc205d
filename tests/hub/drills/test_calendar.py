"""Scheduled drills in the conference calendar feed, and a corrective action related to its drill."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import icalendar
from flask.testing import FlaskClient

from contracts.drills import EXERCISE_PREFIX, CorrectiveActionCreate
from hub.action_items import rules as action_rules
from hub.consultations.calendar import meeting_uid
from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.types import utcnow
from tests.hub.drills.conftest import played_to_endex


def _components(raw: bytes, name: str) -> dict[str, icalendar.cal.Component]:
    return {str(c["uid"]): c for c in icalendar.Calendar.from_ical(raw).walk(name)}


def test_approved_drills_are_events_of_their_cities_feeds_and_drafts_are_not(
    make_drill: Callable[..., Drill], client: FlaskClient, make_token: Callable[[str], str]
) -> None:
    drill = make_drill()
    draft = make_drill(name="草案演练", approved=False)
    linyi = {"Authorization": f"Bearer {make_token('linyi')}"}

    feed = client.get("/api/v1/consultations/calendar/linyi.ics", headers=linyi)
    assert feed.status_code == 200
    events = _components(feed.get_data(), "VEVENT")
    event = events[meeting_uid(drill.public_id)]
    assert str(event["summary"]).startswith(EXERCISE_PREFIX)
    assert event.decoded("dtstart") == drill.startex and event.decoded("dtend") == drill.endex
    assert "防汛应急预案" in str(event["description"])
    assert meeting_uid(draft.public_id) not in events

    heze = client.get("/api/v1/consultations/calendar/heze.ics", headers=linyi).get_data()
    assert meeting_uid(drill.public_id) not in _components(heze, "VEVENT")
    region = client.get("/api/v1/consultations/calendar.ics", headers=linyi).get_data()
    assert meeting_uid(drill.public_id) in _components(region, "VEVENT")


def test_a_corrective_action_is_a_todo_of_its_owner_related_to_the_drill(
    make_drill: Callable[..., Drill], controller: Actor, client: FlaskClient, make_token: Callable[[str], str]
) -> None:
    drill = played_to_endex(make_drill())
    due = action_rules.local_day(utcnow()) + timedelta(days=10)
    data = CorrectiveActionCreate(
        owner_city="linyi", title="修订巡堤报告时限", due_on=due, plan="防汛应急预案"
    )
    services.add_corrective_action(db.session, controller, drill.id, data)
    db.session.commit()
    feed = client.get(
        "/api/v1/consultations/calendar/linyi.ics", headers={"Authorization": f"Bearer {make_token('linyi')}"}
    ).get_data()
    (todo,) = [t for t in _components(feed, "VTODO").values() if str(t["summary"]) == "修订巡堤报告时限"]
    assert str(todo["related-to"]) == meeting_uid(drill.public_id)
    assert todo.decoded("due") == due
