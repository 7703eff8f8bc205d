"""Invitations go to the cities' platforms and to the registry's experts, as iTIP messages.

Real partner simulators over HTTP, the flow through Prefect's harness; the calendar objects are
read back with the `icalendar` package.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import select

from contracts.consultations import ConsultationCall
from contracts.partner import InvitationMethod, MeetingInvitationDelivery
from flows import consultations as consultation_flows
from flows.scheduler import Scheduler
from hub.app import settings_of
from hub.consultations import calendar
from hub.consultations import services as consultations
from hub.consultations.models import ExpertInvitation, Meeting
from hub.consultations.services import INVITATION_RETRY_MINUTES
from hub.extensions import db
from hub.kernel import cities
from hub.kernel.actors import Actor
from hub.kernel.models import FlowRequest, Role
from hub.mutual_aid import services as registry
from hub.partners import services as partners
from tests.hub.mutual_aid.factories import entry

pytestmark = pytest.mark.usefixtures("prefect_harness")
ADMIN = Actor.system("test")


class _Quiet:
    def wake(self) -> None:
        pass


def _register_expert(
    owner: str, external_id: str, type_code: str = "expert.flood", **overrides: object
) -> None:
    owner_city = cities.by_slug(db.session, owner)
    registry.register_entry(
        db.session,
        Actor("system", "seed", owner_city.id, Role.COORDINATOR),
        entry(owner, external_id, type_code=type_code, name=f"{owner}专家{external_id}", **overrides),
    )
    db.session.commit()


def _call(make_user, *invited: str, specialities: tuple[str, ...] = ("expert.flood",)) -> Meeting:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    meeting = consultations.call(
        db.session,
        linyi,
        ConsultationCall(
            title="沂河洪水会商",
            starts_at=datetime.now(UTC) + timedelta(minutes=30),
            invited_cities=invited,
            video_link="https://video.example.cn/room/42",
            expert_specialities=specialities,
        ),
    )
    db.session.commit()
    return meeting


def _invite_request(meeting: Meeting) -> dict[str, object]:
    db.session.expire_all()
    keys = db.session.scalars(
        select(FlowRequest)
        .where(FlowRequest.flow_name == consultations.INVITE)
        .order_by(FlowRequest.id.desc())
    ).all()
    assert keys, "the call asked for no delivery"
    assert str(meeting.public_id) in keys[0].key
    return dict(keys[0].parameters)


def _event(delivery: MeetingInvitationDelivery):  # type: ignore[no-untyped-def]
    cal = Calendar.from_ical(delivery.calendar)
    assert cal["METHOD"] == delivery.method.value
    (event,) = cal.walk("VEVENT")
    return event


def test_invitations_reach_the_platforms_and_experts_with_an_itip_request_once(platforms, make_user) -> None:
    xuzhou, heze = platforms("xuzhou"), platforms("heze")
    _register_expert("xuzhou", "expert-flood-1")
    _register_expert("xuzhou", "expert-chem-1", type_code="expert.hazchem")  # another speciality
    _register_expert("jining", "expert-flood-2")  # a city not invited
    meeting = _call(make_user, "xuzhou", "heze")

    (expert,) = meeting.experts
    assert (expert.city.slug, expert.speciality) == ("xuzhou", "expert.flood")

    # The desks hold the invitations from the call's commit, before any flow runs.
    assert all(i.delivered_at is not None for i in [*meeting.invitations, *meeting.experts])
    assert xuzhou.meeting_invitations() == []
    outcome = consultation_flows.deliver_invitations(**_invite_request(meeting))
    # linyi (the organizer) has no platform: it works in the hub.
    assert outcome == {"delivered": 3, "hub": 1}
    assert consultation_flows.deliver_invitations(**_invite_request(meeting)) == {}

    city_invitations = [i for i in xuzhou.meeting_invitations() if i.expert is None]
    expert_invitations = [i for i in xuzhou.meeting_invitations() if i.expert is not None]
    assert len(city_invitations) == len(expert_invitations) == 1
    assert expert_invitations[0].expert is not None
    assert expert_invitations[0].expert.resource_id == expert.resource_id
    assert len(heze.meeting_invitations()) == 1
    assert xuzhou.stats.meeting_invitation_duplicates == 0

    uid = calendar.meeting_uid(meeting.public_id)
    for delivery in [*xuzhou.meeting_invitations(), *heze.meeting_invitations()]:
        assert delivery.method is InvitationMethod.REQUEST and delivery.sequence == 0
        event = _event(delivery)
        assert str(event["UID"]) == uid
        assert int(event["SEQUENCE"]) == 0
        chairs = [a for a in event.get("ATTENDEE") if a.params.get("ROLE") == "CHAIR"]
        assert [str(a) for a in chairs] == ["mailto:linyi@cities.huaihai-hub.invalid"]
        experts = [a for a in event.get("ATTENDEE") if a.params.get("CUTYPE") == "INDIVIDUAL"]
        assert [a.params["CN"] for a in experts] == [expert.name]
        assert event.decoded("DTSTART") == meeting.starts_at.replace(microsecond=0)

    db.session.expire_all()
    stored = db.session.get(Meeting, meeting.id)
    assert stored is not None
    assert {i.city.slug: i.platform_sequence for i in stored.invitations} == {
        "linyi": 0,
        "xuzhou": 0,
        "heze": 0,
    }
    assert {i.city.slug: bool(i.platform_ref) for i in stored.invitations}["linyi"] is False
    assert stored.experts[0].platform_sequence == 0 and stored.experts[0].delivered_at is not None


def test_a_cancellation_goes_as_itip_cancel_with_the_same_uid_and_a_higher_sequence(
    platforms, make_user
) -> None:
    xuzhou = platforms("xuzhou")
    meeting = _call(make_user, "xuzhou", specialities=())
    consultation_flows.deliver_invitations(**_invite_request(meeting))
    consultations.cancel(db.session, Actor.for_user(make_user("ly2", "linyi")), meeting.public_id, "水情缓解")
    db.session.commit()
    outcome = consultation_flows.deliver_invitations(**_invite_request(meeting))
    assert outcome == {"delivered": 1, "hub": 1}

    request, cancel = xuzhou.meeting_invitations()
    assert (request.method, cancel.method) == (InvitationMethod.REQUEST, InvitationMethod.CANCEL)
    assert request.id == cancel.id and cancel.sequence == request.sequence + 1
    before, after = _event(request), _event(cancel)
    assert str(before["UID"]) == str(after["UID"]) == calendar.meeting_uid(meeting.public_id)
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
    assert str(after["STATUS"]) == "CANCELLED"


def test_a_cancellation_before_any_platform_took_the_invitation_sends_nothing(platforms, make_user) -> None:
    xuzhou = platforms("xuzhou")
    meeting = _call(make_user, "xuzhou", specialities=())
    consultations.cancel(db.session, Actor.for_user(make_user("ly2", "linyi")), meeting.public_id, "误报")
    db.session.commit()
    assert consultation_flows.deliver_invitations(**_invite_request(meeting)) == {}
    assert xuzhou.meeting_invitations() == []


def test_a_platform_that_refuses_for_good_is_asked_once_and_the_others_still_get_theirs(
    platforms, make_user, flow_app, city, caplog: pytest.LogCaptureFixture
) -> None:
    xuzhou, heze = platforms("xuzhou"), platforms("heze")
    # The hub holds a token xuzhou's platform does not know: 401, which asking again cannot cure.
    partners.register(
        db.session, ADMIN, city("xuzhou"), xuzhou.url, "not-the-token", settings=settings_of(flow_app)
    )
    db.session.commit()
    meeting = _call(make_user, "xuzhou", "heze", specialities=())
    caplog.set_level(logging.WARNING, logger="connectors.partner_client")
    outcome = consultation_flows.deliver_invitations(**_invite_request(meeting))
    assert outcome == {"failed": 1, "delivered": 1, "hub": 1}
    refusals = [
        r for r in caplog.records if r.name == "connectors.partner_client" and "401" in r.getMessage()
    ]
    assert len(refusals) == 1  # no retry of a permanent refusal
    assert xuzhou.meeting_invitations() == [] and len(heze.meeting_invitations()) == 1
    db.session.expire_all()
    (refused,) = [i for i in db.session.get(Meeting, meeting.id).invitations if i.city.slug == "xuzhou"]
    assert refused.platform_error and refused.platform_sequence is None


@pytest.mark.slow  # the delivery task's retries run their real delays
def test_a_platform_down_is_tried_again_by_the_scheduler_and_gets_the_invitation_once(
    platforms, make_user, settings
) -> None:
    xuzhou = platforms("xuzhou")
    xuzhou.fail(count=100)
    meeting = _call(make_user, "xuzhou", specialities=())
    outcome = consultation_flows.deliver_invitations(**_invite_request(meeting))
    assert outcome["failed"] == 1
    db.session.expire_all()
    (failed,) = [i for i in db.session.get(Meeting, meeting.id).invitations if i.city.slug == "xuzhou"]
    assert failed.platform_error and failed.platform_sequence is None

    xuzhou.fail(count=0)
    scheduler = Scheduler(settings, wake=_Quiet())
    # The start of a retry slot, so that five seconds later is surely the same slot.
    slot_seconds = 60 * INVITATION_RETRY_MINUTES
    now = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) // slot_seconds * slot_seconds, UTC)
    scheduler.tick(now)
    scheduler.tick(now + timedelta(seconds=5))  # the same slot: no second request
    retry = _invite_request(meeting)
    retries = db.session.scalars(select(FlowRequest).where(FlowRequest.key.like("%:retry:%"))).all()
    assert len(retries) == 1
    assert consultation_flows.deliver_invitations(**retry) == {"delivered": 1}
    assert len(xuzhou.meeting_invitations()) == 1
    db.session.expire_all()
    (done,) = [i for i in db.session.get(Meeting, meeting.id).invitations if i.city.slug == "xuzhou"]
    assert done.platform_error is None and done.platform_sequence == 0


def test_the_platform_answers_at_the_answer_path_for_the_city_and_for_its_expert(
    platforms, make_user, make_token, client: FlaskClient
) -> None:
    xuzhou = platforms("xuzhou")
    _register_expert("xuzhou", "expert-flood-1")
    meeting = _call(make_user, "xuzhou")
    consultation_flows.deliver_invitations(**_invite_request(meeting))
    headers = {"Authorization": f"Bearer {make_token('xuzhou')}"}
    for delivery in xuzhou.meeting_invitations():
        body = {"answer": "delegate", "delegate_name": "张伟"} if delivery.expert else {"answer": "accept"}
        response = client.post(delivery.answer_path, json=body, headers=headers)
        assert response.status_code == 200, response.get_json()

    db.session.expire_all()
    stored = db.session.get(Meeting, meeting.id)
    assert stored is not None
    assert {i.city.slug: i.answer for i in stored.invitations}["xuzhou"] == "accept"
    (expert,) = stored.experts
    assert (expert.answer, expert.delegate_name) == ("delegate", "张伟")

    # Another city cannot answer for xuzhou's expert.
    (expert_delivery,) = [d for d in xuzhou.meeting_invitations() if d.expert]
    refused = client.post(
        expert_delivery.answer_path,
        json={"answer": "decline"},
        headers={"Authorization": f"Bearer {make_token('heze')}"},
    )
    assert refused.status_code in (403, 404)
    db.session.expire_all()
    assert db.session.get(ExpertInvitation, expert.id).answer == "delegate"
