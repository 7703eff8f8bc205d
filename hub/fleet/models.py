"""Mobile command vehicles and linkage systems: MQTT peers with an identity and a live state."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.extensions import Model
from hub.kernel.models import City
from hub.kernel.types import UTCDateTime, utcnow


class Vehicle(Model):
    """A mobile command vehicle (移动指挥车) of one city, with its last known state."""

    __tablename__ = "vehicles"
    __table_args__ = (UniqueConstraint("city_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))  # the id in its MQTT topics
    name: Mapped[str] = mapped_column(String(64))
    mqtt_username: Mapped[str] = mapped_column(String(128), unique=True)
    # Mosquitto's own PBKDF2 form, so the broker's password file can be rebuilt from the registry.
    mqtt_password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    speed_kmh: Mapped[float | None] = mapped_column(Float, nullable=True)
    heading: Mapped[float | None] = mapped_column(Float, nullable=True)
    position_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status_note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    # The vehicle's connection counter: a will from an older session must not undo a newer online.
    session: Mapped[int] = mapped_column(BigInteger, default=0)
    online_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The member city the vehicle counts as in (None: outside them), decided with hysteresis
    # (hub/fleet/borders.py), and the time of the report that put it there; both None until
    # its first position.
    area_city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id"), nullable=True, index=True)
    area_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    city: Mapped[City] = relationship(lazy="joined", foreign_keys=[city_id])
    area_city: Mapped[City | None] = relationship(lazy="joined", foreign_keys=[area_city_id])


class VehicleCrossing(Model):
    """A vehicle counted as entering another member city, or leaving the member cities."""

    __tablename__ = "vehicle_crossings"

    id: Mapped[int] = mapped_column(primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"), index=True)
    from_city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id"), nullable=True)
    to_city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id"), nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # the report's own time
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)


class VehiclePosition(Model):
    """One telemetry report kept for the position history."""

    __tablename__ = "vehicle_positions"
    # A QoS 1 message delivered twice carries the same (vehicle, time, sequence): stored once.
    # Its index also serves lookups by vehicle: a second index on vehicle_id alone would only cost
    # every insert another B-tree write.
    __table_args__ = (UniqueConstraint("vehicle_id", "at", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float] = mapped_column(Float)
    heading: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommandState:
    """Where a command is in its life."""

    PENDING = "pending"
    RECEIVED = "received"
    DONE = "done"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"
    FINAL = (DONE, REJECTED, TIMED_OUT, EXPIRED)
    ALL = (PENDING, RECEIVED, DONE, REJECTED, TIMED_OUT, EXPIRED)


class VehicleCommand(Model):
    """A command sent to a vehicle, tracked until the vehicle says it is done (or time runs out)."""

    __tablename__ = "vehicle_commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    command_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    arguments: Mapped[dict[str, object]] = mapped_column(JSON)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    state: Mapped[str] = mapped_column(String(16), default=CommandState.PENDING, index=True)
    state_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The vehicle's first answer (received, or done or rejected without one): a goto's done comes
    # on arrival, long after, so `state_at` alone cannot say how quickly the crew answered.
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    publish_count: Mapped[int] = mapped_column(Integer, default=0)
    # A drill's command: published under the exercise root, and expired at its ENDEX.
    exercise: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The incident the vehicle was sent for, if any: the command shows in its timeline.
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True, index=True)

    vehicle: Mapped[Vehicle] = relationship(lazy="joined")


class LinkageSystem(Model):
    """A city's 110/119/120/122 dispatch system, an MQTT peer of the hub."""

    __tablename__ = "linkage_systems"
    __table_args__ = (UniqueConstraint("city_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # "110", "119", "120" or "122"
    name: Mapped[str] = mapped_column(String(64))
    mqtt_username: Mapped[str] = mapped_column(String(128), unique=True)
    mqtt_password_hash: Mapped[str] = mapped_column(String(256))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    session: Mapped[int] = mapped_column(BigInteger, default=0)
    online_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    city: Mapped[City] = relationship(lazy="joined")


class LinkageEventLink(Model):
    """Which incident a linkage system's own event became; makes repeated events idempotent."""

    __tablename__ = "linkage_event_links"
    __table_args__ = (UniqueConstraint("system_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("linkage_systems.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(128))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    last_payload: Mapped[dict[str, object]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WatchArea(Model):
    """An area an incident's owner watches (a circle for now): vehicles entering or leaving it
    are told to the owner's desk (hub/fleet/areas.py)."""

    __tablename__ = "watch_areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)  # whose desk is told
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class WatchAreaPresence(Model):
    """A vehicle counted inside a watched area; the row exists while it is."""

    __tablename__ = "watch_area_presence"

    area_id: Mapped[int] = mapped_column(ForeignKey("watch_areas.id", ondelete="CASCADE"), primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class WatchAreaEvent(Model):
    """A vehicle entering or leaving a watched area, at the time of the report that decided it."""

    __tablename__ = "watch_area_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("watch_areas.id", ondelete="CASCADE"), index=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    entered: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)

    area: Mapped[WatchArea] = relationship(lazy="joined")
    vehicle: Mapped[Vehicle] = relationship(lazy="joined")
