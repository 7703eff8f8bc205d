"""The demo's conference history: two held meetings, signed minutes, a mix of action items; once."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from hub.action_items import services as action_items
from hub.consultations import services as consultations
from hub.consultations.models import ConferenceBodyRow, Meeting
from hub.consultations.seed import seed_demo_conference
from hub.extensions import db
from hub.kernel.models import FlowRequest


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
