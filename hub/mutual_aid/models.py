"""The registry of shareable resources, aid requests and their lines, and commitments."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    event,
    inspect,
)
from sqlalchemy.engine import Connection
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from hub.extensions import Model
from hub.kernel.models import City
from hub.kernel.types import UTCDateTime, utcnow
from hub.mutual_aid.rules import cell_of, unit_vector


class Scaled(TypeDecorator[Decimal]):
    """An exact decimal stored as an integer count of 10**-places (SQLite has no exact decimal).

    Quantities keep three places and money two, as the contracts do; sums and comparisons in
    SQL (the ledger's CHECKs and its conditional UPDATE) are then exact on SQLite and PostgreSQL.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, places: int) -> None:
        super().__init__()
        self.places = places
        self.factor = Decimal(10) ** places

    def process_bind_param(self, value: Decimal | int | None, dialect: object) -> int | None:
        if value is None:
            return None
        scaled = Decimal(value) * self.factor
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.places} decimal places")
        return int(scaled)

    def process_result_value(self, value: int | None, dialect: object) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(value) / self.factor).quantize(Decimal(1).scaleb(-self.places))


QUANTITY = Scaled(3)
MONEY = Scaled(2)


class AidResource(Model):
    """One entry of a city's registry (应急资源库) with its quantity ledger.

    The database keeps the ledger's invariant itself: every count is non-negative and reserved
    plus deployed never exceeds what is on hand, whatever the code above it does.
    """

    __tablename__ = "aid_resources"
    __table_args__ = (
        UniqueConstraint("owner_city_id", "external_id"),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("deployed >= 0", name="deployed_not_negative"),
        CheckConstraint("reserved + deployed <= on_hand", name="not_over_committed"),
        # Sourcing reads entries of a few types in service with these columns only
        # (`services.rank_candidates`): the index covers both its passes, so the table is not
        # read. Each pass seeks, per (type, city, grade), only the grid cells near the place
        # (`AidResourceCell` says which cells hold entries). The id ends it so that PostgreSQL
        # answers from the index alone too (SQLite's rowid is in every index anyway).
        Index(
            "ix_aid_resources_sourcing",
            "type_code",
            "status",
            "owner_city_id",
            "grade",
            "cell",
            "ux",
            "uy",
            "uz",
            "verified_at",
            "on_hand",
            "reserved",
            "deployed",
            "lat",
            "lon",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    owner_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    # The owner's own id for the entry (its platform's, a CSV row's): upserts key on it.
    external_id: Mapped[str] = mapped_column(String(128))
    type_code: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A team, expert or vehicle is one unit booked for a time window.
    bookable: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200))
    on_hand: Mapped[Decimal] = mapped_column(QUANTITY)
    reserved: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))
    deployed: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))
    unit: Mapped[str] = mapped_column(String(16))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    # The place on the unit sphere (`rules.unit_vector`), so that sourcing orders entries by
    # distance with a dot product. Filled from lat/lon on every insert (ORM or bulk) and ORM
    # update; an UPDATE of lat/lon written by hand must set them too.
    ux: Mapped[float] = mapped_column(Float, default=lambda context: _unit(context)[0])
    uy: Mapped[float] = mapped_column(Float, default=lambda context: _unit(context)[1])
    uz: Mapped[float] = mapped_column(Float, default=lambda context: _unit(context)[2])
    # The sourcing grid cell of the place (`rules.cell_of`), kept like the unit vector. The
    # database notes every (type, city, grade, cell) an entry is written with in
    # `aid_resource_cells` by triggers (migration f5a1c8e3b207): a migration that rebuilds this
    # table (a batch ALTER on SQLite) must create them again.
    cell: Mapped[int] = mapped_column(Integer, default=lambda context: cell_of(*_place(context)))
    place: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="available", index=True)
    out_of_service_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    contact_name: Mapped[str] = mapped_column(String(64))
    contact_phone: Mapped[str] = mapped_column(String(32))
    contact_role: Mapped[str] = mapped_column(String(64), default="")
    # The packaged offer (EMAC's mission-ready package); all empty when there is none.
    package_personnel: Mapped[int | None] = mapped_column(Integer, nullable=True)
    package_equipment: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    package_daily_rate: Mapped[Decimal | None] = mapped_column(MONEY, nullable=True)
    package_self_sufficiency_hours: Mapped[int | None] = mapped_column(Integer, nullable=True)
    package_mobilise_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    verified_by: Mapped[str] = mapped_column(String(64))
    # Where the entry comes from: "hub" (the UI, a CSV, the API) or "feed" (the owning city's
    # platform, whose resource feed keeps it: `hub.mutual_aid.feed`).
    source: Mapped[str] = mapped_column(String(16), default="hub", server_default="hub")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner_city: Mapped[City] = relationship(lazy="joined")

    @property
    def available(self) -> Decimal:
        """Return what may still be reserved."""
        return self.on_hand - self.reserved - self.deployed

    def __repr__(self) -> str:
        return f"<AidResource {self.id} {self.type_code} {self.on_hand}/{self.reserved}/{self.deployed}>"


def _place(context: DefaultExecutionContext) -> tuple[float, float]:
    """Return the (lat, lon) of the row an INSERT is writing."""
    # SQLAlchemy leaves this method untyped; it returns the parameters of the row being written.
    row = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return row["lat"], row["lon"]


def _unit(context: DefaultExecutionContext) -> tuple[float, float, float]:
    """Return the unit vector of the row an INSERT is writing."""
    return unit_vector(*_place(context))


@event.listens_for(AidResource, "before_update")
def _moved(mapper: Mapper[AidResource], connection: Connection, entry: AidResource) -> None:
    """Keep an entry's unit vector and grid cell with its lat/lon when the ORM writes a change of either."""
    attrs = inspect(entry).attrs
    if attrs.lat.history.has_changes() or attrs.lon.history.has_changes():
        entry.ux, entry.uy, entry.uz = unit_vector(entry.lat, entry.lon)
        entry.cell = cell_of(entry.lat, entry.lon)


class AidResourceCell(Model):
    """A grid cell that holds, or once held, registry entries of one type, city and grade.

    Sourcing reads these to know which cells of the index to seek (`services._nearest_of_groups`).
    Written only by the database's triggers on `aid_resources` (every insert, and every update
    of the type, city, grade or cell), in the writing transaction, so no entry is ever in a cell
    missing here; a cell its entries left stays, which costs sourcing one empty seek. Nothing
    that changes with a commitment (the ledger, the status) is kept here, so commitments never
    touch this table.
    """

    __tablename__ = "aid_resource_cells"

    type_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_city_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # The entry's grade, 0 for an ungraded entry (a key has no NULL).
    grade: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    cell: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class AidRequest(Model):
    """A city's request for help (支援请求), made of typed lines."""

    __tablename__ = "aid_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    requesting_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), nullable=True, index=True)
    title: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(64))
    contact_phone: Mapped[str] = mapped_column(String(32))
    contact_role: Mapped[str] = mapped_column(String(64), default="")
    # A drill's request: its commitments never touch the ledger.
    exercise: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    requesting_city: Mapped[City] = relationship(lazy="joined")
    lines: Mapped[list[AidRequestLine]] = relationship(
        back_populates="request", order_by=lambda: AidRequestLine.id, cascade="all, delete-orphan"
    )


class AidRequestLine(Model):
    """One line of a request: how many of which type, by when, for how long, where to report."""

    __tablename__ = "aid_request_lines"
    __table_args__ = (
        UniqueConstraint("request_id", "line_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("aid_requests.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[str] = mapped_column(String(32))
    type_code: Mapped[str] = mapped_column(String(64))
    min_grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit: Mapped[str] = mapped_column(String(16))
    needed_by: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_hours: Mapped[int] = mapped_column(Integer)
    report_to_place: Mapped[str] = mapped_column(String(200))
    report_to_lat: Mapped[float] = mapped_column(Float)
    report_to_lon: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(String(500), default="")

    request: Mapped[AidRequest] = relationship(back_populates="lines")


class AidCommitment(Model):
    """An offer of one resource for one line and the commitment it becomes (`rules.AidState`).

    `exercise` and `bookable` are copied from the request and the resource so that the
    PostgreSQL exclusion constraint (see the migration) can name live real bookings on its own.
    """

    __tablename__ = "aid_commitments"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("end_at > start_at", name="window_not_empty"),
        CheckConstraint(
            "dispatched >= 0 AND returned >= 0 AND consumed >= 0 AND lost >= 0", name="counts_not_negative"
        ),
        CheckConstraint("actual_cost IS NULL OR actual_cost >= 0", name="actual_cost_not_negative"),
        CheckConstraint(
            "actual_cost IS NOT NULL OR (owner_signed_at IS NULL AND requester_signed_at IS NULL)",
            name="signed_cost_is_entered",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    request_id: Mapped[int] = mapped_column(ForeignKey("aid_requests.id"), index=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("aid_request_lines.id"), index=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("aid_resources.id"), index=True)
    owner_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    requesting_city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="offered", index=True)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    order_number: Mapped[str | None] = mapped_column(String(64), nullable=True)
    estimated_cost: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    bookable: Mapped[bool] = mapped_column(Boolean, default=False)
    dispatched: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))
    returned: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))
    consumed: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))
    lost: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0))
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the hold began (the unauthorised-hold timer runs from here) and when it left.
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The end the requesting city asked for with its last extension, while the owner decides.
    extension_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The actual cost, entered by the owner after the return, signed by both cities and then
    # frozen: a cost with both signatures is never changed again.
    actual_cost: Mapped[Decimal | None] = mapped_column(MONEY, nullable=True)
    actual_cost_note: Mapped[str] = mapped_column(String(500), default="")
    actual_cost_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actual_cost_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    owner_signed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    owner_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    requester_signed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    requester_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    request: Mapped[AidRequest] = relationship()
    line: Mapped[AidRequestLine] = relationship()
    resource: Mapped[AidResource] = relationship()
    owner_city: Mapped[City] = relationship(foreign_keys=[owner_city_id])
    requesting_city: Mapped[City] = relationship(foreign_keys=[requesting_city_id])

    @property
    def cost_frozen(self) -> bool:
        """Return whether both cities signed the actual cost, which freezes it."""
        return self.owner_signed_at is not None and self.requester_signed_at is not None

    def __repr__(self) -> str:
        return f"<AidCommitment {self.id} {self.state} {self.quantity}>"


class AidAsk(Model):
    """One city asked to help with a request, in one ring of the sourcing, with a deadline to answer.

    A city is asked once per request (the unique key); it has answered when it offers for a line
    of the request or declines to help.
    """

    __tablename__ = "aid_asks"
    __table_args__ = (UniqueConstraint("request_id", "city_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("aid_requests.id", ondelete="CASCADE"), index=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    ring: Mapped[int] = mapped_column(Integer)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # "offered" or "declined" once answered.
    answer: Mapped[str | None] = mapped_column(String(16), nullable=True)

    request: Mapped[AidRequest] = relationship()
    city: Mapped[City] = relationship(lazy="joined")


class AidRmMessage(Model):
    """An EDXL-RM message a city sent the hub, kept by its MessageID so that it is applied once.

    A message sent again (a retry, a redelivery) finds its row and gets the first result back;
    the same MessageID with other content is refused. `digest` is the SHA-256 of the message as
    parsed, so a resend with other whitespace is still the same message.
    """

    __tablename__ = "aid_rm_messages"
    __table_args__ = (UniqueConstraint("city_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"), index=True)
    message_id: Mapped[str] = mapped_column(String(255))
    message_type: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("aid_requests.id"), nullable=True)
    commitment_id: Mapped[int | None] = mapped_column(ForeignKey("aid_commitments.id"), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
