"""Consultation flows through Prefect's harness: each step once, re-runs and re-ticks harmless."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from contracts.consultations import ActionItemCreate, ConsultationCall, InvitationAnswer
from flows import consultations as consultation_flows
from flows.context import use_app
from flows.incidents import notify_neighbours
from flows.scheduler import Scheduler
from hub.action_items import services as action_items
from hub.action_items.models import ActionItemReminder
from hub.consultations import services as consultations
from hub.consultations.models import Meeting
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import FlowRequest

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def flow_app(app: Flask) -> Iterator[Flask]:
    use_app(app)
    yield app
    use_app(None)


class _Quiet:
    def wake(self) -> None:
        pass


def _requests(flow_name: str) -> list[FlowRequest]:
    db.session.expire_all()
    return list(db.session.scalars(select(FlowRequest).where(FlowRequest.flow_name == flow_name)))


def test_a_level_ii_incident_is_proposed_once_through_the_notification_flow(flow_app, make_incident) -> None:
    incident = make_incident("linyi", "II")
    notify_neighbours(incident.id)
    notify_neighbours(incident.id)
    (request,) = _requests(consultations.PROPOSE)
    first = consultation_flows.propose_consultation(**request.parameters)
    assert first is not None
    assert consultation_flows.propose_consultation(**request.parameters) is None
    meeting = db.session.scalars(select(Meeting).where(Meeting.incident_id == incident.id)).one()
    assert meeting.status == consultations.PROPOSED and meeting.organizer_city.slug == "linyi"


def test_a_level_iii_incident_of_one_city_is_not_proposed(flow_app, make_incident) -> None:
    notify_neighbours(make_incident("heze", "III").id)
    assert _requests(consultations.PROPOSE) == []


def test_call_deliver_remind_and_open_each_once(flow_app, make_user, settings) -> None:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    starts_at = datetime.now(UTC) + timedelta(minutes=30)
    meeting = consultations.call(
        db.session,
        linyi,
        ConsultationCall(title="会商", starts_at=starts_at, invited_cities=("xuzhou", "heze")),
    )
    db.session.commit()
    (invite,) = _requests(consultations.INVITE)
    # The call put the invitations on the desks; no city has a platform here, so the flow only
    # notes that each takes its invitation in the hub.
    assert all(i.delivered_at is not None for i in meeting.invitations)
    assert consultation_flows.deliver_invitations(**invite.parameters) == {"hub": 3}
    assert consultation_flows.deliver_invitations(**invite.parameters) == {}
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    consultations.answer(db.session, xuzhou, meeting.public_id, InvitationAnswer(answer="accept"))
    db.session.commit()

    scheduler = Scheduler(settings, wake=_Quiet())
    # Reminders are asked for once per meeting and minute: both ticks fall in one minute.
    due = datetime.now(UTC) + consultations.REMIND_AFTER
    later = due.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=1)
    scheduler.tick(later)
    scheduler.tick(later + timedelta(seconds=5))
    reminders = _requests(consultations.REMIND_ANSWERS)
    assert len(reminders) == 1
    assert consultation_flows.remind_invitations(**reminders[0].parameters) == 1
    scheduler.tick(later + timedelta(minutes=2))
    assert len(_requests(consultations.REMIND_ANSWERS)) == 1

    scheduler.tick(starts_at + timedelta(seconds=1))
    scheduler.tick(starts_at + timedelta(seconds=6))
    (quorum,) = _requests(consultations.QUORUM)
    assert consultation_flows.check_quorum(**quorum.parameters) is True
    assert consultation_flows.check_quorum(**quorum.parameters) is None
    db.session.expire_all()
    assert db.session.get(Meeting, meeting.id).status == consultations.OPENED


def test_action_item_reminders_are_sent_once_per_slot(flow_app, make_user, city, settings) -> None:
    chair = Actor.for_user(make_user("ly", "linyi"))
    due = date.today() + timedelta(days=5)
    (item,) = action_items.open_items(
        db.session,
        chair,
        [ActionItemCreate(owner_city="xuzhou", title="报送物资清单", due_on=due)],
        origin="resolution",
        origin_id=1,
        context_id=None,
        chair_city_id=city("linyi").id,
    )
    db.session.commit()
    scheduler = Scheduler(settings, wake=_Quiet())
    slot_day = due - timedelta(days=3)
    at = datetime(slot_day.year, slot_day.month, slot_day.day, 2, 0, tzinfo=UTC)
    for minutes in (0, 5, 60):
        scheduler.tick(at + timedelta(minutes=minutes))
    (request,) = _requests(action_items.REMIND)
    assert consultation_flows.remind_action_item(**request.parameters) is True
    assert consultation_flows.remind_action_item(**request.parameters) is False
    assert len(db.session.scalars(select(ActionItemReminder)).all()) == 1
    overdue = datetime(due.year, due.month, due.day, 2, 0, tzinfo=UTC) + timedelta(days=2)
    scheduler.tick(overdue)
    keys = sorted(r.key for r in _requests(action_items.REMIND))
    assert keys[-1] == f"action-item:{item.public_id}:overdue-{(due + timedelta(days=2)).isoformat()}"


def test_raising_an_incident_to_level_ii_proposes_a_consultation(flow_app, make_incident, make_user) -> None:
    from contracts.common import IncidentLevel
    from hub.incidents import services as incident_service
    from hub.kernel.models import Role

    incident = make_incident("linyi", "IV")
    assert _requests(consultations.PROPOSE) == []
    coordinator = Actor.for_user(make_user("ly-raise", "linyi", Role.COORDINATOR))
    incident_service.update_incident(
        db.session, coordinator, incident.id, incident_service.IncidentChanges(level=IncidentLevel.II)
    )
    db.session.commit()
    (notify,) = _requests("notify-neighbours")
    notify_neighbours(**notify.parameters)
    (request,) = _requests(consultations.PROPOSE)
    assert consultation_flows.propose_consultation(**request.parameters) is not None


def test_signed_minutes_are_distributed_once(flow_app, make_user) -> None:
    from contracts.consultations import MinutesRevision

    linyi = Actor.for_user(make_user("ly-sign", "linyi"))
    meeting = consultations.call(
        db.session,
        linyi,
        ConsultationCall.model_validate(
            {
                "title": "纪要下发",
                "starts_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "invited_cities": ["xuzhou", "heze"],
            }
        ),
    )
    consultations.save_minutes(
        db.session, linyi, meeting.public_id, MinutesRevision(base_revision=0, content="纪要")
    )
    consultations.sign(db.session, linyi, meeting.public_id)
    db.session.commit()
    (request,) = _requests(consultations.DISTRIBUTE_MINUTES)
    first = consultation_flows.distribute_minutes(**request.parameters)
    assert first is not None
    assert consultation_flows.distribute_minutes(**request.parameters) is None
    assert len(_requests("distribute-bulletin")) == 1
