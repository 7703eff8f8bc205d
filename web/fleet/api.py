"""API of the vehicles (移动指挥车): the fleet, a vehicle's track, its commands; sending one."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from flask import Blueprint, current_app, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.mqtt import GotoAction, OpenVideoAction, ReportPositionAction, SetStatusAction
from hub.app import settings_of
from hub.extensions import db
from hub.fleet import commands as command_service
from hub.fleet import services as fleet_service
from hub.fleet.models import Vehicle, VehicleCommand, VehiclePosition
from hub.kernel import cities as city_service
from web.api.models import Out, StoredTime
from web.api.params import Query, QueryInt, QueryTime
from web.api.spec import operation
from web.auth import api_auth, current_actor
from web.kick import kick_mqtt

bp = Blueprint("fleet_api", __name__, url_prefix="/api/v1")
TAGS = ("fleet",)


class VehicleOut(Out):
    """A vehicle as the hub last heard of it: position, business status, on or off the air."""

    id: int
    city: str
    code: str
    name: str
    online: bool
    online_changed_at: StoredTime | None
    latitude: float | None
    longitude: float | None
    speed_kmh: float | None
    heading: float | None
    position_at: StoredTime | None
    status: str | None
    status_note: str | None
    status_at: StoredTime | None
    area_city: str | None = Field(description="the member city it is in now (None: outside the region)")


class VehicleList(Out):
    """Vehicles, by city and code."""

    items: list[VehicleOut]


class VehicleQuery(Query):
    """Whose vehicles to list."""

    city: str | None = Field(None, description="city slug (default: every city)")


class PositionOut(Out):
    """One position report of a vehicle."""

    at: StoredTime
    seq: int
    latitude: float
    longitude: float
    speed_kmh: float
    heading: float


class Track(Out):
    """A vehicle's positions, oldest first."""

    vehicle: int
    items: list[PositionOut]


class TrackQuery(Query):
    """Which part of a track: [since, until), the latest `limit` positions of it."""

    since: QueryTime | None = Field(None, description="first time (with an offset), inclusive")
    until: QueryTime | None = Field(None, description="last time (with an offset), exclusive")
    limit: QueryInt = Field(500, ge=1, le=fleet_service.MAX_TRACK_POINTS)

    @model_validator(mode="after")
    def _in_order(self) -> TrackQuery:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must come before until")
        return self


class CommandOut(Out):
    """A command to a vehicle and where it is in its life (pending, received, done, rejected,
    timed_out, expired)."""

    command_id: uuid.UUID
    vehicle: int
    kind: str
    arguments: dict[str, Any]
    issued_at: StoredTime
    expires_at: StoredTime
    state: str
    state_at: StoredTime
    reason: str | None
    acked_at: StoredTime | None
    exercise: bool


class CommandList(Out):
    """A vehicle's latest commands, newest first."""

    items: list[CommandOut]


class CommandQuery(Query):
    """How many of a vehicle's latest commands."""

    limit: QueryInt = Field(20, ge=1, le=200)


class CommandIn(BaseModel):
    """A command for a vehicle of the caller's city, as the vehicle page sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Notices reach vehicles from the hub when a warning concerns their city, never from a caller.
    action: Annotated[
        GotoAction | SetStatusAction | ReportPositionAction | OpenVideoAction, Field(discriminator="kind")
    ]
    ttl_seconds: int = Field(600, ge=10, le=86_400, description="how long the command stays valid")


def _vehicle(row: Vehicle) -> VehicleOut:
    return VehicleOut(
        id=row.id,
        city=row.city.slug,
        code=row.code,
        name=row.name,
        online=row.online,
        online_changed_at=row.online_changed_at,
        latitude=row.latitude,
        longitude=row.longitude,
        speed_kmh=row.speed_kmh,
        heading=row.heading,
        position_at=row.position_at,
        status=row.status,
        status_note=row.status_note,
        status_at=row.status_at,
        area_city=row.area_city.slug if row.area_city else None,
    )


def _position(row: VehiclePosition) -> PositionOut:
    return PositionOut(
        at=row.at,
        seq=row.seq,
        latitude=row.latitude,
        longitude=row.longitude,
        speed_kmh=row.speed_kmh,
        heading=row.heading,
    )


def _command(row: VehicleCommand) -> CommandOut:
    return CommandOut(
        command_id=row.command_id,
        vehicle=row.vehicle_id,
        kind=row.kind,
        arguments=row.arguments,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        state=row.state,
        state_at=row.state_at,
        reason=row.reason,
        acked_at=row.acked_at,
        exercise=row.exercise,
    )


@bp.get("/vehicles")
@api_auth
@operation(query=VehicleQuery, tags=TAGS, HTTP_200=VehicleList)
def list_vehicles(query: VehicleQuery) -> ResponseReturnValue:
    """List the region's vehicles (or one city's) as the vehicles page shows them."""
    city_id = city_service.by_slug(db.session, query.city).id if query.city else None
    rows = fleet_service.vehicles(db.session, city_id)
    return VehicleList(items=[_vehicle(v) for v in rows]).model_dump(mode="json")


@bp.get("/vehicles/<int:vehicle_id>")
@api_auth
@operation(tags=TAGS, HTTP_200=VehicleOut)
def get_vehicle(vehicle_id: int) -> ResponseReturnValue:
    """Return one vehicle."""
    return _vehicle(fleet_service.vehicle(db.session, vehicle_id)).model_dump(mode="json")


@bp.get("/vehicles/<int:vehicle_id>/positions")
@api_auth
@operation(query=TrackQuery, tags=TAGS, HTTP_200=Track)
def get_track(vehicle_id: int, query: TrackQuery) -> ResponseReturnValue:
    """Return a vehicle's track in a time range: its latest `limit` positions there, oldest first."""
    rows = fleet_service.track(
        db.session, vehicle_id, since=query.since, until=query.until, limit=query.limit
    )
    return Track(vehicle=vehicle_id, items=[_position(p) for p in rows]).model_dump(mode="json")


@bp.get("/vehicles/<int:vehicle_id>/commands")
@api_auth
@operation(query=CommandQuery, tags=TAGS, HTTP_200=CommandList)
def list_commands(vehicle_id: int, query: CommandQuery) -> ResponseReturnValue:
    """List a vehicle's latest commands with their state, newest first."""
    fleet_service.vehicle(db.session, vehicle_id)
    rows = command_service.for_vehicle(db.session, vehicle_id, limit=query.limit)
    return CommandList(items=[_command(c) for c in rows]).model_dump(mode="json")


@bp.post("/vehicles/<int:vehicle_id>/commands")
@api_auth
@operation(json=CommandIn, tags=TAGS, HTTP_201=(CommandOut, "Queued for the vehicle; follow its state"))
def send_command(vehicle_id: int, body: CommandIn) -> ResponseReturnValue:
    """Send a command to a vehicle of the caller's city (the vehicle page's command form)."""
    command = command_service.send_command(
        db.session,
        current_actor(),
        vehicle_id,
        body.action,
        root=settings_of(current_app).mqtt_root,
        ttl=timedelta(seconds=body.ttl_seconds),
    )
    db.session.commit()
    kick_mqtt(current_app)
    location = url_for("fleet_api.get_command", vehicle_id=vehicle_id, command_id=command.command_id)
    return _command(command).model_dump(mode="json"), 201, {"Location": location}


@bp.get("/vehicles/<int:vehicle_id>/commands/<uuid:command_id>")
@api_auth
@operation(tags=TAGS, HTTP_200=CommandOut)
def get_command(vehicle_id: int, command_id: uuid.UUID) -> ResponseReturnValue:
    """Return one command of a vehicle and its state."""
    command = command_service.by_vehicle_and_id(db.session, vehicle_id, command_id)
    return _command(command).model_dump(mode="json")
