"""Signed minutes go out as bulletins: to the members with receipts, and their public part to all."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from contracts.common import IncidentCategory
from contracts.consultations import MinutesRevision
from hub.bulletins import services as bulletins
from hub.consultations import services as consultations
from hub.consultations.models import Meeting
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput
from hub.kernel.models import FlowRequest, Role
from tests.hub.consultations.test_services import _actor, _call


@pytest.fixture
def linyi(make_user):
    return Actor.for_user(make_user("ly-coord", "linyi"))


def _signed(linyi, content: str = "一、汛情\n二、调度", public_part: str = "", **call: object) -> Meeting:
    meeting = consultations.call(db.session, linyi, _call(**call))
    consultations.save_minutes(
        db.session,
        linyi,
        meeting.public_id,
        MinutesRevision(base_revision=0, content=content, public_part=public_part),
    )
    consultations.sign(db.session, linyi, meeting.public_id)
    db.session.commit()
    return meeting


def test_signing_asks_once_for_the_minutes_to_go_out(linyi) -> None:
    meeting = _signed(linyi)
    requests = db.session.scalars(
        select(FlowRequest).where(FlowRequest.flow_name == consultations.DISTRIBUTE_MINUTES)
    ).all()
    assert [(r.key, r.parameters) for r in requests] == [
        (f"{consultations.DISTRIBUTE_MINUTES}:{meeting.public_id}", {"meeting_id": meeting.id})
    ]


def test_minutes_go_to_the_members_as_a_restricted_bulletin_once(linyi, make_user) -> None:
    meeting = _signed(linyi)
    bulletin_id = consultations.distribute_minutes(db.session, meeting.id)
    assert bulletin_id is not None and meeting.minutes_bulletin_id == bulletin_id
    assert consultations.distribute_minutes(db.session, meeting.id) is None
    bulletin = bulletins.get_for(db.session, linyi, bulletin_id)
    assert bulletin.issuing_city.slug == "linyi"
    assert bulletin.scope == "restricted"
    assert bulletin.title == "【会议纪要】沂河洪水会商"
    assert bulletin.text.startswith("一、汛情\n二、调度")
    assert sorted(r.city.slug for r in bulletin.recipients) == ["jining", "xuzhou", "zaozhuang"]
    # A conference without an incident is filed under the closest of the four categories.
    assert bulletin.category == IncidentCategory.NATURAL.value
    assert not bulletins.visible_to(bulletin, _actor(make_user, "suqian").city_id)


def test_minutes_on_an_incident_take_its_category(linyi, make_incident) -> None:
    incident = make_incident("linyi", "II", category="accident_disaster")
    meeting = _signed(linyi, incident_id=str(incident.public_id))
    bulletin_id = consultations.distribute_minutes(db.session, meeting.id)
    assert bulletin_id is not None
    assert bulletins.get_for(db.session, linyi, bulletin_id).category == "accident_disaster"


def test_minutes_too_long_for_a_bulletin_send_the_decisions_and_a_link(linyi) -> None:
    meeting = _signed(linyi, content="纪" * 12_000)
    text = consultations.minutes_bulletin_text(db.session, meeting)
    assert len(text) <= consultations.BULLETIN_TEXT_LIMIT
    assert "纪要全文超出通报篇幅" in text
    assert f"/consultations/{meeting.public_id}" in text
    assert consultations.distribute_minutes(db.session, meeting.id) is not None


def test_unsigned_minutes_do_not_go_out(linyi) -> None:
    meeting = consultations.call(db.session, linyi, _call())
    assert consultations.distribute_minutes(db.session, meeting.id) is None


def test_the_chair_publishes_the_public_part_once(linyi, make_user) -> None:
    meeting = _signed(linyi, public_part="请沿河群众注意避险。")
    with pytest.raises(Forbidden):
        consultations.publish_public_part(db.session, _actor(make_user, "xuzhou"), meeting.public_id)
    bulletin_id = consultations.publish_public_part(db.session, linyi, meeting.public_id)
    bulletin = bulletins.get_for(db.session, _actor(make_user, "suqian"), bulletin_id)
    assert (bulletin.scope, bulletin.text) == ("public", "请沿河群众注意避险。")
    assert bulletin.title.startswith("【会议公告】")
    with pytest.raises(Conflict):
        consultations.publish_public_part(db.session, linyi, meeting.public_id)


def test_no_public_part_nothing_to_publish(linyi) -> None:
    meeting = _signed(linyi)
    with pytest.raises(InvalidInput):
        consultations.publish_public_part(db.session, linyi, meeting.public_id)


def test_unsigned_minutes_cannot_be_published(linyi) -> None:
    meeting = consultations.call(db.session, linyi, _call())
    with pytest.raises(Conflict):
        consultations.publish_public_part(db.session, linyi, meeting.public_id)


def test_an_observer_cannot_publish(linyi, make_user) -> None:
    meeting = _signed(linyi, public_part="公开")
    with pytest.raises(Forbidden):
        consultations.publish_public_part(
            db.session, _actor(make_user, "linyi", Role.OBSERVER), meeting.public_id
        )
