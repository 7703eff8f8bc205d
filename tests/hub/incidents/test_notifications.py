"""Who hears about an incident, and delivering to a city once only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.extensions import db
from hub.incidents import notifications
from hub.incidents.models import Notification
from hub.kernel.actors import Actor
from hub.kernel.errors import Forbidden
from hub.kernel.models import Role


def test_recipients_are_neighbours_of_affected_without_the_reporter(make_incident) -> None:
    incident = make_incident("linyi", "II")
    assert notifications.recipients(incident) == [
        ("jining", "neighbour"),
        ("lianyungang", "neighbour"),
        ("xuzhou", "neighbour"),
        ("zaozhuang", "neighbour"),
    ]


def test_affected_cities_are_told_as_affected(make_incident) -> None:
    incident = make_incident("shangqiu", "IV", affected_cities=["shangqiu", "heze"])
    got = dict(notifications.recipients(incident))
    assert got["heze"] == "affected"
    assert got["huaibei"] == "neighbour"  # neighbour of Shangqiu
    assert got["jining"] == "neighbour"  # neighbour of Heze
    assert "shangqiu" not in got


def test_delivering_twice_stores_once(make_incident) -> None:
    incident = make_incident("linyi", "II")
    first, created = notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    again, created_again = notifications.deliver(
        db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None
    )
    db.session.commit()
    assert (created, created_again) == (True, False)
    assert first.id == again.id
    assert len(db.session.scalars(select(Notification)).all()) == 1


def test_only_the_recipient_city_marks_read(make_incident, make_user) -> None:
    incident = make_incident("linyi", "II")
    notification, _ = notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    db.session.commit()
    with pytest.raises(Forbidden):
        notifications.mark_read(
            db.session, Actor.for_user(make_user("hz", "heze", Role.COORDINATOR)), notification.id
        )
    with pytest.raises(Forbidden):  # observers only read
        notifications.mark_read(
            db.session, Actor.for_user(make_user("obs", "xuzhou", Role.OBSERVER)), notification.id
        )
    notifications.mark_read(
        db.session, Actor.for_user(make_user("xz", "xuzhou", Role.DUTY_OFFICER)), notification.id
    )
    assert notification.read_at is not None


def test_a_notice_is_routed_to_the_officer_and_leader_on_duty_when_it_arrives(
    make_incident, make_user
) -> None:
    from hub.duty import services as duty
    from hub.kernel.types import utcnow

    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    day, shift = duty.shift_at(utcnow())
    duty.import_roster(
        db.session,
        xuzhou,
        f"date,shift,officer,officer_phone,leader,leader_phone\n{day},{shift},王磊,,刘建国,\n",
    )
    incident = make_incident("linyi", "II")
    routed, _ = notifications.deliver(db.session, incident.id, "xuzhou", "neighbour", flow_run_id=None)
    unrostered, _ = notifications.deliver(db.session, incident.id, "jining", "neighbour", flow_run_id=None)
    db.session.commit()
    assert (routed.duty_officer, routed.duty_leader) == ("王磊", "刘建国")
    assert (unrostered.duty_officer, unrostered.duty_leader) == (None, None)
