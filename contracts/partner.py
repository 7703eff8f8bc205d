"""The partner-platform contract: what the hub expects each city's own emergency platform to serve and accept.

Every city runs its own emergency platform (应急管理平台); the hub keeps in step with it over HTTP.
`contracts/openapi/partner-platform.json` describes the same contract as OpenAPI 3.1; it is
generated from this module (`python -m contracts.partner` rewrites it, a test fails until you do).

Auth: every request carries `Authorization: Bearer <token>`, a secret per city agreed out of band.
A request without a valid token gets 401. Every error is `{"error": {"code", "message"}}`
(`ErrorBody`), with a 4xx status when the request is at fault and 5xx or 429 when it may succeed
later; the hub retries only the latter.

Feeds the platform serves, one per `FeedKind`:

    GET /feeds/{incidents|warnings|resources}?cursor=<opaque>&limit=<1..500>

- The answer holds the records changed after the cursor, ordered by (updated_at, id), at most
  `limit` of them (default 200), and `next_cursor`: the resume point after the last record given.
- No cursor means from the beginning: the first page of a full sync.
- `next_cursor` is always present; with nothing new it equals the cursor given, so a consumer can
  store it unconditionally. `has_more` says whether another page is ready right now.
- A record appears with its latest state; a record is never deleted from a feed: an incident is
  closed, a warning cancelled, a withdrawn resource reported with quantity 0.
- A record sent again (pages that overlap after a retry, a cursor the platform keeps a little
  behind its clock so that late commits are not skipped) is harmless: consumers upsert by id and
  keep the version with the latest `updated_at`. Skipping a change is the one thing a platform
  must never do.
- An unknown or malformed cursor is a 400 with code `bad_cursor`.

What the platform accepts:

    POST /bulletins               BulletinDelivery             -> DeliveryAck
    POST /verification-requests   VerificationRequestDelivery  -> DeliveryAck (never a receipt)
    POST /receipts                Receipt                      -> DeliveryAck (never a receipt)
    POST /meeting-invitations     MeetingInvitationDelivery    -> DeliveryAck (never a receipt)

Deliveries are idempotent by their id: the hub repeats a delivery whose answer it did not get, so
a platform answers a repeated id with the ack it gave the first time and does nothing more. A
platform that acknowledges at once puts the `Receipt` (回执) in the ack; otherwise the city's duty
officer acknowledges later and the platform posts the `Receipt` to the hub at `HUB_RECEIPT_PATH`,
and answers verification requests (核报) with a `VerificationAnswer` at `HUB_ANSWER_PATH`, both
with the city's bearer token for the hub. `POST /receipts` carries receipts of the other cities to
the issuing city's platform. `accepted: false` (with a reason) means the platform will never take
the delivery (it is addressed to another city, say); sending it again changes nothing. A meeting
invitation is idempotent by its id and its `sequence` (an update or cancellation raises it); the
platform answers it for the city, or for the expert it names, at its `answer_path`.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from contracts.common import CitySlug, IncidentCategory, IncidentStatus, Level, WarningColour, XmlChars
from contracts.errors import ContractError, Problem, check_size, decode_json
from contracts.incidents import CLOCK_SKEW, AffectedCities, Body, Description, ExerciseFlag, Location, Title
from contracts.mqtt import Latitude, Longitude

MAX_LIMIT = 500
DEFAULT_LIMIT = 200
# 500 records of about 2 kB of Chinese text each is 1 MB; 16 MiB leaves room for long
# descriptions while keeping a broken or hostile platform from filling the hub's memory.
MAX_PAGE_BYTES = 16 * 1024 * 1024
# A bulletin's text is at most 10,000 characters (30 kB of UTF-8); everything else is smaller.
MAX_MESSAGE_BYTES = 256 * 1024

HUB_RECEIPT_PATH = "/api/v1/bulletins/{bulletin_id}/receipts"
"""Where a platform posts a `Receipt` to the hub, relative to the hub's base URL."""
HUB_ANSWER_PATH = "/api/v1/verification-requests/{request_id}/answers"
"""Where a platform answers a meeting invitation (accept, decline, delegate): the delivery's
`answer_path` names it, for the city itself or for one of its experts."""
HUB_INVITATION_ANSWER_PATH = "/api/v1/consultations/{meeting_id}/answer"
HUB_EXPERT_ANSWER_PATH = "/api/v1/consultations/{meeting_id}/experts/{invitation_id}/answer"
"""Where a platform posts a `VerificationAnswer` to the hub, relative to the hub's base URL."""

OPENAPI_PATH = Path(__file__).resolve().parent / "openapi" / "partner-platform.json"

PlatformId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"),
]
"""A platform's own id of a record or a delivery: letters, digits and `._:/-`, up to 128."""
_CURSOR_PATTERN = r"^[\x21-\x7e]{1,512}$"
Cursor = Annotated[str, StringConstraints(pattern=_CURSOR_PATTERN)]
"""An opaque feed position: printable ASCII without spaces, up to 512, so it fits a query string."""
Area = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), XmlChars]
Unit = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16), XmlChars]
Person = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), XmlChars]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), XmlChars]
ErrorCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


def _quantity(value: Any) -> Decimal:
    """Accept a JSON number (not a string, not a boolean) as an exact decimal."""
    if isinstance(value, Decimal):
        return value
    # bool is an int in Python; `true` must not become one tonne of sandbags.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("quantity must be a number")
    # str() of a float is its shortest round-tripping form: 12.3 stays 12.3, not 12.2999...
    return Decimal(str(value))


def _quantity_json(value: Decimal) -> int | float:
    """Write a whole quantity as an integer and any other as a JSON number."""
    return int(value) if value == value.to_integral_value() else float(value)


Quantity = Annotated[
    Decimal,
    BeforeValidator(_quantity),
    Field(ge=0, le=10**12, decimal_places=3, allow_inf_nan=False),
    PlainSerializer(_quantity_json, return_type=int | float, when_used="json"),
    WithJsonSchema(
        {
            "type": "number",
            "minimum": 0,
            "maximum": 10**12,
            "description": "How many, in `unit`; at most three decimals; 0 when withdrawn",
        }
    ),
]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeedKind(StrEnum):
    """The three feeds a platform serves, by their path segment."""

    INCIDENTS = "incidents"
    WARNINGS = "warnings"
    RESOURCES = "resources"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the feed."""
        return _FEED_ZH[self]


_FEED_ZH = {FeedKind.INCIDENTS: "突发事件", FeedKind.WARNINGS: "预警信息", FeedKind.RESOURCES: "应急资源"}


class PartnerIncident(_Contract):
    """An incident as the city's platform records it, under the platform's own id."""

    schema_version: Literal[1] = 1
    id: PlatformId
    city: CitySlug
    category: IncidentCategory
    level: Level
    title: Title
    description: Description = ""
    location: Location = ""
    occurred_at: AwareDatetime
    updated_at: AwareDatetime
    status: IncidentStatus
    affected_cities: AffectedCities

    @model_validator(mode="after")
    def _occurred_before_updated(self) -> Self:
        """Refuse an incident said to occur after its record last changed."""
        if self.occurred_at > self.updated_at + CLOCK_SKEW:
            raise ValueError("occurred_at is after updated_at (more than 5 minutes of clock skew)")
        return self


class WarningStatus(StrEnum):
    """Whether a warning is in force."""

    ACTIVE = "active"
    CANCELLED = "cancelled"

    @property
    def label_zh(self) -> str:
        """Return the Chinese word for the status."""
        return _WARNING_STATUS_ZH[self]


_WARNING_STATUS_ZH = {WarningStatus.ACTIVE: "生效中", WarningStatus.CANCELLED: "已解除"}


class PartnerWarning(_Contract):
    """A warning (预警) the city has issued, as its platform records it."""

    schema_version: Literal[1] = 1
    id: PlatformId
    city: CitySlug
    colour: WarningColour
    category: IncidentCategory
    area: Area
    headline: Title
    description: Description = ""
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    updated_at: AwareDatetime
    status: WarningStatus = WarningStatus.ACTIVE

    @model_validator(mode="after")
    def _expires_after_issue(self) -> Self:
        """Refuse a warning that expires before it is issued."""
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self


class ResourceKind(StrEnum):
    """What kind of emergency resource (应急资源) an inventory record counts."""

    RESCUE_TEAM = "rescue_team"
    SUPPLIES = "supplies"
    EQUIPMENT = "equipment"
    SHELTER = "shelter"
    EXPERT = "expert"
    VEHICLE = "vehicle"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the kind."""
        return _RESOURCE_ZH[self]


_RESOURCE_ZH = {
    ResourceKind.RESCUE_TEAM: "救援队伍",
    ResourceKind.SUPPLIES: "应急物资",
    ResourceKind.EQUIPMENT: "救援装备",
    ResourceKind.SHELTER: "应急避难场所",
    ResourceKind.EXPERT: "应急专家",
    ResourceKind.VEHICLE: "应急车辆",
}


class ResourceItem(_Contract):
    """One line of a city's emergency resource inventory."""

    schema_version: Literal[1] = 1
    id: PlatformId
    city: CitySlug
    kind: ResourceKind
    name: Title
    quantity: Quantity
    unit: Unit
    location: Location = ""
    lat: Latitude | None = None
    lon: Longitude | None = None
    updated_at: AwareDatetime

    @model_validator(mode="after")
    def _both_coordinates_or_none(self) -> Self:
        """Refuse half a position."""
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self


FeedItem = PartnerIncident | PartnerWarning | ResourceItem


def _check_page(items: Sequence[FeedItem], has_more: bool) -> None:
    """Refuse a page a consumer could not follow without losing or repeating work forever."""
    # A page out of order means the cursor after its last record can skip earlier changes.
    for before, after in itertools.pairwise(items):
        if after.updated_at < before.updated_at:
            raise ValueError(f"items are not ordered by updated_at: {after.id!r} comes after a later change")
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("an id appears twice in one page")
    # "More" with nothing on this page would have the consumer ask again forever.
    if has_more and not items:
        raise ValueError("has_more is true on an empty page")


class IncidentPage(_Contract):
    """One page of the incidents feed."""

    schema_version: Literal[1] = 1
    items: tuple[PartnerIncident, ...] = Field(max_length=MAX_LIMIT)
    next_cursor: Cursor
    has_more: StrictBool

    @model_validator(mode="after")
    def _followable(self) -> Self:
        """Refuse a page out of order, with an id twice, or empty yet with more to come."""
        _check_page(self.items, self.has_more)
        return self


class WarningPage(_Contract):
    """One page of the warnings feed."""

    schema_version: Literal[1] = 1
    items: tuple[PartnerWarning, ...] = Field(max_length=MAX_LIMIT)
    next_cursor: Cursor
    has_more: StrictBool

    @model_validator(mode="after")
    def _followable(self) -> Self:
        """Refuse a page out of order, with an id twice, or empty yet with more to come."""
        _check_page(self.items, self.has_more)
        return self


class ResourcePage(_Contract):
    """One page of the resource inventory feed."""

    schema_version: Literal[1] = 1
    items: tuple[ResourceItem, ...] = Field(max_length=MAX_LIMIT)
    next_cursor: Cursor
    has_more: StrictBool

    @model_validator(mode="after")
    def _followable(self) -> Self:
        """Refuse a page out of order, with an id twice, or empty yet with more to come."""
        _check_page(self.items, self.has_more)
        return self


FeedPage = IncidentPage | WarningPage | ResourcePage

PAGE_MODELS: dict[FeedKind, type[FeedPage]] = {
    FeedKind.INCIDENTS: IncidentPage,
    FeedKind.WARNINGS: WarningPage,
    FeedKind.RESOURCES: ResourcePage,
}
"""The page model of each feed."""


class BulletinKind(StrEnum):
    """A bulletin (信息通报) informs; a warning (预警) also carries a colour."""

    BULLETIN = "bulletin"
    WARNING = "warning"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the kind."""
        return _BULLETIN_KIND_ZH[self]


_BULLETIN_KIND_ZH = {BulletinKind.BULLETIN: "信息通报", BulletinKind.WARNING: "预警信息"}


class Scope(StrEnum):
    """Who may see a bulletin: anyone, or only the cities it is addressed to (restricted, and
    private: addressed by name, as CAP's Private with its <addresses>)."""

    PUBLIC = "public"
    RESTRICTED = "restricted"
    PRIVATE = "private"

    @property
    def label_zh(self) -> str:
        """Return the Chinese name of the scope."""
        return _SCOPE_ZH[self]


_SCOPE_ZH = {Scope.PUBLIC: "公开", Scope.RESTRICTED: "限定范围", Scope.PRIVATE: "指定对象"}


class BulletinDelivery(_Contract):
    """A bulletin or warning the hub delivers to one addressed city's platform."""

    schema_version: Literal[1] = 1
    id: UUID
    kind: BulletinKind
    issuing_city: CitySlug
    colour: WarningColour | None = None
    category: IncidentCategory
    area: Area
    title: Title
    text: Body
    scope: Scope
    addressed_cities: AffectedCities
    receipt_deadline: AwareDatetime
    issued_at: AwareDatetime
    # Drill and live traffic must never mix: a platform shows an exercise bulletin as a drill.
    exercise: ExerciseFlag = False
    # Set when the issuer cancelled the bulletin: the hub sends the same delivery again with this
    # field, and a platform that holds the bulletin withdraws it and answers with its first ack.
    cancelled_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a warning without a colour, a city addressing itself, or a deadline already past."""
        if self.kind is BulletinKind.WARNING and self.colour is None:
            raise ValueError("a warning needs a colour")
        if self.issuing_city in self.addressed_cities:
            raise ValueError(f"the issuing city {self.issuing_city!r} cannot be addressed")
        if self.receipt_deadline <= self.issued_at:
            raise ValueError("receipt_deadline must be after issued_at")
        return self


class Receipt(_Contract):
    """A city's receipt (回执) of a bulletin: who on duty acknowledged it, and when."""

    schema_version: Literal[1] = 1
    bulletin_id: UUID
    city: CitySlug
    received_at: AwareDatetime
    acknowledged_by: Person


class DeliveryAck(_Contract):
    """A platform's answer to a delivery; a platform that acknowledges at once adds the receipt."""

    schema_version: Literal[1] = 1
    accepted: StrictBool
    platform_ref: PlatformId
    receipt: Receipt | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _receipt_only_when_accepted(self) -> Self:
        """Refuse a receipt for a refused delivery, and a refusal without a reason."""
        if not self.accepted and self.receipt is not None:
            raise ValueError("a refused delivery cannot carry a receipt")
        if not self.accepted and self.reason is None:
            raise ValueError("a refused delivery needs a reason")
        return self


class VerificationRequestDelivery(_Contract):
    """A verification request (核报) from one city to another about an incident."""

    schema_version: Literal[1] = 1
    id: UUID
    from_city: CitySlug
    to_city: CitySlug
    incident_ref: PlatformId
    question: Body
    deadline: AwareDatetime
    issued_at: AwareDatetime
    exercise: ExerciseFlag = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a city asking itself, or a deadline before the request."""
        if self.from_city == self.to_city:
            raise ValueError("from_city and to_city must differ")
        if self.deadline <= self.issued_at:
            raise ValueError("deadline must be after issued_at")
        return self


class VerificationAnswer(_Contract):
    """A city's answer to a verification request, sent back to the hub."""

    schema_version: Literal[1] = 1
    request_id: UUID
    city: CitySlug
    answer: Body
    answered_by: Person | None = None
    answered_at: AwareDatetime


class InvitationMethod(StrEnum):
    """The iTIP method of a meeting invitation (RFC 5546 §1.4): invite or update, or cancel."""

    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


class InvitedExpert(_Contract):
    """The expert of the addressed city's registry whom an invitation asks for."""

    resource_id: UUID
    name: Title
    speciality: Annotated[str, StringConstraints(pattern=r"^expert\.[a-z0-9_]+$", max_length=64)]


# An iTIP message of one event with its time zone and a dozen attendees is a few kilobytes.
CalendarText = Annotated[str, StringConstraints(min_length=1, max_length=64 * 1024), XmlChars]


class MeetingInvitationDelivery(_Contract):
    """An invitation to a joint consultation (会商) or conference meeting, for one invited city or
    for one expert of its registry, with the iTIP message (RFC 5546) calendar programs take.

    `id` names the invitation and stays the same for its updates and its cancellation; `sequence`
    is the meeting's iCalendar SEQUENCE, so (`id`, `sequence`) names one delivery. The platform
    posts the answer (`{"answer": "accept" | "decline" | "delegate", "delegate_name": …}`) to the
    hub at `answer_path`.
    """

    schema_version: Literal[1] = 1
    id: UUID
    meeting_id: UUID
    sequence: int = Field(ge=0)
    method: InvitationMethod
    city: CitySlug
    organizer_city: CitySlug
    chair_city: CitySlug
    title: Title
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    location: Location = ""
    video_link: Annotated[str, StringConstraints(max_length=500, pattern=r"^(https?|sips?):\S+$")] | None = (
        None
    )
    expert: InvitedExpert | None = None
    answer_path: Annotated[
        str, StringConstraints(pattern=r"^/api/v1/consultations/[0-9a-f-]{36}/[a-z0-9/-]+$")
    ]
    calendar: CalendarText
    exercise: ExerciseFlag = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Refuse a meeting that ends before it starts, and a calendar of another method."""
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if f"METHOD:{self.method.value}" not in self.calendar:
            raise ValueError(f"calendar is not an iTIP {self.method.value} message")
        return self


class ErrorDetail(_Contract):
    """What went wrong: a stable code for programs, a message for people."""

    code: ErrorCode
    message: Annotated[str, StringConstraints(max_length=2_000), XmlChars]


class ErrorBody(_Contract):
    """The body of every error answer, from the platform or the hub."""

    error: ErrorDetail


M = TypeVar("M", bound=BaseModel)


def encode(model: BaseModel) -> bytes:
    """Return a contract object as compact UTF-8 JSON."""
    return model.model_dump_json().encode("utf-8")


def error_body(code: str, message: str) -> bytes:
    """Return the JSON of an error answer."""
    return encode(ErrorBody(error=ErrorDetail(code=code, message=message[:2_000])))


def _decode(model: type[M], raw: bytes | str, max_bytes: int) -> M:
    data = check_size(raw, max_bytes, f"{model.__name__} payload")
    if not data.strip():
        raise ContractError(f"invalid {model.__name__}: empty body", [Problem("", "empty body")])
    return decode_json(model, data, max_bytes)


def decode_page(kind: FeedKind | str, raw: bytes | str, max_bytes: int = MAX_PAGE_BYTES) -> FeedPage:
    """Read one page of the feed `kind`, or raise ContractError."""
    try:
        model = PAGE_MODELS[FeedKind(kind)]
    except ValueError:
        raise ContractError(f"unknown feed {kind!r}", [Problem("kind", "unknown feed")]) from None
    return _decode(model, raw, max_bytes)


def decode_bulletin(raw: bytes | str) -> BulletinDelivery:
    """Read a delivered bulletin or warning, or raise ContractError."""
    return _decode(BulletinDelivery, raw, MAX_MESSAGE_BYTES)


def decode_receipt(raw: bytes | str) -> Receipt:
    """Read a receipt, or raise ContractError."""
    return _decode(Receipt, raw, MAX_MESSAGE_BYTES)


def decode_ack(raw: bytes | str) -> DeliveryAck:
    """Read a platform's answer to a delivery, or raise ContractError."""
    return _decode(DeliveryAck, raw, MAX_MESSAGE_BYTES)


def decode_verification_request(raw: bytes | str) -> VerificationRequestDelivery:
    """Read a delivered verification request, or raise ContractError."""
    return _decode(VerificationRequestDelivery, raw, MAX_MESSAGE_BYTES)


def decode_verification_answer(raw: bytes | str) -> VerificationAnswer:
    """Read an answer to a verification request, or raise ContractError."""
    return _decode(VerificationAnswer, raw, MAX_MESSAGE_BYTES)


def decode_meeting_invitation(raw: bytes | str) -> MeetingInvitationDelivery:
    """Read a delivered meeting invitation, or raise ContractError."""
    return _decode(MeetingInvitationDelivery, raw, MAX_MESSAGE_BYTES)


def decode_error(raw: bytes | str) -> ErrorBody:
    """Read an error answer, or raise ContractError."""
    return _decode(ErrorBody, raw, MAX_MESSAGE_BYTES)


# OpenAPI ---------------------------------------------------------------------------------------

_COMPONENTS: tuple[type[BaseModel], ...] = (
    IncidentPage,
    WarningPage,
    ResourcePage,
    BulletinDelivery,
    VerificationRequestDelivery,
    MeetingInvitationDelivery,
    Receipt,
    DeliveryAck,
    VerificationAnswer,
    ErrorBody,
)

_ERRORS = {
    "400": "The request is malformed (a bad cursor or limit, say); do not repeat it unchanged.",
    "401": "No bearer token, or not a valid one.",
    "409": "This id was delivered before with different content.",
    "413": "The body is too large.",
    "422": "The body is not valid JSON or breaks the contract; the message says where.",
    "429": "Too many requests; retry after `Retry-After` seconds.",
    "500": "The platform failed; retry later with back-off.",
    "503": "The platform is unavailable for now; retry after `Retry-After` seconds if given.",
}
_FEED_ERRORS = ("400", "401", "429", "500", "503")
_DELIVERY_ERRORS = ("401", "409", "413", "422", "429", "500", "503")


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


def _responses(model: type[BaseModel], success: str, errors: tuple[str, ...]) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": success, "content": _content(model)}}
    responses |= {status: {"$ref": f"#/components/responses/Error{status}"} for status in errors}
    return responses


def _feed_operation(kind: FeedKind, page: type[BaseModel]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": f"feed_{kind.value}",
            "summary": f"Changes to {kind.value} ({kind.label_zh}) after a cursor",
            "description": (
                "Records changed after `cursor`, ordered by (updated_at, id), at most `limit`. "
                "`next_cursor` is the resume point after the last record and equals `cursor` when "
                "nothing changed. Records may be sent again; never skipped."
            ),
            "tags": ["feeds"],
            "parameters": [
                {
                    "name": "cursor",
                    "in": "query",
                    "required": False,
                    "description": "Opaque position of an earlier `next_cursor`; absent: the beginning.",
                    "schema": {"type": "string", "pattern": _CURSOR_PATTERN},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": "Most records in the page.",
                    "schema": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT,
                    },
                },
            ],
            "responses": _responses(page, "One page of changes.", _FEED_ERRORS),
        }
    }


def _post_operation(
    operation_id: str, summary: str, description: str, body: type[BaseModel]
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["deliveries"],
            "requestBody": {"required": True, "content": _content(body)},
            "responses": _responses(
                DeliveryAck, "Taken (or refused for good, with `accepted: false`).", _DELIVERY_ERRORS
            ),
        }
    }


def partner_openapi() -> dict[str, Any]:
    """Return the OpenAPI 3.1 description of a city platform, built from the models."""
    _, defs = models_json_schema(
        [(model, "validation") for model in _COMPONENTS],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, Any] = {
        f"/feeds/{kind.value}": _feed_operation(kind, PAGE_MODELS[kind]) for kind in FeedKind
    }
    paths["/bulletins"] = _post_operation(
        "deliver_bulletin",
        "Take a bulletin (信息通报) or warning (预警) addressed to this city",
        "Idempotent by `id`: a repeated id gets the first answer again. A platform that "
        f"acknowledges at once puts the receipt in the answer; otherwise it posts the receipt to "
        f"the hub at `{HUB_RECEIPT_PATH}` once the duty officer acknowledges.",
        BulletinDelivery,
    )
    paths["/verification-requests"] = _post_operation(
        "deliver_verification_request",
        "Take a verification request (核报) addressed to this city",
        f"Idempotent by `id`. The answer goes to the hub later, at `{HUB_ANSWER_PATH}`; the "
        "acknowledgment never carries a receipt.",
        VerificationRequestDelivery,
    )
    paths["/meeting-invitations"] = _post_operation(
        "deliver_meeting_invitation",
        "Take an invitation to a joint consultation (会商) or conference meeting, or its update or "
        "cancellation",
        "Idempotent by (`id`, `sequence`): an update or a cancellation of the same invitation comes "
        "with the same `id` and a higher `sequence`. `calendar` is the iTIP message (METHOD:REQUEST "
        "or METHOD:CANCEL) for the duty room's calendar. The answer goes to the hub later, at "
        "`answer_path`; the acknowledgment never carries a receipt.",
        MeetingInvitationDelivery,
    )
    paths["/receipts"] = _post_operation(
        "deliver_receipt",
        "Take another city's receipt (回执) of a bulletin this city issued",
        "Idempotent by (bulletin_id, city).",
        Receipt,
    )
    error_responses = {
        f"Error{status}": {"description": words, "content": _content(ErrorBody)}
        for status, words in _ERRORS.items()
    }
    for status in ("429", "503"):
        error_responses[f"Error{status}"]["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 0}}
        }
    error_responses["Error401"]["headers"] = {
        "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Huaihai Hub partner platform",
            "version": "1.0.0",
            "summary": "What the hub expects a city's emergency platform to serve and accept.",
            "description": (__doc__ or "").strip(),
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "https://platform.example.gov.cn/hub/v1", "description": "a city platform"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "feeds", "description": "Incremental feeds the hub pulls."},
            {"name": "deliveries", "description": "What the hub pushes to the platform."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <token>`, one secret per city.",
                }
            },
            "responses": error_responses,
            "schemas": dict(sorted(defs["$defs"].items())),
        },
    }


def render_openapi() -> str:
    """Render the OpenAPI description as the text its file must hold."""
    return json.dumps(partner_openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_openapi(path: Path = OPENAPI_PATH) -> Path:
    """Write the OpenAPI description to `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_openapi(), encoding="utf-8")
    return path


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("contracts.partner").info("wrote %s", write_openapi())
