"""Vehicles for an incident: send one to its place (a "go to" linked to the incident, so it joins
its story), and watch an area around the place for vehicles entering or leaving it."""

from __future__ import annotations

from datetime import timedelta

from contracts.common import IncidentStatus
from contracts.mqtt import GotoAction
from hub.fleet import areas
from hub.fleet import commands as fleet_commands
from hub.fleet import services as fleet
from hub.incidents import services
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict, InvalidInput
from hub.kernel.types import DbSession

# A vehicle may take a while to see a command (a tunnel, a dead spot); a dispatch stays valid longer
# than a command from the vehicle's page, whose default is ten minutes.
DISPATCH_TTL = timedelta(minutes=30)


def vehicles_to_send(session: DbSession, actor: Actor) -> list[tuple[int, str]]:
    """Return the vehicles (id, label) the actor may send: their own city's, if they may act for it."""
    if not actor.can_write_incidents or actor.city_id is None:
        return []
    return [(v.id, f"{v.name} · {v.code}") for v in fleet.vehicles(session, actor.city_id)]


def send_vehicle(
    session: DbSession, actor: Actor, incident_id: int, vehicle_id: int, *, root: str, note: str = ""
) -> None:
    """Send one of the actor's city's vehicles to the incident's place; the command is the incident's."""
    incident = services.get_incident(session, incident_id)
    if incident.status is IncidentStatus.CLOSED:
        raise Conflict("the incident is closed", reason="incident_closed")
    if incident.exercise:
        # A drill's vehicles are commanded by the drill, under the exercise root, ended at ENDEX.
        raise InvalidInput(
            "an exercise incident's vehicles are sent by its drill", reason="incident_exercise"
        )
    if incident.latitude is None or incident.longitude is None:
        raise InvalidInput(
            "the incident has no place on the map to send a vehicle to", reason="incident_no_place"
        )
    action = GotoAction(
        lat=incident.latitude,
        lon=incident.longitude,
        note=(note or f"{incident.title} {incident.location}")[:500],
    )
    fleet_commands.send_command(
        session, actor, vehicle_id, action, root=root, ttl=DISPATCH_TTL, incident_id=incident.id
    )


def watch_area(session: DbSession, actor: Actor, incident_id: int, radius_m: float) -> None:
    """Watch a circle around the incident's place; its city's desk hears of vehicles entering or leaving."""
    incident = services.get_incident(session, incident_id)
    if incident.status is IncidentStatus.CLOSED:
        raise Conflict("the incident is closed", reason="incident_closed")
    if incident.latitude is None or incident.longitude is None:
        raise InvalidInput(
            "the incident has no place on the map to draw an area around", reason="incident_no_place"
        )
    areas.watch_circle(
        session,
        actor,
        incident_id=incident.id,
        owner_city_id=incident.reporting_city_id,
        latitude=incident.latitude,
        longitude=incident.longitude,
        radius_m=radius_m,
    )
