"""The incident as a story: every capability's part, in time order, as the viewer's city may see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.bulletins import BulletinCreate
from contracts.incidents import FollowUpCreate, IncidentCreate
from contracts.mqtt import GotoAction
from hub.bulletins import services as bulletins
from hub.consultations import services as consultations
from hub.extensions import db
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.incidents import notifications, timeline
from hub.incidents import services as incidents
from hub.kernel.actors import Actor
from hub.kernel.models import Role
from hub.mutual_aid import services as mutual_aid
from tests.conftest import incident_payload
from tests.hub.mutual_aid.factories import CONTACT, line

ADMIN = Actor("system", "tests", None, Role.ADMIN)


def _bulletin(incident_id: int, actor: Actor, **overrides: object):
    body = {
        "kind": "bulletin",
        "category": "natural_disaster",
        "area": "沂河流域",
        "title": "沂河洪水通报",
        "text": "沂河临沂段超警戒水位。",
        "addressed_cities": ["xuzhou"],
        "scope": "restricted",
        "receipt_deadline": (datetime.now(UTC) + timedelta(minutes=30)).isoformat(),
        **overrides,
    }
    return bulletins.issue(db.session, actor, BulletinCreate.model_validate(body), incident_id=incident_id)


def test_the_story_tells_every_part_in_time_order(make_user, city) -> None:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    xuzhou_user = make_user("xz", "xuzhou")
    xuzhou = Actor.for_user(xuzhou_user)
    data = IncidentCreate.model_validate(
        incident_payload(
            level="II",
            affected_cities=["linyi", "xuzhou"],
            source="110 转警",
            nature="河道漫堤",
            deaths=0,
            injured=2,
        )
    )
    incident = incidents.create_incident(db.session, linyi, data)
    db.session.commit()
    notice, _ = notifications.deliver(db.session, incident.id, "xuzhou", "affected", flow_run_id=None)
    db.session.commit()
    notifications.mark_read(db.session, xuzhou, notice.id)
    db.session.commit()
    incidents.add_report(
        db.session,
        linyi,
        incident.id,
        FollowUpCreate(
            body="水位回落 0.3 米。", injured=3, missing=1, trend="趋缓", latitude=35.1, longitude=118.3
        ),
    )
    db.session.commit()
    incidents.update_incident(
        db.session, linyi, incident.id, incidents.IncidentChanges(affected_cities=("linyi",))
    )
    db.session.commit()
    _bulletin(incident.id, linyi)
    # Restricted to Xuzhou: Suqian must not see this one.
    vehicle, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号指挥车")
    db.session.commit()
    commands.send_command(
        db.session, linyi, vehicle.id, GotoAction(lat=35.1, lon=118.3), root="hh", incident_id=incident.id
    )
    mutual_aid.create_request(
        db.session,
        linyi,
        title="沂河洪水排涝",
        lines=[line(quantity=4)],
        contact=CONTACT,
        incident_id=incident.id,
    )
    meeting = consultations.propose_for_incident(db.session, incident.id)
    db.session.commit()
    assert meeting is not None

    story = timeline.story(db.session, linyi, incidents.get_incident(db.session, incident.id))
    kinds = [e.kind for e in story]
    assert kinds[0] == "recorded"
    for kind in (
        "report",
        "change",
        "notice",
        "notice_read",
        "bulletin",
        "command",
        "aid_request",
        "meeting",
    ):
        assert kind in kinds, kind
    assert [e.at for e in story] == sorted(e.at for e in story)
    read = next(e for e in story if e.kind == "notice_read")
    assert read.by == "xz" and read.city.slug == "xuzhou"
    assert kinds.index("notice") < kinds.index("notice_read") < kinds.index("report")
    change = next(e for e in story if e.kind == "change" and e.removed)
    assert change.removed == ("xuzhou",)
    assert all(e.at.tzinfo is not None for e in story)

    # The follow-up's figures become the incident's; a figure it left out stays as it was.
    refreshed = incidents.get_incident(db.session, incident.id)
    assert (refreshed.deaths, refreshed.injured, refreshed.missing, refreshed.trend) == (0, 3, 1, "趋缓")
    assert refreshed.source == "110 转警"
    contract = incidents.to_contract(refreshed)
    assert contract.injured == 3 and contract.reports[0].latitude == 35.1

    suqian = Actor.for_user(make_user("sq", "suqian"))
    seen_by_suqian = [e.kind for e in timeline.story(db.session, suqian, refreshed)]
    assert "bulletin" not in seen_by_suqian  # restricted to Xuzhou
    assert "meeting" not in seen_by_suqian  # Suqian is not part of it
    assert "command" in seen_by_suqian
