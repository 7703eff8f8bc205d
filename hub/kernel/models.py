"""The kernel's tables: cities, users and tokens, the audit trail, the flow-request and MQTT
outboxes, dead letters and reminders."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from hub.extensions import Model, db
from hub.kernel.types import UTCDateTime, utcnow


class AuditEntry(Model):
    """One change made by a person, a partner platform or the hub itself."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # user, partner, system
    actor: Mapped[str] = mapped_column(String(64))  # username, token name or process
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id"), nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    before: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)

    city: Mapped[City | None] = relationship(lazy="joined")


class AuditTrailIsAppendOnly(RuntimeError):
    """Raised when code tries to change or delete an audit entry."""


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, flush_context: object, instances: object) -> None:
    """Refuse updates and deletes of audit entries (the database refuses them too)."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry) and (obj in session.deleted or session.is_modified(obj)):
            raise AuditTrailIsAppendOnly("audit entries cannot be changed or deleted")


# Stored in both directions so "neighbours of X" is one join.
city_neighbours = Table(
    "city_neighbours",
    db.metadata,
    Column("city_id", ForeignKey("cities.id", ondelete="CASCADE"), primary_key=True),
    Column("neighbour_id", ForeignKey("cities.id", ondelete="CASCADE"), primary_key=True),
)


class City(Model):
    """A member city of the hub."""

    __tablename__ = "cities"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    division_code: Mapped[str] = mapped_column(String(12), unique=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    province_zh: Mapped[str] = mapped_column(String(64))
    province_en: Mapped[str] = mapped_column(String(64))
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)

    neighbours: Mapped[list[City]] = relationship(
        secondary=city_neighbours,
        primaryjoin=lambda: City.id == city_neighbours.c.city_id,
        secondaryjoin=lambda: City.id == city_neighbours.c.neighbour_id,
        order_by=lambda: City.slug,
    )

    def name(self, locale: str) -> str:
        """Return the city's name in the given locale."""
        return self.name_zh if locale.startswith("zh") else self.name_en

    def __repr__(self) -> str:
        return f"<City {self.slug}>"


class Role(enum.StrEnum):
    """What a person may do; a person acts for one city."""

    COORDINATOR = "coordinator"
    DUTY_OFFICER = "duty_officer"
    OBSERVER = "observer"
    ADMIN = "admin"


class User(Model):
    """A person bound to one city with one role."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Part of every session's id: raising it ends every session signed before (log-out, new
    # password, deactivation), since a signed cookie cannot be taken back from the browser.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    city: Mapped[City] = relationship(lazy="joined")

    # Flask-Login protocol
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_generation}"

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role.value}@{self.city_id}>"


class ApiToken(Model):
    """A bearer token for one city's platform; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    city: Mapped[City] = relationship(lazy="joined")


class FlowRequestStatus:
    """States of a requested flow run."""

    PENDING = "pending"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    ALL = (PENDING, STARTED, DONE, FAILED)


class FlowRequest(Model):
    """A flow the hub has decided to run, written in the same transaction as its cause."""

    __tablename__ = "flow_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    flow_name: Mapped[str] = mapped_column(String(64))
    # Same key, same request: recording one cause twice never starts two flows.
    key: Mapped[str] = mapped_column(String(128), unique=True)
    parameters: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(
        Enum(*FlowRequestStatus.ALL, name="flow_request_status", native_enum=False, length=16),
        default=FlowRequestStatus.PENDING,
        index=True,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The hub node whose dispatcher claimed the request, and the last sign of life of the run
    # carrying it: the watchdog requeues a started request when either has gone quiet.
    claimed_by: Mapped[str | None] = mapped_column(String(96), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class HubNode(Model):
    """One running hub process (web, dispatcher, scheduler, ingest worker), seen by every other.

    Each process writes its row when it starts and its `last_seen_at` every few seconds; a node
    whose row has gone quiet is dead to the others, which take over what it had claimed.
    """

    __tablename__ = "hub_nodes"

    name: Mapped[str] = mapped_column(String(96), primary_key=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BridgeState(Model):
    """Whether a city-edge broker's bridge to the regional broker is up, as its broker last said.

    Written from Mosquitto's retained bridge notifications (`contracts.mqtt.BridgeLinkState`);
    one row per city, kept apart from `hub_nodes`: a bridge does not beat, it speaks only when
    its link changes, so the nodes' rule (quiet for 30 s: dead) would call every steady bridge
    dead, and a bridge has no host or process of the hub's to look at.
    """

    __tablename__ = "bridge_states"

    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), primary_key=True)
    connected: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # when it became so
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # when the hub last heard it


class MqttOutbox(Model):
    """A message to publish, written in the same transaction as the change that caused it."""

    __tablename__ = "mqtt_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(256))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    qos: Mapped[int] = mapped_column(Integer, default=1)
    # Set when the message carries a vehicle command, so publishing can be recorded on it.
    command_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeadLetter(Model):
    """An inbound message that broke its contract, kept for a person to look at."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # "mqtt", "partner", …
    topic: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    size: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the first bytes only, see MAX_KEPT
    # The city it came from or for, when that can be told; None: the administrators' alone.
    city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id"), nullable=True, index=True)


class Reminder(Model):
    """A reminder the hub sent a city about something it owes (a receipt, an answer, a report)."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("kind", "subject_id", "city_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # receipt, verification, daily_report
    subject_id: Mapped[int] = mapped_column(Integer)  # recipient row, request or day ordinal
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))  # reminded, flagged
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)

    city: Mapped[City] = relationship(lazy="joined")


class DeskAcknowledgement(Model):
    """A person of a city saw an urgent item on its desk: the item stops sounding and says so."""

    __tablename__ = "desk_acknowledgements"
    __table_args__ = (UniqueConstraint("city_id", "item_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    item_key: Mapped[str] = mapped_column(String(128))  # DeskItem.key
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(128))  # the person's name at the time
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
