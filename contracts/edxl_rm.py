"""EDXL-RM 1.0 (OASIS Emergency Data Exchange Language Resource Messaging) out and in.

Each step of a mutual-aid exchange can be written as an EDXL-RM 1.0 message, and a partner's
messages can be read. `RmMessage` is the one model for the ten message types the hub speaks:

    RequestResource, ResponseToRequestResource, RequisitionResource, CommitResource,
    RequestInformation, ReleaseResource, RequestReturn, ResponseToRequestReturn,
    RequestExtendedDeploymentDuration, ReportResourceDeploymentStatus

What this module follows: the element names, their order, their namespaces and the per-message
rules come from the EDXL-RM 1.0 schemas (`EDXL-RMCommonTypes.xsd` and one `EDXL-RM<Type>.xsd` per
message, OASIS Standard of 1 November 2008), read from the copy distributed with the UICDS/xCore
open-source project. The message element and its direct content (MessageID ... ResourceInformation,
and inside that Resource, AssignmentInformation, ScheduleInformation and their local children) are
in `urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg`; the content of the shared types (ValueList,
Quantity, Location, ContactInformation, ResponseInformation, IncidentInformation, MessageRecall,
OwnershipInformation, Funding) is in `urn:oasis:names:tc:emergency:EDXL:RM:1.0`. The one
exception the schemas make is kept: RequestResource declares its Funding locally, so FundCode and
FundingInfo are in the msg namespace there. A point is a GML `<gml:Point><gml:pos>lat lon</gml:pos>`
inside `<TargetArea>` (EDXL HAVE geo-oasis `WhereType`), latitude first as in WGS-84 EPSG:4326.

Which elements each message may carry is checked (`_SHAPES`): whether PrecedingMessageID and
ResponseInformation are required, allowed or absent, which ScheduleTypes are legal, where OrderID,
PriceQuote and ResourceStatus may appear. The message-ID chain: a RequestResource starts an
exchange and its OriginatingMessageID is its own MessageID; every later message repeats that
OriginatingMessageID and names the message it answers in PrecedingMessageID (`reply`).

Not modelled, and skipped when read: TypeInfo, Credentials, Certifications, SpecialRequirements,
ResponsibleParty, Radio, addresses (xAL), RadioChannel, Restrictions, AnticipatedFunction,
AssignmentInstructions and shapes other than a point. Messages travel inside an EDXL-DE envelope
in the standard; the envelope is the transport's concern, not this module's.

Reading is defensive: the size is capped before parsing, and defusedxml refuses DTDs, entities
and external references. Every failure is an `RmError` (a `ContractError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Literal, Self
from xml.etree.ElementTree import Element, ParseError, SubElement, register_namespace, tostring

import defusedxml
from defusedxml.ElementTree import fromstring
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from contracts.common import XmlChars
from contracts.errors import ContractError, check_size, problems_from_validation_error
from contracts.mutual_aid import (
    AidCommitment,
    AidOffer,
    AidRequest,
    AidState,
    GeoPoint,
    ReportTo,
    RequestLine,
)
from contracts.resource_types import CATALOGUE, GRADE_VALUE_LIST_URN, TYPE_VALUE_LIST_URN, Grade

MSG_NS = "urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg"
RM_NS = "urn:oasis:names:tc:emergency:EDXL:RM:1.0"
GML_NS = "http://www.opengis.net/gml"
STATE_VALUE_LIST_URN = "urn:x-huaihai-hub:vocab:aid-state"
"""The value list of `DeploymentStatus` values the hub writes: `AidState` values."""
UNIT_VALUE_LIST_URN = "urn:x-huaihai-hub:vocab:unit"
CURRENCY_VALUE_LIST_URN = "urn:iso:std:iso:4217"
DEFAULT_MAX_BYTES = 1_000_000

# Prefixes make exported documents readable; ElementTree keeps them in a module-wide table.
register_namespace("rmsg", MSG_NS)
register_namespace("rm", RM_NS)
register_namespace("gml", GML_NS)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000), XmlChars]
MessageId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$")]
ElementId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]


class RmError(ContractError):
    """An EDXL-RM document or message the hub cannot read or write; the message says where."""


class MessageType(StrEnum):
    """The EDXL-RM message types the hub speaks (the root element and MessageContentType)."""

    REQUEST_RESOURCE = "RequestResource"
    RESPONSE_TO_REQUEST_RESOURCE = "ResponseToRequestResource"
    REQUISITION_RESOURCE = "RequisitionResource"
    COMMIT_RESOURCE = "CommitResource"
    REQUEST_INFORMATION = "RequestInformation"
    RELEASE_RESOURCE = "ReleaseResource"
    REQUEST_RETURN = "RequestReturn"
    RESPONSE_TO_REQUEST_RETURN = "ResponseToRequestReturn"
    REQUEST_EXTENDED_DEPLOYMENT_DURATION = "RequestExtendedDeploymentDuration"
    REPORT_RESOURCE_DEPLOYMENT_STATUS = "ReportResourceDeploymentStatus"


class ScheduleType(StrEnum):
    """The 18 ScheduleType values of EDXL-RM 1.0."""

    REQUESTED_ARRIVAL = "RequestedArrival"
    ESTIMATED_ARRIVAL = "EstimatedArrival"
    ACTUAL_ARRIVAL = "ActualArrival"
    REQUESTED_DEPARTURE = "RequestedDeparture"
    ESTIMATED_DEPARTURE = "EstimatedDeparture"
    ACTUAL_DEPARTURE = "ActualDeparture"
    ESTIMATED_RETURN_DEPARTURE = "EstimatedReturnDeparture"
    ESTIMATED_RETURN_ARRIVAL = "EstimatedReturnArrival"
    ACTUAL_RETURN_ARRIVAL = "ActualReturnArrival"
    REQUESTED_RETURN_DEPARTURE = "RequestedReturnDeparture"
    REQUESTED_RETURN_ARRIVAL = "RequestedReturnArrival"
    ACTUAL_RETURN_DEPARTURE = "ActualReturnDeparture"
    BEGIN_AVAILABLE = "BeginAvailable"
    END_AVAILABLE = "EndAvailable"
    COMMITTED = "Committed"
    CURRENT = "Current"
    REPORT_TO = "ReportTo"
    ROUTE = "Route"


class ResponseType(StrEnum):
    """EDXL-RM ResponseType: Provisional needs a reason."""

    ACCEPT = "Accept"
    DECLINE = "Decline"
    PROVISIONAL = "Provisional"


class ContactRole(StrEnum):
    """EDXL-RM ContactRole."""

    SENDER = "Sender"
    REQUESTER = "Requester"
    SUBJECT_MATTER_EXPERT = "SubjectMatterExpert"
    APPROVER = "Approver"
    RESPONDING_ORG = "RespondingOrg"
    OWNER = "Owner"


class RecallType(StrEnum):
    """EDXL-RM RecallType: a later message updates or cancels an earlier one."""

    UPDATE = "Update"
    CANCEL = "Cancel"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ValueList(_Model):
    """A value from a named list (EDXL-RM ValueListType): the list's URN and one or more values."""

    list_urn: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S{1,250}$")]
    values: Annotated[tuple[Text, ...], Field(min_length=1, max_length=20)]


class Quantity(_Model):
    """A measured quantity: an amount and, optionally, its unit from a value list."""

    amount: Annotated[Decimal, Field(ge=0, le=10**12, allow_inf_nan=False)]
    unit: ValueList | None = None


class Schedule(_Model):
    """One ScheduleInformation: its type, and a time and a place where they apply."""

    type: ScheduleType
    at: AwareDatetime | None = None
    place: Text | None = None
    point: GeoPoint | None = None


class Response(_Model):
    """ResponseInformation: the answer to one line of the preceding message."""

    preceding_element_id: ElementId
    type: ResponseType
    reason: Text | None = None

    @model_validator(mode="after")
    def _provisional_has_reason(self) -> Self:
        """Refuse a Provisional answer without a reason, as the schema's comment asks."""
        if self.type is ResponseType.PROVISIONAL and self.reason is None:
            raise ValueError("a Provisional response needs a reason")
        return self


class Contact(_Model):
    """ContactInformation: at least one of a description and a role."""

    description: Text | None = None
    role: ContactRole | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        """Refuse an empty contact."""
        if self.description is None and self.role is None:
            raise ValueError("a contact needs a description or a role")
        return self


class Funding(_Model):
    """Funding: a fund code, a free description, or both."""

    code: Text | None = None
    info: Text | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        """Refuse empty funding."""
        if self.code is None and self.info is None:
            raise ValueError("funding needs a code or info")
        return self


class ResourceInfo(_Model):
    """One ResourceInformation element: a line of the exchange, referred to by its element id."""

    element_id: ElementId
    response: Response | None = None
    resource_id: Text | None = None
    name: Text | None = None
    type: ValueList | None = None
    keywords: tuple[ValueList, ...] = ()
    description: Text | None = None
    owner: Text | None = None
    deployment_status: ValueList | None = None
    availability: Text | None = None
    quantity: Quantity | None = None
    price_quote: Quantity | None = None
    order_id: Text | None = None
    schedules: Annotated[tuple[Schedule, ...], Field(max_length=40)] = ()

    @property
    def has_resource(self) -> bool:
        """Return whether anything goes into a `<Resource>` element."""
        return any(
            value is not None and value != ()
            for value in (
                self.resource_id,
                self.name,
                self.type,
                self.keywords,
                self.description,
                self.owner,
                self.deployment_status,
                self.availability,
            )
        )

    def schedule(self, kind: ScheduleType) -> Schedule | None:
        """Return the first schedule of `kind`, if any."""
        return next((s for s in self.schedules if s.type is kind), None)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What one message type may carry, from its schema."""

    preceding: Literal["required", "optional", "absent"]
    response: Literal["required", "optional", "absent"]
    resource_required: bool
    min_lines: int
    schedules: frozenset[ScheduleType]
    ownership: bool = True
    status: bool = True
    availability: bool = True
    price_quote: bool = True
    order_id: bool = True
    quantity_required: bool = False
    status_required: bool = False
    funding_required: bool = False


_ST = ScheduleType
_ALL = frozenset(ScheduleType)
_SHAPES: dict[MessageType, _Shape] = {
    MessageType.REQUEST_RESOURCE: _Shape(
        "absent",
        "absent",
        True,
        1,
        frozenset(
            {
                _ST.REQUESTED_ARRIVAL,
                _ST.REQUESTED_DEPARTURE,
                _ST.ESTIMATED_RETURN_DEPARTURE,
                _ST.ESTIMATED_RETURN_ARRIVAL,
                _ST.REPORT_TO,
                _ST.ROUTE,
            }
        ),
        ownership=False,
        status=False,
        availability=False,
        price_quote=False,
        order_id=False,
    ),
    MessageType.RESPONSE_TO_REQUEST_RESOURCE: _Shape(
        "required",
        "required",
        False,
        1,
        frozenset(
            {
                _ST.ESTIMATED_ARRIVAL,
                _ST.ESTIMATED_DEPARTURE,
                _ST.REQUESTED_RETURN_DEPARTURE,
                _ST.REQUESTED_RETURN_ARRIVAL,
                _ST.BEGIN_AVAILABLE,
                _ST.END_AVAILABLE,
                _ST.REQUESTED_ARRIVAL,
                _ST.REQUESTED_DEPARTURE,
                _ST.ESTIMATED_RETURN_DEPARTURE,
                _ST.REPORT_TO,
                _ST.ROUTE,
            }
        ),
        order_id=False,
    ),
    MessageType.REQUISITION_RESOURCE: _Shape(
        "optional",
        "absent",
        True,
        1,
        frozenset(
            {
                _ST.ESTIMATED_ARRIVAL,
                _ST.ESTIMATED_DEPARTURE,
                _ST.ESTIMATED_RETURN_DEPARTURE,
                _ST.ESTIMATED_RETURN_ARRIVAL,
                _ST.REPORT_TO,
                _ST.REQUESTED_ARRIVAL,
                _ST.REQUESTED_DEPARTURE,
                _ST.ROUTE,
            }
        ),
        status=False,
        availability=False,
        order_id=False,
        quantity_required=True,
        funding_required=True,
    ),
    MessageType.COMMIT_RESOURCE: _Shape(
        "required",
        "required",
        False,
        1,
        _ALL - {_ST.ACTUAL_ARRIVAL, _ST.ACTUAL_RETURN_ARRIVAL, _ST.ACTUAL_RETURN_DEPARTURE},
        availability=False,
    ),
    MessageType.REQUEST_INFORMATION: _Shape("optional", "absent", False, 0, _ALL),
    MessageType.RELEASE_RESOURCE: _Shape("optional", "optional", True, 1, _ALL - {_ST.ACTUAL_RETURN_ARRIVAL}),
    MessageType.REQUEST_RETURN: _Shape(
        "optional",
        "absent",
        True,
        1,
        _ALL
        - {
            _ST.ESTIMATED_RETURN_DEPARTURE,
            _ST.ESTIMATED_RETURN_ARRIVAL,
            _ST.ACTUAL_RETURN_ARRIVAL,
            _ST.ACTUAL_RETURN_DEPARTURE,
            _ST.CURRENT,
        },
    ),
    MessageType.RESPONSE_TO_REQUEST_RETURN: _Shape(
        "required", "required", False, 1, _ALL - {_ST.ACTUAL_RETURN_ARRIVAL}, status_required=True
    ),
    MessageType.REQUEST_EXTENDED_DEPLOYMENT_DURATION: _Shape(
        "optional",
        "absent",
        True,
        1,
        _ALL
        - {
            _ST.ACTUAL_RETURN_ARRIVAL,
            _ST.ACTUAL_RETURN_DEPARTURE,
            _ST.BEGIN_AVAILABLE,
            _ST.END_AVAILABLE,
            _ST.CURRENT,
        },
    ),
    MessageType.REPORT_RESOURCE_DEPLOYMENT_STATUS: _Shape("optional", "optional", False, 1, _ALL),
}


class RmMessage(_Model):
    """One EDXL-RM 1.0 message of a type in `MessageType`, checked against that type's schema."""

    schema_version: Literal[1] = 1
    type: MessageType
    message_id: MessageId
    sent_at: AwareDatetime
    description: Text | None = None
    originating_message_id: MessageId
    preceding_message_id: MessageId | None = None
    incident_id: Text | None = None
    incident_description: Text | None = None
    recall_message_id: MessageId | None = None
    recall_type: RecallType | None = None
    funding: tuple[Funding, ...] = ()
    contacts: Annotated[tuple[Contact, ...], Field(min_length=1, max_length=20)]
    resources: Annotated[tuple[ResourceInfo, ...], Field(max_length=200)] = ()

    @model_validator(mode="after")
    def _fits_its_schema(self) -> Self:
        """Refuse anything the message type's schema does not allow."""
        shape = _SHAPES[self.type]
        name = self.type.value
        if shape.preceding == "required" and self.preceding_message_id is None:
            raise ValueError(f"a {name} needs a PrecedingMessageID")
        if shape.preceding == "absent" and self.preceding_message_id is not None:
            raise ValueError(f"a {name} has no PrecedingMessageID; it starts an exchange")
        if self.type is MessageType.REQUEST_RESOURCE and self.originating_message_id != self.message_id:
            raise ValueError(
                "a RequestResource starts its exchange: OriginatingMessageID must be its MessageID"
            )
        if (self.recall_message_id is None) != (self.recall_type is None):
            raise ValueError("a recall needs both the recalled message id and the recall type")
        if shape.funding_required and not self.funding:
            raise ValueError(f"a {name} needs Funding")
        if len(self.resources) < shape.min_lines:
            raise ValueError(f"a {name} needs at least one ResourceInformation")
        ids = [r.element_id for r in self.resources]
        if len(set(ids)) != len(ids):
            raise ValueError("a ResourceInfoElementID appears twice")
        for index, info in enumerate(self.resources):
            _check_line(shape, name, info, f"resources[{index}]")
        return self


def _check_line(shape: _Shape, name: str, info: ResourceInfo, where: str) -> None:
    """Refuse one ResourceInformation that its message type's schema does not allow."""
    if shape.response == "required" and info.response is None:
        raise ValueError(f"{where}: a {name} answers each line with ResponseInformation")
    if shape.response == "absent" and info.response is not None:
        raise ValueError(f"{where}: a {name} carries no ResponseInformation")
    if shape.resource_required and not (info.resource_id or info.name or info.type):
        raise ValueError(f"{where}: a {name} names the resource by ResourceID, Name or TypeStructure")
    refused = [
        label
        for label, present, allowed in (
            ("OwnershipInformation", info.owner is not None, shape.ownership),
            ("DeploymentStatus", info.deployment_status is not None, shape.status),
            ("Availability", info.availability is not None, shape.availability),
            ("PriceQuote", info.price_quote is not None, shape.price_quote),
            ("OrderID", info.order_id is not None, shape.order_id),
        )
        if present and not allowed
    ]
    if refused:
        raise ValueError(f"{where}: a {name} cannot carry {', '.join(refused)}")
    if shape.status_required and (info.deployment_status is None or info.availability is None):
        raise ValueError(f"{where}: a {name} gives DeploymentStatus and Availability")
    assignment = info.price_quote is not None or info.order_id is not None
    needs_quantity = shape.quantity_required or (
        assignment and name in ("CommitResource", "ReleaseResource", "RequisitionResource")
    )
    if needs_quantity and info.quantity is None:
        raise ValueError(f"{where}: a {name} gives the Quantity")
    for schedule in info.schedules:
        if schedule.type not in shape.schedules:
            raise ValueError(f"{where}: ScheduleType {schedule.type.value} is not allowed in a {name}")


# Writing -------------------------------------------------------------------------------------------


def _m(tag: str) -> str:
    return f"{{{MSG_NS}}}{tag}"


def _r(tag: str) -> str:
    return f"{{{RM_NS}}}{tag}"


def _text_of(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _add(parent: Element, tag: str, value: object | None) -> Element | None:
    """Append `<tag>value</tag>` when `value` is given."""
    if value is None:
        return None
    child = SubElement(parent, tag)
    child.text = _text_of(value)
    return child


def _add_values(parent: Element, tag: str, values: ValueList) -> None:
    element = SubElement(parent, tag)
    _add(element, _r("ValueListURN"), values.list_urn)
    for value in values.values:
        _add(element, _r("Value"), value)


def _add_quantity(parent: Element, tag: str, quantity: Quantity) -> None:
    measured = SubElement(SubElement(parent, tag), _r("MeasuredQuantity"))
    _add(measured, _r("Amount"), quantity.amount)
    if quantity.unit is not None:
        _add_values(measured, _r("UnitOfMeasure"), quantity.unit)


def _add_resource_info(root: Element, info: ResourceInfo) -> None:
    element = SubElement(root, _m("ResourceInformation"))
    _add(element, _m("ResourceInfoElementID"), info.element_id)
    if info.response is not None:
        response = SubElement(element, _m("ResponseInformation"))
        _add(response, _r("PrecedingResourceInfoElementID"), info.response.preceding_element_id)
        _add(response, _r("ResponseType"), info.response.type.value)
        _add(response, _r("ResponseReason"), info.response.reason)
    if info.has_resource:
        resource = SubElement(element, _m("Resource"))
        _add(resource, _m("ResourceID"), info.resource_id)
        _add(resource, _m("Name"), info.name)
        if info.type is not None:
            _add_values(resource, _m("TypeStructure"), info.type)
        for keyword in info.keywords:
            _add_values(resource, _m("Keyword"), keyword)
        _add(resource, _m("Description"), info.description)
        if info.owner is not None:
            _add(SubElement(resource, _m("OwnershipInformation")), _r("OwningJurisdiction"), info.owner)
        if info.deployment_status is not None or info.availability is not None:
            status = SubElement(resource, _m("ResourceStatus"))
            if info.deployment_status is not None:
                _add_values(status, _m("DeploymentStatus"), info.deployment_status)
            _add(status, _m("Availability"), info.availability)
    if info.quantity is not None or info.price_quote is not None or info.order_id is not None:
        assignment = SubElement(element, _m("AssignmentInformation"))
        if info.quantity is not None:
            _add_quantity(assignment, _m("Quantity"), info.quantity)
        if info.price_quote is not None:
            _add_quantity(assignment, _m("PriceQuote"), info.price_quote)
        _add(assignment, _m("OrderID"), info.order_id)
    for schedule in info.schedules:
        element_s = SubElement(element, _m("ScheduleInformation"))
        _add(element_s, _m("ScheduleType"), schedule.type.value)
        _add(element_s, _m("DateTime"), schedule.at)
        if schedule.place is not None or schedule.point is not None:
            location = SubElement(element_s, _m("Location"))
            _add(location, _r("LocationDescription"), schedule.place)
            if schedule.point is not None:
                point = SubElement(SubElement(location, _r("TargetArea")), f"{{{GML_NS}}}Point")
                _add(point, f"{{{GML_NS}}}pos", f"{schedule.point.lat!r} {schedule.point.lon!r}")


def build_rm(message: RmMessage) -> bytes:
    """Write `message` as an EDXL-RM 1.0 XML document (UTF-8, with an XML declaration)."""
    root = Element(_m(message.type.value))
    _add(root, _m("MessageID"), message.message_id)
    _add(root, _m("SentDateTime"), message.sent_at)
    _add(root, _m("MessageContentType"), message.type.value)
    _add(root, _m("MessageDescription"), message.description)
    _add(root, _m("OriginatingMessageID"), message.originating_message_id)
    _add(root, _m("PrecedingMessageID"), message.preceding_message_id)
    if message.incident_id is not None or message.incident_description is not None:
        incident = SubElement(root, _m("IncidentInformation"))
        _add(incident, _r("IncidentID"), message.incident_id)
        _add(incident, _r("IncidentDescription"), message.incident_description)
    if message.recall_message_id is not None and message.recall_type is not None:
        recall = SubElement(root, _m("MessageRecall"))
        _add(recall, _r("RecallMessageID"), message.recall_message_id)
        _add(recall, _r("RecallType"), message.recall_type.value)
    # RequestResource declares Funding locally, so its children are in the msg namespace.
    fund = _m if message.type is MessageType.REQUEST_RESOURCE else _r
    for funding in message.funding:
        element = SubElement(root, _m("Funding"))
        _add(element, fund("FundCode"), funding.code)
        _add(element, fund("FundingInfo"), funding.info)
    for contact in message.contacts:
        element = SubElement(root, _m("ContactInformation"))
        _add(element, _r("ContactDescription"), contact.description)
        _add(element, _r("ContactRole"), contact.role.value if contact.role else None)
    for info in message.resources:
        _add_resource_info(root, info)
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


# Reading -------------------------------------------------------------------------------------------


def _children(element: Element, tag: str) -> Iterator[Element]:
    return (child for child in element if child.tag == tag)


def _one(element: Element, tag: str, path: str) -> Element | None:
    found = list(_children(element, tag))
    if len(found) > 1:
        raise RmError(f"{path}: <{tag.split('}')[-1]}> appears more than once")
    return found[0] if found else None


def _str(element: Element, tag: str, path: str) -> str | None:
    child = _one(element, tag, path)
    if child is None:
        return None
    if len(child):
        raise RmError(f"{path}/{tag.split('}')[-1]}: must hold text, not elements")
    text = (child.text or "").strip()
    return text or None


def _datetime(text: str | None, path: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise RmError(f"{path}: {text!r} is not an xs:dateTime") from None
    if value.tzinfo is None:
        raise RmError(f"{path}: {text!r} has no time zone offset")
    return value


def _decimal(text: str | None, path: str) -> Decimal:
    try:
        return Decimal(text or "")
    except InvalidOperation:
        raise RmError(f"{path}: {text!r} is not a number") from None


def _values(element: Element | None, path: str) -> dict[str, object] | None:
    if element is None:
        return None
    return {
        "list_urn": _str(element, _r("ValueListURN"), path),
        "values": tuple((v.text or "").strip() for v in _children(element, _r("Value"))),
    }


def _quantity(element: Element | None, path: str) -> dict[str, object] | None:
    if element is None:
        return None
    measured = _one(element, _r("MeasuredQuantity"), path)
    if measured is None:
        raise RmError(f"{path}: only a MeasuredQuantity (Amount, UnitOfMeasure) is read, not QuantityText")
    return {
        "amount": _decimal(_str(measured, _r("Amount"), path), f"{path}/Amount"),
        "unit": _values(_one(measured, _r("UnitOfMeasure"), path), f"{path}/UnitOfMeasure"),
    }


def _read_schedule(element: Element, path: str) -> dict[str, object]:
    data: dict[str, object] = {
        "type": _str(element, _m("ScheduleType"), path),
        "at": _datetime(_str(element, _m("DateTime"), path), f"{path}/DateTime"),
    }
    location = _one(element, _m("Location"), path)
    if location is not None:
        data["place"] = _str(location, _r("LocationDescription"), path)
        area = _one(location, _r("TargetArea"), path)
        point = None if area is None else _one(area, f"{{{GML_NS}}}Point", path)
        if point is not None:
            parts = (_str(point, f"{{{GML_NS}}}pos", path) or "").split()
            if len(parts) != 2:
                raise RmError(f"{path}/Location: gml:pos must be 'latitude longitude'")
            try:
                data["point"] = {"lat": float(parts[0]), "lon": float(parts[1])}
            except ValueError:
                raise RmError(f"{path}/Location: gml:pos {' '.join(parts)!r} is not two numbers") from None
    return data


def _read_resource_info(element: Element, path: str) -> dict[str, object]:
    data: dict[str, object] = {"element_id": _str(element, _m("ResourceInfoElementID"), path)}
    response = _one(element, _m("ResponseInformation"), path)
    if response is not None:
        data["response"] = {
            "preceding_element_id": _str(response, _r("PrecedingResourceInfoElementID"), path),
            "type": _str(response, _r("ResponseType"), path),
            "reason": _str(response, _r("ResponseReason"), path),
        }
    resource = _one(element, _m("Resource"), path)
    if resource is not None:
        data["resource_id"] = _str(resource, _m("ResourceID"), path)
        data["name"] = _str(resource, _m("Name"), path)
        data["type"] = _values(_one(resource, _m("TypeStructure"), path), f"{path}/TypeStructure")
        data["keywords"] = tuple(_values(k, f"{path}/Keyword") for k in _children(resource, _m("Keyword")))
        data["description"] = _str(resource, _m("Description"), path)
        ownership = _one(resource, _m("OwnershipInformation"), path)
        if ownership is not None:
            data["owner"] = _str(ownership, _r("OwningJurisdiction"), path)
        status = _one(resource, _m("ResourceStatus"), path)
        if status is not None:
            data["deployment_status"] = _values(_one(status, _m("DeploymentStatus"), path), path)
            data["availability"] = _str(status, _m("Availability"), path)
    assignment = _one(element, _m("AssignmentInformation"), path)
    if assignment is not None:
        data["quantity"] = _quantity(_one(assignment, _m("Quantity"), path), f"{path}/Quantity")
        data["price_quote"] = _quantity(_one(assignment, _m("PriceQuote"), path), f"{path}/PriceQuote")
        data["order_id"] = _str(assignment, _m("OrderID"), path)
    data["schedules"] = tuple(
        _read_schedule(s, f"{path}/ScheduleInformation")
        for s in _children(element, _m("ScheduleInformation"))
    )
    return data


def _parse_root(data: bytes) -> Element:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden as error:
        raise RmError("EDXL-RM document has a DTD (<!DOCTYPE>); DTDs and entities are refused") from error
    except defusedxml.EntitiesForbidden as error:
        raise RmError(f"EDXL-RM document declares entities, which are refused ({error})") from error
    except defusedxml.ExternalReferenceForbidden as error:
        raise RmError(f"EDXL-RM document refers to external resources ({error})") from error
    except ParseError as error:
        raise RmError(f"EDXL-RM document is not well-formed XML: {error}") from error


def parse_rm(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> RmMessage:
    """Read an EDXL-RM 1.0 document into an `RmMessage`, or raise `RmError` saying what is wrong."""
    try:
        raw = check_size(data, max_bytes, "EDXL-RM document")
    except ContractError as error:
        raise RmError(str(error), error.problems) from error
    root = _parse_root(raw)
    namespace, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if namespace != MSG_NS or local not in MessageType.__members__.values():
        known = ", ".join(t.value for t in MessageType)
        raise RmError(
            f"root element is <{local}> in {namespace or 'no namespace'!r}; "
            f"expected one of {known} in {MSG_NS}"
        )
    path = local
    content_type = _str(root, _m("MessageContentType"), path)
    if content_type != local:
        raise RmError(f"{path}/MessageContentType is {content_type!r}, but the message is a {local}")
    incident = _one(root, _m("IncidentInformation"), path)
    recall = _one(root, _m("MessageRecall"), path)
    fund = _m if local == MessageType.REQUEST_RESOURCE.value else _r
    fields: dict[str, object] = {
        "type": local,
        "message_id": _str(root, _m("MessageID"), path),
        "sent_at": _datetime(_str(root, _m("SentDateTime"), path), f"{path}/SentDateTime"),
        "description": _str(root, _m("MessageDescription"), path),
        "originating_message_id": _str(root, _m("OriginatingMessageID"), path),
        "preceding_message_id": _str(root, _m("PrecedingMessageID"), path),
        "incident_id": None if incident is None else _str(incident, _r("IncidentID"), path),
        "incident_description": None if incident is None else _str(incident, _r("IncidentDescription"), path),
        "recall_message_id": None if recall is None else _str(recall, _r("RecallMessageID"), path),
        "recall_type": None if recall is None else _str(recall, _r("RecallType"), path),
        "funding": tuple(
            {"code": _str(f, fund("FundCode"), path), "info": _str(f, fund("FundingInfo"), path)}
            for f in _children(root, _m("Funding"))
        ),
        "contacts": tuple(
            {"description": _str(c, _r("ContactDescription"), path), "role": _str(c, _r("ContactRole"), path)}
            for c in _children(root, _m("ContactInformation"))
        ),
        "resources": tuple(
            _read_resource_info(r, f"{path}/ResourceInformation[{i}]")
            for i, r in enumerate(_children(root, _m("ResourceInformation")))
        ),
    }
    try:
        return RmMessage.model_validate(fields)
    except ValidationError as error:
        problems = problems_from_validation_error(error)
        listed = "; ".join(str(problem) for problem in problems)
        raise RmError(f"invalid {local}: {listed}", problems) from error


# From and to the hub's contracts -------------------------------------------------------------------


def reply(
    previous: RmMessage,
    type: MessageType,
    *,
    message_id: str,
    sent_at: datetime,
    contacts: Iterable[Contact],
    resources: Iterable[ResourceInfo] = (),
    funding: Iterable[Funding] = (),
    description: str | None = None,
) -> RmMessage:
    """Return a message of `type` that answers `previous`, keeping the exchange's message-ID chain."""
    if type is MessageType.REQUEST_RESOURCE:
        raise RmError("a RequestResource starts an exchange; it answers nothing")
    try:
        return RmMessage(
            type=type,
            message_id=message_id,
            sent_at=sent_at,
            description=description,
            originating_message_id=previous.originating_message_id,
            preceding_message_id=previous.message_id,
            incident_id=previous.incident_id,
            funding=tuple(funding),
            contacts=tuple(contacts),
            resources=tuple(resources),
        )
    except ValidationError as error:
        raise _invalid(type.value, error) from error


def _invalid(subject: str, error: ValidationError) -> RmError:
    problems = problems_from_validation_error(error)
    return RmError(f"invalid {subject}: {'; '.join(str(p) for p in problems)}", problems)


def _type_values(code: str, grade: Grade | None) -> tuple[ValueList, tuple[ValueList, ...]]:
    keywords = (
        () if grade is None else (ValueList(list_urn=GRADE_VALUE_LIST_URN, values=(grade.name.lower(),)),)
    )
    return ValueList(list_urn=TYPE_VALUE_LIST_URN, values=(code,)), keywords


def _unit(unit: str) -> ValueList:
    return ValueList(list_urn=UNIT_VALUE_LIST_URN, values=(unit,))


def _cny(amount: Decimal) -> Quantity:
    return Quantity(amount=amount, unit=ValueList(list_urn=CURRENCY_VALUE_LIST_URN, values=("CNY",)))


def request_to_rm(request: AidRequest, *, message_id: str, sent_at: datetime) -> RmMessage:
    """Write an assistance request as a RequestResource that starts its exchange."""
    resources = []
    for line in request.lines:
        type_list, keywords = _type_values(line.type_code, line.min_grade)
        report = line.report_to
        resources.append(
            ResourceInfo(
                element_id=line.line_id,
                name=CATALOGUE[line.type_code].name_zh,
                type=type_list,
                keywords=keywords,
                description=line.note or None,
                quantity=Quantity(amount=line.quantity, unit=_unit(line.unit)),
                schedules=(
                    Schedule(type=ScheduleType.REQUESTED_ARRIVAL, at=line.needed_by),
                    Schedule(type=ScheduleType.ESTIMATED_RETURN_DEPARTURE, at=line.needed_until),
                    Schedule(type=ScheduleType.REPORT_TO, place=report.place, point=report.point),
                ),
            )
        )
    contact = request.contact
    return RmMessage(
        type=MessageType.REQUEST_RESOURCE,
        message_id=message_id,
        sent_at=sent_at,
        description=request.title,
        originating_message_id=message_id,
        incident_id=None if request.incident_id is None else str(request.incident_id),
        contacts=(
            Contact(
                description=f"{request.requesting_city} {contact.name} {contact.phone}",
                role=ContactRole.REQUESTER,
            ),
        ),
        resources=tuple(resources),
    )


def lines_from_rm(message: RmMessage) -> tuple[RequestLine, ...]:
    """Read the lines of a partner's RequestResource as hub request lines, or raise `RmError`.

    A line must name a hub type (`TYPE_VALUE_LIST_URN`), a quantity, a RequestedArrival time, an
    EstimatedReturnDeparture time (the end of the need) and a ReportTo place with a point.
    """
    if message.type is not MessageType.REQUEST_RESOURCE:
        raise RmError(f"expected a RequestResource, not a {message.type.value}")
    lines = []
    for info in message.resources:
        where = f"ResourceInformation {info.element_id}"
        if info.type is None or info.type.list_urn != TYPE_VALUE_LIST_URN:
            raise RmError(f"{where}: TypeStructure must use the value list {TYPE_VALUE_LIST_URN}")
        grades = [k.values[0] for k in info.keywords if k.list_urn == GRADE_VALUE_LIST_URN]
        arrival = info.schedule(ScheduleType.REQUESTED_ARRIVAL)
        until = info.schedule(ScheduleType.ESTIMATED_RETURN_DEPARTURE)
        report = info.schedule(ScheduleType.REPORT_TO)
        if info.quantity is None or info.quantity.unit is None:
            raise RmError(f"{where}: a Quantity with its UnitOfMeasure is required")
        if arrival is None or arrival.at is None or until is None or until.at is None:
            raise RmError(f"{where}: RequestedArrival and EstimatedReturnDeparture times are required")
        if report is None or report.place is None or report.point is None:
            raise RmError(f"{where}: a ReportTo schedule with a place and a point is required")
        hours = (until.at - arrival.at) / timedelta(hours=1)
        if grades and grades[0].upper() not in Grade.__members__:
            raise RmError(f"{where}: unknown grade {grades[0]!r}")
        try:
            lines.append(
                RequestLine(
                    line_id=info.element_id,
                    type_code=info.type.values[0],
                    min_grade=Grade[grades[0].upper()] if grades else None,
                    quantity=info.quantity.amount,
                    unit=info.quantity.unit.values[0],
                    needed_by=arrival.at,
                    duration_hours=max(1, round(hours)),
                    report_to=ReportTo(place=report.place, point=report.point),
                    note=info.description or "",
                )
            )
        except ValidationError as error:
            raise _invalid(where, error) from error
    return tuple(lines)


def offer_to_rm(
    offer: AidOffer, request_message: RmMessage, *, message_id: str, sent_at: datetime, contact: Contact
) -> RmMessage:
    """Write an offer as the ResponseToRequestResource that answers the request's line."""
    type_list, keywords = _type_values(offer.type_code, offer.grade)
    info = ResourceInfo(
        element_id=f"{offer.line_id}.{offer.id.hex[:8]}",
        response=Response(preceding_element_id=offer.line_id, type=ResponseType.ACCEPT),
        resource_id=offer.resource_id,
        type=type_list,
        keywords=keywords,
        owner=offer.offering_city,
        deployment_status=ValueList(list_urn=STATE_VALUE_LIST_URN, values=(AidState.OFFERED.value,)),
        quantity=Quantity(amount=offer.quantity, unit=_unit(offer.unit)),
        price_quote=_cny(offer.estimated_cost),
        schedules=(
            Schedule(type=ScheduleType.ESTIMATED_ARRIVAL, at=offer.estimated_arrival),
            Schedule(type=ScheduleType.END_AVAILABLE, at=offer.valid_until),
        ),
    )
    return reply(
        request_message,
        MessageType.RESPONSE_TO_REQUEST_RESOURCE,
        message_id=message_id,
        sent_at=sent_at,
        contacts=(contact,),
        resources=(info,),
    )


def commitment_to_rm(
    commitment: AidCommitment,
    previous: RmMessage,
    type: MessageType,
    *,
    message_id: str,
    sent_at: datetime,
    contact: Contact,
    preceding_element_id: str | None = None,
    funding: Iterable[Funding] = (),
) -> RmMessage:
    """Write a step of a commitment (CommitResource, ReleaseResource, ...) that answers `previous`.

    A RequisitionResource needs `funding` (who pays, EMAC's reimbursement).

    The line is `commitment.line_id`; the commitment's state goes in DeploymentStatus where the
    message type allows it, its order number in OrderID, its window as Committed schedules.
    """
    shape = _SHAPES[type]
    response = None
    if shape.response != "absent":
        response = Response(
            preceding_element_id=preceding_element_id or commitment.line_id, type=ResponseType.ACCEPT
        )
    schedules = tuple(
        s
        for s in (
            Schedule(type=ScheduleType.COMMITTED, at=commitment.start),
            Schedule(type=ScheduleType.ESTIMATED_RETURN_DEPARTURE, at=commitment.end),
        )
        if s.type in shape.schedules
    )
    status = ValueList(list_urn=STATE_VALUE_LIST_URN, values=(commitment.state.value,))
    info = ResourceInfo(
        element_id=commitment.line_id,
        response=response,
        resource_id=commitment.resource_id,
        owner=commitment.owner_city if shape.ownership else None,
        deployment_status=status if shape.status else None,
        availability=("available" if commitment.state is AidState.RETURNED else "committed")
        if shape.availability and shape.status
        else None,
        quantity=Quantity(amount=commitment.quantity, unit=_unit(commitment.unit)),
        price_quote=_cny(commitment.estimated_cost) if shape.price_quote else None,
        order_id=commitment.order_number if shape.order_id else None,
        schedules=schedules,
    )
    return reply(
        previous,
        type,
        message_id=message_id,
        sent_at=sent_at,
        contacts=(contact,),
        resources=(info,),
        funding=funding,
    )
