"""The demo's conference history: two held meetings, signed minutes, a mix of action items; once."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from contracts.common import IncidentLevel
from hub.action_items import services as action_items
from hub.consultations import services as consultations
from hub.consultations.models import ConferenceBodyRow, Meeting
from hub.consultations.seed import seed_demo_conference, seed_demo_flood
from hub.extensions import db
from hub.incidents import services as incidents
from hub.incidents.services import IncidentChanges
from hub.kernel import cities
from hub.kernel.actors import Actor
from hub.kernel.models import FlowRequest, Role
from hub.mutual_aid.seed import seed_demo_registry


def test_demo_conference_history_is_seeded_once(app) -> None:
    assert seed_demo_conference(db.session) == 2
    db.session.commit()
    assert seed_demo_conference(db.session) == 0
    (body,) = db.session.scalars(select(ConferenceBodyRow)).all()
    definition = consultations.body_contract(body)
    assert len(definition.member_cities) == 10
    assert len(consultations.upcoming_turns(body)) == 10
    meetings = db.session.scalars(select(Meeting).order_by(Meeting.seq)).all()
    assert [m.seq for m in meetings] == [1, 2]
    assert all(m.signed_at is not None and m.status == consultations.CLOSED for m in meetings)
    assert meetings[0].host_city_id != meetings[1].host_city_id
    items = action_items.all_of(db.session, origin=consultations.ORIGIN)
    closed = [i for i in items if i.closed_at is not None]
    overdue = [i for i in items if i.closed_at is None and action_items.is_overdue(i)]
    open_on_time = [i for i in items if i.closed_at is None and not action_items.is_overdue(i)]
    assert closed and overdue and open_on_time
    # The item left open at the first meeting is on the second one's agenda, carried over.
    assert any(a.carried_over for a in meetings[1].agenda_items)
    # Their minutes go out through the bulletin pipeline like any signed minutes.
    keys = db.session.scalars(
        select(FlowRequest.key).where(FlowRequest.flow_name == consultations.DISTRIBUTE_MINUTES)
    ).all()
    assert sorted(keys) == sorted(f"{consultations.DISTRIBUTE_MINUTES}:{m.public_id}" for m in meetings)


def test_demo_conference_seeds_on_any_day_of_the_month(app) -> None:
    assert seed_demo_conference(db.session, today=date(2027, 1, 31)) == 2


def test_raising_the_demo_flood_in_linyi_to_level_ii_proposes_a_consultation_with_flood_experts(app) -> None:
    seed_demo_registry(db.session)
    incident_id = seed_demo_flood(db.session)
    assert incident_id is not None
    db.session.commit()
    assert seed_demo_flood(db.session) is None
    # At level III in one city it calls for no consultation.
    assert consultations.request_proposal(db.session, incident_id) is False

    linyi = cities.by_slug(db.session, "linyi")
    incidents.update_incident(
        db.session,
        Actor("user", "linyi-coord", linyi.id, Role.COORDINATOR),
        incident_id,
        IncidentChanges(level=IncidentLevel.II),
    )
    db.session.commit()
    # The level change asks for the notification flow, which asks for the proposal (flows/incidents.py).
    notify = db.session.scalars(
        select(FlowRequest.key).where(FlowRequest.key.like(f"{incidents.NOTIFY_NEIGHBOURS}:%:L2:%"))
    ).all()
    assert len(notify) == 1
    assert consultations.request_proposal(db.session, incident_id) is True
    meeting = consultations.propose_for_incident(db.session, incident_id)
    assert meeting is not None and meeting.status == consultations.PROPOSED
    assert meeting.organizer_city.slug == "linyi"
    invited = {i.city.slug for i in meeting.invitations}
    assert invited == {"linyi", *(n.slug for n in linyi.neighbours)}
    experts = {(e.city.slug, e.speciality) for e in meeting.experts}
    assert experts == {(slug, "expert.flood") for slug in invited}
