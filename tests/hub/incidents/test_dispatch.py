"""Sending a vehicle to an incident: its place, its own city's vehicles, never a drill's or a closed one."""

from __future__ import annotations

import pytest

from contracts.common import ReportKind
from contracts.incidents import FollowUpCreate
from hub.extensions import db
from hub.fleet import commands
from hub.fleet import services as fleet
from hub.incidents import dispatch
from hub.incidents import services as incidents
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, Forbidden, InvalidInput
from hub.kernel.models import Role

ADMIN = Actor("system", "tests", None, Role.ADMIN)


@pytest.fixture
def vehicle(app, city):
    registered, _ = fleet.register_vehicle(db.session, ADMIN, city("linyi"), "v01", "临沂1号指挥车")
    db.session.commit()
    return registered


def test_a_vehicle_goes_to_the_incidents_place_as_the_incidents_command(
    vehicle, make_user, make_incident
) -> None:
    incident = make_incident("linyi", latitude=35.06, longitude=118.35)
    linyi = Actor.for_user(make_user("ly", "linyi"))
    assert dispatch.vehicles_to_send(db.session, linyi) == [(vehicle.id, "临沂1号指挥车 · v01")]
    dispatch.send_vehicle(db.session, linyi, incident.id, vehicle.id, root="hh")
    db.session.commit()
    (command,) = commands.for_incident(db.session, incident.id)
    assert (command.arguments["lat"], command.arguments["lon"]) == (35.06, 118.35)
    assert command.arguments["note"].startswith(incident.title)


def test_no_place_no_drill_no_closed_incident_and_own_vehicles_only(
    vehicle, make_user, make_incident
) -> None:
    linyi = Actor.for_user(make_user("ly", "linyi"))
    xuzhou = Actor.for_user(make_user("xz", "xuzhou"))
    observer = Actor.for_user(make_user("obs", "linyi", Role.OBSERVER))
    nowhere = make_incident("linyi")
    with pytest.raises(InvalidInput):
        dispatch.send_vehicle(db.session, linyi, nowhere.id, vehicle.id, root="hh")
    drill = make_incident("linyi", latitude=35.0, longitude=118.3, exercise=True)
    with pytest.raises(InvalidInput):
        dispatch.send_vehicle(db.session, linyi, drill.id, vehicle.id, root="hh")
    live = make_incident("linyi", latitude=35.0, longitude=118.3)
    with pytest.raises(Forbidden):
        dispatch.send_vehicle(db.session, xuzhou, live.id, vehicle.id, root="hh")
    assert dispatch.vehicles_to_send(db.session, observer) == []
    incidents.add_report(db.session, linyi, live.id, FollowUpCreate(kind=ReportKind.FINAL, body="办结。"))
    db.session.commit()
    with pytest.raises(Conflict):
        dispatch.send_vehicle(db.session, linyi, live.id, vehicle.id, root="hh")
    db.session.rollback()
    assert commands.for_incident(db.session, live.id) == []
