"""Injects that prompt a city to ask for aid or call a consultation: what the city then does in
those capabilities, as exercise, is measured as its answer; live work never is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from contracts.drills import ExpectedAction
from hub.consultations import services as consultations
from hub.drills import services
from hub.drills.models import Drill
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import User
from hub.kernel.types import utcnow
from hub.mutual_aid import services as mutual_aid
from tests.hub.consultations.test_services import _call
from tests.hub.mutual_aid.factories import CONTACT, line

PROMPTS = (
    "number,offset,city,channel,message,expected_action,expected_within,contingency_of\r\n"
    "1,0:00:00,linyi,aid_request,请向邻市申请排涝泵车,aid_requested,0:30:00,\r\n"
    "2,0:00:00,linyi,consultation_call,请发起联席会商,consultation_called,0:30:00,\r\n"
)


def _played(make_drill: Callable[..., Drill]) -> Drill:
    drill = make_drill(csv=PROMPTS)
    start = utcnow() - timedelta(seconds=5)
    services.start(db.session, drill.id, start)
    for number in (1, 2):
        assert services.deliver(db.session, drill.id, number, now=start).outcome == "delivered"
    db.session.commit()
    return drill


def test_an_exercise_aid_request_and_consultation_answer_the_prompts(
    make_drill: Callable[..., Drill], make_user: Callable[..., User]
) -> None:
    drill = _played(make_drill)
    linyi = Actor.for_user(make_user("ly-coord", "linyi"))
    request = mutual_aid.create_request(
        db.session, linyi, title="【演练】沂河排涝", lines=[line()], contact=CONTACT, exercise=True
    )
    meeting = consultations.call(db.session, linyi, _call(exercise=True))
    db.session.commit()

    measured = {m.number: m for m in services.measures(db.session, drill)}
    assert measured[1].expected_action is ExpectedAction.AID_REQUESTED
    assert measured[1].action_ref == f"aid_request:{request.public_id}"
    assert measured[1].response_s is not None and 0 < measured[1].response_s < 60
    assert measured[1].in_time is True
    assert measured[2].action_ref == f"consultation:{meeting.public_id}"
    assert measured[2].in_time is True


def test_live_work_and_other_cities_do_not_answer_a_drill(
    make_drill: Callable[..., Drill], make_user: Callable[..., User]
) -> None:
    drill = _played(make_drill)
    linyi = Actor.for_user(make_user("ly-coord", "linyi"))
    heze = Actor.for_user(make_user("hz-coord", "heze"))
    mutual_aid.create_request(db.session, linyi, title="沂河洪水", lines=[line()], contact=CONTACT)
    consultations.call(db.session, linyi, _call())
    mutual_aid.create_request(
        db.session, heze, title="【演练】菏泽", lines=[line()], contact=CONTACT, exercise=True
    )
    db.session.commit()

    measured = {m.number: m for m in services.measures(db.session, drill)}
    assert measured[1].first_action_at is None and measured[1].response_s is None
    assert measured[2].first_action_at is None
