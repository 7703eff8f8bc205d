"""Mutual aid (跨市支援) between the cities: the registry, requests, offers, commitments and their ends.

What crosses a boundary (API bodies, partner feeds, flow task arguments, EDXL-RM via
`contracts.edxl_rm`) is one of these frozen models. Each states its invariant in the type:

- `RegistryEntry`: one resource a city holds, typed from `contracts.resource_types`, with the
  grade a graded type needs and no grade otherwise, the catalogue's unit, and quantity 1 for a
  team, expert or vehicle (those are booked for a time window, not split).
- `AidRequest` of `RequestLine`s: what a city in need asks for (EDXL-RM RequestResource).
- `AidOffer`: one owning city's answer for one line (ResponseToRequestResource).
- `AidCommitment`: an accepted offer that holds quantity, through its `AidState` lifecycle
  (RequisitionResource, CommitResource, ... ReleaseResource); the legal moves between states
  are in `hub.mutual_aid.rules`.
- `DeploymentReport`: where a deployed resource stands (ReportResourceDeploymentStatus).
- `ReturnRecord`: what came back; returned + consumed + lost = dispatched, or it does not exist.
- `CostRecord`: the estimated or actual cost of one commitment, in CNY, signed by both cities.

Quantities are exact decimals with at most three places (the partner feed's `Quantity`); money is
CNY with two places. Times are timezone-aware.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from contracts.common import CitySlug, XmlChars
from contracts.incidents import ExerciseFlag, Location, Title
from contracts.mqtt import Latitude, Longitude
from contracts.partner import PlatformId, Quantity, ResourceKind, Unit
from contracts.resource_types import CATALOGUE, TYPE_CODE_PATTERN, Grade, TypeRef, satisfies

Person = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), XmlChars]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{4,30}$")]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), XmlChars]
LineId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
"""A request line's id within its request; EDXL-RM carries it as `ResourceInfoElementID`."""
OrderNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]
"""The owner's mission order number (派遣令号), given when it authorises a commitment."""


def _known_type(code: str) -> str:
    """Refuse a type code that is not in the catalogue."""
    if code not in CATALOGUE:
        raise ValueError(f"unknown resource type {code!r}")
    return code


TypeCode = Annotated[str, StringConstraints(pattern=TYPE_CODE_PATTERN), AfterValidator(_known_type)]
"""A code of the typing catalogue, such as "team.usar" or "supply.tent.cotton"."""


def _money(value: Any) -> Decimal:
    """Accept a JSON number or a decimal string as exact money; never a boolean."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("an amount must be a number")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:  # Decimal's own error is no ValueError: pydantic would not see it
        raise ValueError(f"{str(value)[:40]!r} is not an amount") from exc


Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    Field(ge=0, le=10**12, decimal_places=2, allow_inf_nan=False),
    PlainSerializer(lambda amount: format(amount, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,2})?$", "description": "CNY, two decimals"}),
]
"""An amount in CNY (元) with at most two decimals; written as a decimal string in JSON."""

PositiveQuantity = Annotated[Quantity, Field(gt=0)]

MAX_LINES = 50
MAX_DEPLOYMENT = timedelta(days=365)


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GeoPoint(_Contract):
    """A WGS-84 position."""

    lat: Latitude
    lon: Longitude


class Contact(_Contract):
    """Who to call about an entry or a request (畅通联系渠道)."""

    name: Person
    phone: Phone
    role: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), XmlChars] = ""


class AidPackage(_Contract):
    """A ready package an owner offers with one click (EMAC's mission-ready package)."""

    personnel: int = Field(strict=True, ge=0, le=10_000)
    equipment: tuple[Title, ...] = Field(default=(), max_length=50)
    daily_rate: Money
    currency: Literal["CNY"] = "CNY"
    self_sufficiency_hours: int = Field(strict=True, ge=0, le=24 * 30)
    mobilise_minutes: int = Field(strict=True, ge=0, le=7 * 24 * 60)


class EntryStatus(StrEnum):
    """An entry's ICS status: available, assigned (deployed somewhere), or out of service."""

    AVAILABLE = "available"
    ASSIGNED = "assigned"
    OUT_OF_SERVICE = "out_of_service"

    @property
    def label_zh(self) -> str:
        """Return the Chinese word for the status."""
        return _ENTRY_STATUS_ZH[self]


_ENTRY_STATUS_ZH = {
    EntryStatus.AVAILABLE: "可调用",
    EntryStatus.ASSIGNED: "已派出",
    EntryStatus.OUT_OF_SERVICE: "不可用",
}


class OutOfServiceReason(StrEnum):
    """Why an entry is out of service, as on an ICS T-card: mechanical, personnel, rest.

    `withdrawn`: the owning city's platform no longer lists it (its resource feed).
    """

    MECHANICAL = "mechanical"
    PERSONNEL = "personnel"
    REST = "rest"
    WITHDRAWN = "withdrawn"


def _grade_fits_type(code: str, grade: Grade | None, field: str) -> None:
    """Refuse a grade on a type that is not graded."""
    graded = CATALOGUE[code].graded
    if grade is not None and not graded:
        raise ValueError(f"{field} is given but type {code!r} is not graded")


class RegistryEntry(_Contract):
    """One resource in a city's registry (应急资源库), as the hub and the API exchange it."""

    schema_version: Literal[1] = 1
    id: PlatformId
    owner_city: CitySlug
    type_code: TypeCode
    kind: ResourceKind
    grade: Grade | None = None
    name: Title
    quantity: Quantity
    unit: Unit
    location: GeoPoint
    place: Location = ""
    status: EntryStatus = EntryStatus.AVAILABLE
    out_of_service_reason: OutOfServiceReason | None = None
    contact: Contact
    package: AidPackage | None = None
    verified_at: AwareDatetime
    verified_by: Person
    updated_at: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a kind, unit or grade that disagrees with the type, and half a status."""
        row = CATALOGUE[self.type_code]
        if self.kind is not row.kind:
            raise ValueError(f"type {self.type_code!r} is of kind {row.kind.value}, not {self.kind.value}")
        if self.unit != row.unit:
            raise ValueError(f"type {self.type_code!r} is counted in {row.unit!r}, not {self.unit!r}")
        _grade_fits_type(self.type_code, self.grade, "grade")
        if row.graded and self.grade is None:
            raise ValueError(f"type {self.type_code!r} is graded: give its grade (heavy, medium or light)")
        if row.bookable and self.quantity != 1:
            raise ValueError(f"a {row.kind.value} is one unit per entry; quantity must be 1")
        if (self.status is EntryStatus.OUT_OF_SERVICE) != (self.out_of_service_reason is not None):
            raise ValueError("out_of_service_reason is given exactly when status is out_of_service")
        if self.verified_at > self.updated_at + timedelta(minutes=5):
            raise ValueError("verified_at is after updated_at")
        return self

    @property
    def type_ref(self) -> TypeRef:
        """Return the entry's type and grade, for `satisfies`."""
        return TypeRef(self.type_code, self.grade)


class ReportTo(_Contract):
    """Where and to whom arriving resources report (EDXL-RM ScheduleType ReportTo)."""

    place: Title
    point: GeoPoint
    contact: Contact | None = None


class RequestLine(_Contract):
    """One line of an assistance request: how many of which type, by when, for how long, where."""

    line_id: LineId
    type_code: TypeCode
    min_grade: Grade | None = None
    quantity: PositiveQuantity
    unit: Unit
    needed_by: AwareDatetime
    duration_hours: int = Field(strict=True, ge=1, le=int(MAX_DEPLOYMENT.total_seconds() // 3600))
    report_to: ReportTo
    note: Note = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a unit or grade that disagrees with the type."""
        row = CATALOGUE[self.type_code]
        if self.unit != row.unit:
            raise ValueError(f"type {self.type_code!r} is counted in {row.unit!r}, not {self.unit!r}")
        _grade_fits_type(self.type_code, self.min_grade, "min_grade")
        if row.bookable and self.quantity != self.quantity.to_integral_value():
            raise ValueError(f"a {row.kind.value} is counted in whole units")
        return self

    @property
    def type_ref(self) -> TypeRef:
        """Return the type and least grade the line accepts, for `satisfies`."""
        return TypeRef(self.type_code, self.min_grade)

    @property
    def needed_until(self) -> datetime:
        """Return when the line's need ends: needed_by plus the duration."""
        return self.needed_by + timedelta(hours=self.duration_hours)


def _distinct_lines(lines: tuple[RequestLine, ...]) -> tuple[RequestLine, ...]:
    """Refuse two lines with the same id."""
    seen: set[str] = set()
    for line in lines:
        if line.line_id in seen:
            raise ValueError(f"line id {line.line_id!r} is used twice")
        seen.add(line.line_id)
    return lines


class AidRequest(_Contract):
    """An assistance request (支援请求) from a city in need to the others."""

    schema_version: Literal[1] = 1
    id: UUID
    requesting_city: CitySlug
    incident_id: UUID | None = None
    title: Title
    lines: Annotated[tuple[RequestLine, ...], Field(min_length=1, max_length=MAX_LINES)]
    contact: Contact
    created_at: AwareDatetime
    # Drill and live traffic never mix: an exercise request never reserves real stock.
    exercise: ExerciseFlag = False

    @model_validator(mode="after")
    def _lines_distinct(self) -> Self:
        """Refuse two lines with the same id."""
        _distinct_lines(self.lines)
        return self

    def line(self, line_id: str) -> RequestLine:
        """Return the line with `line_id`, or raise `KeyError`."""
        for line in self.lines:
            if line.line_id == line_id:
                return line
        raise KeyError(f"request {self.id} has no line {line_id!r}")


class AidState(StrEnum):
    """Where an offer and the commitment it becomes stand; the moves are in hub.mutual_aid.rules."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    AUTHORISED = "authorised"
    DISPATCHED = "dispatched"
    ARRIVED = "arrived"
    EXTENSION_ASKED = "extension_asked"
    RETURN_ASKED = "return_asked"
    RELEASED = "released"
    RETURNED = "returned"
    CANCELLED = "cancelled"

    @property
    def label_zh(self) -> str:
        """Return the Chinese word duty officers use for the state."""
        return _AID_STATE_ZH[self]


_AID_STATE_ZH = {
    AidState.OFFERED: "已响应",
    AidState.ACCEPTED: "已接受",
    AidState.DECLINED: "已谢绝",
    AidState.WITHDRAWN: "已撤回",
    AidState.EXPIRED: "已过期",
    AidState.AUTHORISED: "已批准",
    AidState.DISPATCHED: "已出发",
    AidState.ARRIVED: "已到达",
    AidState.EXTENSION_ASKED: "申请延期",
    AidState.RETURN_ASKED: "申请归还",
    AidState.RELEASED: "已解除",
    AidState.RETURNED: "已归建",
    AidState.CANCELLED: "已取消",
}


class AidOffer(_Contract):
    """One owning city's offer of one registry entry for one request line."""

    schema_version: Literal[1] = 1
    id: UUID
    request_id: UUID
    line_id: LineId
    offering_city: CitySlug
    resource_id: PlatformId
    type_code: TypeCode
    grade: Grade | None = None
    quantity: PositiveQuantity
    unit: Unit
    estimated_arrival: AwareDatetime
    estimated_cost: Money
    package: AidPackage | None = None
    offered_at: AwareDatetime
    valid_until: AwareDatetime
    note: Note = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse an offer that expires before it is made, or a unit or grade the type does not have."""
        if self.valid_until <= self.offered_at:
            raise ValueError("valid_until must be after offered_at")
        row = CATALOGUE[self.type_code]
        if self.unit != row.unit:
            raise ValueError(f"type {self.type_code!r} is counted in {row.unit!r}, not {self.unit!r}")
        _grade_fits_type(self.type_code, self.grade, "grade")
        return self

    def fills(self, line: RequestLine) -> bool:
        """Return whether this offer's type and grade may fill `line`."""
        return satisfies(TypeRef(self.type_code, self.grade), line.type_ref)


class AidCommitment(_Contract):
    """An accepted offer: quantity held for a time window, moving through `AidState`."""

    schema_version: Literal[1] = 1
    id: UUID
    offer_id: UUID
    request_id: UUID
    line_id: LineId
    owner_city: CitySlug
    requesting_city: CitySlug
    resource_id: PlatformId
    quantity: PositiveQuantity
    unit: Unit
    start: AwareDatetime
    end: AwareDatetime
    state: AidState
    order_number: OrderNumber | None = None
    estimated_cost: Money
    exercise: ExerciseFlag = False
    updated_at: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a city helping itself, an empty or endless window, and an authorisation without order."""
        if self.owner_city == self.requesting_city:
            raise ValueError("owner_city and requesting_city must differ")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_DEPLOYMENT:
            raise ValueError("a commitment lasts at most 365 days; ask for an extension instead")
        if self.state in _ORDERED_STATES and self.order_number is None:
            raise ValueError(f"a commitment in state {self.state.value!r} has an order_number")
        if self.state in (AidState.OFFERED, AidState.DECLINED, AidState.WITHDRAWN):
            raise ValueError(f"an offer in state {self.state.value!r} is not a commitment")
        return self


_ORDERED_STATES = frozenset(
    {
        AidState.AUTHORISED,
        AidState.DISPATCHED,
        AidState.ARRIVED,
        AidState.EXTENSION_ASKED,
        AidState.RETURN_ASKED,
        AidState.RELEASED,
        AidState.RETURNED,
    }
)


class DeploymentReport(_Contract):
    """Where a committed resource stands now (EDXL-RM ReportResourceDeploymentStatus)."""

    schema_version: Literal[1] = 1
    commitment_id: UUID
    reporting_city: CitySlug
    state: AidState
    reported_at: AwareDatetime
    position: GeoPoint | None = None
    eta: AwareDatetime | None = None
    note: Note = ""


class ReturnRecord(_Contract):
    """What came back of a dispatched commitment; every dispatched unit is accounted for."""

    schema_version: Literal[1] = 1
    commitment_id: UUID
    dispatched: PositiveQuantity
    returned: Quantity
    consumed: Quantity = Decimal(0)
    lost: Quantity = Decimal(0)
    released_at: AwareDatetime
    returned_at: AwareDatetime
    confirmed_by: Person
    note: Note = ""

    @model_validator(mode="after")
    def _balanced(self) -> Self:
        """Refuse a record where returned + consumed + lost is not what was dispatched."""
        accounted = self.returned + self.consumed + self.lost
        if accounted != self.dispatched:
            raise ValueError(
                f"returned + consumed + lost is {accounted}, but {self.dispatched} were dispatched; "
                "every dispatched unit is returned, consumed or lost"
            )
        if self.returned_at < self.released_at:
            raise ValueError("returned_at is before released_at")
        return self


class CostKind(StrEnum):
    """An estimate (from the offer) or the actual cost (claimed after return)."""

    ESTIMATED = "estimated"
    ACTUAL = "actual"


class CostCategory(StrEnum):
    """What a cost line pays for."""

    PERSONNEL = "personnel"
    EQUIPMENT = "equipment"
    SUPPLIES = "supplies"
    TRANSPORT = "transport"
    SUBSISTENCE = "subsistence"
    OTHER = "other"


class CostLine(_Contract):
    """One line of a cost record."""

    category: CostCategory
    description: Title
    amount: Money


class Signature(_Contract):
    """A city's signature of a cost record: who signed for which city, and when."""

    city: CitySlug
    signed_by: Person
    signed_at: AwareDatetime


class CostRecord(_Contract):
    """The cost of one commitment; a record both cities signed is final (corrections are new records)."""

    schema_version: Literal[1] = 1
    id: UUID
    commitment_id: UUID
    kind: CostKind
    owner_city: CitySlug
    requesting_city: CitySlug
    currency: Literal["CNY"] = "CNY"
    lines: Annotated[tuple[CostLine, ...], Field(min_length=1, max_length=200)]
    owner_signature: Signature | None = None
    requester_signature: Signature | None = None
    corrects: UUID | None = None

    @model_validator(mode="after")
    def _signed_by_the_right_cities(self) -> Self:
        """Refuse a signature by a city other than the side it stands for."""
        if self.owner_city == self.requesting_city:
            raise ValueError("owner_city and requesting_city must differ")
        if self.owner_signature is not None and self.owner_signature.city != self.owner_city:
            raise ValueError("owner_signature must be by the owner city")
        if self.requester_signature is not None and self.requester_signature.city != self.requesting_city:
            raise ValueError("requester_signature must be by the requesting city")
        return self

    @property
    def total(self) -> Decimal:
        """Return the sum of the lines."""
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def signed(self) -> bool:
        """Return whether both cities signed, which makes the record final."""
        return self.owner_signature is not None and self.requester_signature is not None
