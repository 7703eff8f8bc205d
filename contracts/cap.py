"""CAP 1.2 (OASIS Common Alerting Protocol) in and out, and its mapping to incidents.

Reading is defensive: the size is capped before any parsing, and defusedxml refuses DTDs, entity
declarations and external references, so billion-laughs and XXE documents never expand. Every
failure is a `CapError` (a `ContractError`) whose message names the element at fault.

CAP 1.1 is refused with "CAP 1.1 is not accepted; send CAP 1.2". The hub's partners are Chinese
city platforms, whose format (GB/T 35965.1-2018) is a CAP 1.2 profile, and the 1.1 documents met in
practice break their own schema (dates without zone, `en_US`, private elements). Reading them
leniently would mean guessing a time zone and dropping elements, which changes the meaning of a
warning without anyone noticing; a refusal is dead-lettered with the reason and the sender fixes it.

Whitespace: leading and trailing whitespace of every element's text is dropped (it is layout, not
content), and runs of whitespace inside `<polygon>`, `<circle>`, `<references>` and `<incidents>`
become one space (they are space-separated lists). An optional element that is empty is read as
absent, an `<info>` without `<language>` as "en-US", and the deprecated certainty "Very Likely"
as "Likely" (CAP 1.2, 3.2.2). So `parse_cap(build_cap(parse_cap(doc))) == parse_cap(doc)`.

An enveloped XML signature (`<Signature>` in the xmldsig namespace, which CAP 1.2 allows after the
last `<info>`) is kept as XML text and written back, but never verified here; rebuilding a
document changes its bytes, so a rebuilt alert's old signature no longer verifies.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from uuid import NAMESPACE_URL, uuid5
from xml.etree.ElementTree import Element, ParseError, SubElement, indent, tostring

import defusedxml
from defusedxml.ElementTree import fromstring
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    model_validator,
)

from contracts.bulletins import BulletinMessage
from contracts.common import IncidentCategory, IncidentLevel, IncidentStatus, WarningColour
from contracts.errors import ContractError, check_size, problems_from_validation_error
from contracts.incidents import IncidentReport

CAP12_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP11_NS = "urn:oasis:names:tc:emergency:cap:1.1"
CAP10_NS = "http://www.incident.com/cap/1.0"
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
DEFAULT_MAX_BYTES = 512_000

# China has kept one offset all year since 1991; a fixed zone needs no tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

COLOUR_PARAMETER = "预警颜色"
LEVEL_PARAMETER = "事件级别"
CATEGORY_PARAMETER = "事件类别"
CITY_GEOCODE = "huaihai-city"
RESTRICTION_ZH = "仅限淮海经济区成员城市应急管理部门"


class CapError(ContractError):
    """A CAP document that cannot be accepted; the message says why and where."""


class CapStatus(StrEnum):
    """`<status>`: the handling code of the message."""

    ACTUAL = "Actual"
    EXERCISE = "Exercise"
    SYSTEM = "System"
    TEST = "Test"
    DRAFT = "Draft"


class CapMsgType(StrEnum):
    """`<msgType>`: the nature of the message."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"
    ACK = "Ack"
    ERROR = "Error"


class CapScope(StrEnum):
    """`<scope>`: who may see the message."""

    PUBLIC = "Public"
    RESTRICTED = "Restricted"
    PRIVATE = "Private"


class CapCategory(StrEnum):
    """`<category>`: the category of the subject event."""

    GEO = "Geo"
    MET = "Met"
    SAFETY = "Safety"
    SECURITY = "Security"
    RESCUE = "Rescue"
    FIRE = "Fire"
    HEALTH = "Health"
    ENV = "Env"
    TRANSPORT = "Transport"
    INFRA = "Infra"
    CBRNE = "CBRNE"
    OTHER = "Other"


class CapResponseType(StrEnum):
    """`<responseType>`: the action recommended for the audience."""

    SHELTER = "Shelter"
    EVACUATE = "Evacuate"
    PREPARE = "Prepare"
    EXECUTE = "Execute"
    AVOID = "Avoid"
    MONITOR = "Monitor"
    ASSESS = "Assess"
    ALL_CLEAR = "AllClear"
    NONE = "None"


class CapUrgency(StrEnum):
    """`<urgency>`: how soon to act."""

    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class CapSeverity(StrEnum):
    """`<severity>`: how grave the event is."""

    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class CapCertainty(StrEnum):
    """`<certainty>`: how sure the sender is."""

    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


_CAP_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")


def parse_cap_datetime(value: Any) -> Any:
    """Read a CAP date-time string (offset required, no "Z"); pass other values through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not _CAP_DATETIME.fullmatch(text):
        raise ValueError(f"{text!r} is not a CAP date-time (YYYY-MM-DDThh:mm:ss+hh:mm)")
    return datetime.fromisoformat(text)


def format_cap_datetime(value: datetime) -> str:
    """Write a date-time the CAP way: whole seconds, and UTC as "-00:00" (CAP 1.2, 3.3.2)."""
    text = value.isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "-00:00" if text.endswith("+00:00") else text


def _whole_seconds(value: datetime) -> datetime:
    """Drop the fraction of a second, which CAP cannot carry."""
    return value.replace(microsecond=0)


def _blank_to_none(value: Any) -> Any:
    """Read an empty optional element as absent."""
    return None if isinstance(value, str) and not value.strip() else value


def _collapse(value: Any) -> Any:
    """Make every run of whitespace in a space-separated list one space."""
    return " ".join(value.split()) if isinstance(value, str) else value


def _very_likely(value: Any) -> Any:
    """Read the deprecated "Very Likely" as "Likely", as CAP 1.2 asks of receivers."""
    return "Likely" if isinstance(value, str) and value.strip() == "Very Likely" else value


def _is_signature(value: str) -> str:
    """Refuse text that is not one xmldsig `<Signature>` element."""
    try:
        element = fromstring(value, forbid_dtd=True)
    except (ParseError, defusedxml.DefusedXmlException) as error:
        raise ValueError(f"not well-formed XML ({error})") from error
    if element.tag != f"{{{XMLDSIG_NS}}}Signature":
        raise ValueError(f"expected an xmldsig <Signature>, not <{element.tag}>")
    return value


CapDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(parse_cap_datetime),
    AfterValidator(_whole_seconds),
    PlainSerializer(format_cap_datetime, return_type=str, when_used="json"),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OptionalText = Annotated[Text | None, BeforeValidator(_blank_to_none)]
SpacedList = Annotated[str, BeforeValidator(_collapse), StringConstraints(min_length=1)]
OptionalSpacedList = Annotated[SpacedList | None, BeforeValidator(_blank_to_none)]
# CAP 1.2, 3.2.1: identifiers and senders must not include spaces, commas, "<" or "&".
CapName = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^\s,<&]+$")]
Language = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
]
Certainty = Annotated[CapCertainty, BeforeValidator(_very_likely)]
XmlSignature = Annotated[str, AfterValidator(_is_signature)]


class _CapModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CapParameter(_CapModel):
    """A `<valueName>`/`<value>` pair: a `<parameter>`, `<eventCode>` or `<geocode>`."""

    value_name: Text
    # NWS and others send empty values; the pair still says the name is known to be blank.
    value: Annotated[str, StringConstraints(strip_whitespace=True)]


class CapResource(_CapModel):
    """A `<resource>`: a file that goes with the alert."""

    resource_desc: Text
    mime_type: Text
    size: Annotated[int, Field(ge=0)] | None = None
    uri: OptionalText = None
    deref_uri: OptionalText = None
    digest: OptionalText = None


class CapArea(_CapModel):
    """An `<area>`: where the info applies."""

    area_desc: Text
    polygons: tuple[SpacedList, ...] = ()
    circles: tuple[SpacedList, ...] = ()
    geocodes: tuple[CapParameter, ...] = ()
    altitude: Decimal | None = None
    ceiling: Decimal | None = None

    @model_validator(mode="after")
    def _ceiling_needs_altitude(self) -> Self:
        """Refuse a ceiling without an altitude (CAP 1.2, 3.2.4)."""
        if self.ceiling is not None and self.altitude is None:
            raise ValueError("<ceiling> may only be used with <altitude>")
        return self


class CapInfo(_CapModel):
    """An `<info>`: the event, in one language, with its areas."""

    language: Language = "en-US"
    categories: Annotated[tuple[CapCategory, ...], Field(min_length=1)]
    event: Text
    response_types: tuple[CapResponseType, ...] = ()
    urgency: CapUrgency
    severity: CapSeverity
    certainty: Certainty
    audience: OptionalText = None
    event_codes: tuple[CapParameter, ...] = ()
    effective: CapDateTime | None = None
    onset: CapDateTime | None = None
    expires: CapDateTime | None = None
    sender_name: OptionalText = None
    headline: OptionalText = None
    description: OptionalText = None
    instruction: OptionalText = None
    web: OptionalText = None
    contact: OptionalText = None
    parameters: tuple[CapParameter, ...] = ()
    resources: tuple[CapResource, ...] = ()
    areas: tuple[CapArea, ...] = ()

    def parameter(self, *names: str) -> str | None:
        """Return the value of the first `<parameter>` called one of `names`, if any."""
        for parameter in self.parameters:
            if parameter.value_name in names:
                return parameter.value
        return None


class CapAlert(_CapModel):
    """An `<alert>`: one CAP 1.2 message."""

    identifier: CapName
    sender: CapName
    sent: CapDateTime
    status: CapStatus
    msg_type: CapMsgType
    source: OptionalText = None
    scope: CapScope
    restriction: OptionalText = None
    addresses: OptionalText = None
    codes: tuple[Text, ...] = ()
    note: OptionalText = None
    references: OptionalSpacedList = None
    incidents: OptionalSpacedList = None
    infos: tuple[CapInfo, ...] = ()
    signatures: tuple[XmlSignature, ...] = ()


# XML element name for each model field, so messages name what the sender wrote.
_ELEMENT_NAMES = {
    "msg_type": "msgType",
    "codes": "code",
    "infos": "info",
    "signatures": "Signature",
    "categories": "category",
    "response_types": "responseType",
    "event_codes": "eventCode",
    "sender_name": "senderName",
    "parameters": "parameter",
    "resources": "resource",
    "areas": "area",
    "area_desc": "areaDesc",
    "polygons": "polygon",
    "circles": "circle",
    "geocodes": "geocode",
    "resource_desc": "resourceDesc",
    "mime_type": "mimeType",
    "deref_uri": "derefUri",
    "value_name": "valueName",
}
_FIELD_NAMES = {element: field for field, element in _ELEMENT_NAMES.items()}

# Per container, its child elements in schema order, and whether each may repeat.
_PAIR = (("valueName", False), ("value", False))
_RESOURCE = (
    ("resourceDesc", False),
    ("mimeType", False),
    ("size", False),
    ("uri", False),
    ("derefUri", False),
    ("digest", False),
)
_AREA = (
    ("areaDesc", False),
    ("polygon", True),
    ("circle", True),
    ("geocode", True),
    ("altitude", False),
    ("ceiling", False),
)
_INFO = (
    ("language", False),
    ("category", True),
    ("event", False),
    ("responseType", True),
    ("urgency", False),
    ("severity", False),
    ("certainty", False),
    ("audience", False),
    ("eventCode", True),
    ("effective", False),
    ("onset", False),
    ("expires", False),
    ("senderName", False),
    ("headline", False),
    ("description", False),
    ("instruction", False),
    ("web", False),
    ("contact", False),
    ("parameter", True),
    ("resource", True),
    ("area", True),
)
_ALERT = (
    ("identifier", False),
    ("sender", False),
    ("sent", False),
    ("status", False),
    ("msgType", False),
    ("source", False),
    ("scope", False),
    ("restriction", False),
    ("addresses", False),
    ("code", True),
    ("note", False),
    ("references", False),
    ("incidents", False),
    ("info", True),
)
_CONTAINERS: dict[str, tuple[tuple[str, bool], ...]] = {
    "alert": _ALERT,
    "info": _INFO,
    "area": _AREA,
    "resource": _RESOURCE,
    "eventCode": _PAIR,
    "parameter": _PAIR,
    "geocode": _PAIR,
}


def _local(tag: str) -> tuple[str, str]:
    """Split an ElementTree tag into (namespace, local name)."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _stray_text(element: Element) -> str | None:
    """Return non-blank text found between a container's child elements, if any."""
    pieces = [element.text or ""] + [child.tail or "" for child in element]
    stray = "".join(pieces).strip()
    return stray or None


def _read(element: Element, name: str, path: str) -> dict[str, Any]:
    """Read a container element into the field dict its model validates."""
    allowed = dict(_CONTAINERS[name])
    if stray := _stray_text(element):
        raise CapError(f"{path}: unexpected text {stray[:40]!r} between elements")
    data: dict[str, Any] = {}
    for child in element:
        namespace, local = _local(child.tag)
        if name == "alert" and namespace == XMLDSIG_NS and local == "Signature":
            # The tail is layout around the element, not part of the signature.
            child.tail = None
            signature = tostring(child, encoding="unicode").replace("\r", "&#13;")
            data.setdefault("signatures", []).append(signature)
            continue
        if namespace != CAP12_NS or local not in allowed:
            shown = local if namespace == CAP12_NS else child.tag
            raise CapError(f"{path}: unexpected element <{shown}>")
        field = _FIELD_NAMES.get(local, local)
        child_path = f"{path}/{local}"
        if local in _CONTAINERS:
            value: Any = _read(child, local, child_path)
        elif len(child):
            raise CapError(f"{child_path}: <{local}> must hold text, not elements")
        else:
            value = (child.text or "").strip()
            if not value and local != "value":
                # An empty optional element is treated as absent; a required one is then
                # reported as missing by the model.
                continue
        if allowed[local]:
            data.setdefault(field, []).append(value)
        elif field in data:
            raise CapError(f"{path}: <{local}> appears more than once")
        else:
            data[field] = value
    return data


def _root(data: bytes) -> Element:
    """Parse bytes into the root element, refusing DTDs, entities and external references."""
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden as error:
        raise CapError(
            "CAP document has a DTD (<!DOCTYPE>); DTDs and entity declarations are refused "
            "because they can expand without bound or read local files"
        ) from error
    except defusedxml.EntitiesForbidden as error:
        raise CapError(f"CAP document declares entities, which are refused ({error})") from error
    except defusedxml.ExternalReferenceForbidden as error:
        raise CapError(f"CAP document refers to external resources ({error})") from error
    except ParseError as error:
        raise CapError(f"CAP document is not well-formed XML: {error}") from error


def parse_cap(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> CapAlert:
    """Read a CAP 1.2 document into a `CapAlert`, or raise `CapError` saying what is wrong."""
    try:
        data = check_size(data, max_bytes, "CAP document")
    except ContractError as error:
        raise CapError(str(error), error.problems) from error
    root = _root(data)
    namespace, local = _local(root.tag)
    if local == "alert" and namespace in (CAP11_NS, CAP10_NS):
        version = "1.1" if namespace == CAP11_NS else "1.0"
        raise CapError(f"CAP {version} is not accepted; send CAP 1.2 (namespace {CAP12_NS})")
    if local == "alert" and not namespace:
        raise CapError(f'root element <alert> has no namespace; CAP 1.2 needs xmlns="{CAP12_NS}"')
    if (namespace, local) != (CAP12_NS, "alert"):
        raise CapError(f"root element is <{root.tag}>; expected <alert> in namespace {CAP12_NS}")
    fields = _read(root, "alert", "alert")
    try:
        return CapAlert.model_validate(fields)
    except ValidationError as error:
        problems = problems_from_validation_error(error, _ELEMENT_NAMES)
        listed = "; ".join(str(problem) for problem in problems)
        raise CapError(f"invalid CAP alert: {listed}", problems) from error


def _text(value: object) -> str:
    """Write a field value as CAP element text."""
    if isinstance(value, datetime):
        return format_cap_datetime(value)
    if isinstance(value, Decimal):
        # str() could give "1E+3", which is not an xs:decimal.
        return format(value, "f")
    return str(value)


def _write(parent: Element, model: BaseModel, layout: tuple[tuple[str, bool], ...]) -> None:
    """Append the model's fields to `parent` as CAP elements, in schema order."""
    for name, repeats in layout:
        value = getattr(model, _FIELD_NAMES.get(name, name))
        values = value if repeats else () if value is None else (value,)
        for item in values:
            child = SubElement(parent, name)
            if isinstance(item, BaseModel):
                _write(child, item, _CONTAINERS[name])
            else:
                child.text = _text(item)


# Characters XML 1.0 cannot carry even as references (XML 1.0, 2.2).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def build_cap(alert: CapAlert) -> bytes:
    """Write a `CapAlert` as a CAP 1.2 XML document in UTF-8, elements in schema order."""
    root = Element("alert", {"xmlns": CAP12_NS})
    _write(root, alert, _ALERT)
    indent(root, space="  ")
    # Signatures go in after indenting so their content is not reflowed.
    for signature in alert.signatures:
        root[-1].tail = "\n  "
        element = fromstring(signature, forbid_dtd=True)
        element.tail = "\n"
        root.append(element)
    text = tostring(root, encoding="unicode")
    if match := _NOT_XML.search(text):
        raise CapError(f"CAP alert text holds {match.group()!r}, which XML cannot carry")
    # A raw CR would be read back as LF (XML 1.0, 2.11); the reference keeps it.
    text = text.replace("\r", "&#13;")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n").encode("utf-8")


CATEGORY_TO_CAP = {
    # Most natural disasters in the region are rain, flood, typhoon and snow (CAP "Met");
    # incidents carry no sub-type yet to tell earthquakes ("Geo") apart.
    IncidentCategory.NATURAL: CapCategory.MET,
    IncidentCategory.ACCIDENT: CapCategory.SAFETY,
    IncidentCategory.PUBLIC_HEALTH: CapCategory.HEALTH,
    IncidentCategory.SOCIAL_SECURITY: CapCategory.SECURITY,
}

CAP_TO_CATEGORY = {
    CapCategory.GEO: IncidentCategory.NATURAL,
    CapCategory.MET: IncidentCategory.NATURAL,
    CapCategory.SAFETY: IncidentCategory.ACCIDENT,
    # Pollution, fires, transport, infrastructure and CBRNE events are 事故灾难 in China's
    # classification; forest fires are natural, but CAP gives no way to tell.
    CapCategory.ENV: IncidentCategory.ACCIDENT,
    CapCategory.FIRE: IncidentCategory.ACCIDENT,
    CapCategory.TRANSPORT: IncidentCategory.ACCIDENT,
    CapCategory.INFRA: IncidentCategory.ACCIDENT,
    CapCategory.CBRNE: IncidentCategory.ACCIDENT,
    CapCategory.RESCUE: IncidentCategory.ACCIDENT,
    CapCategory.HEALTH: IncidentCategory.PUBLIC_HEALTH,
    CapCategory.SECURITY: IncidentCategory.SOCIAL_SECURITY,
}

LEVEL_TO_SEVERITY = {
    IncidentLevel.I: CapSeverity.EXTREME,
    IncidentLevel.II: CapSeverity.SEVERE,
    IncidentLevel.III: CapSeverity.MODERATE,
    IncidentLevel.IV: CapSeverity.MINOR,
}
SEVERITY_TO_LEVEL = {severity: level for level, severity in LEVEL_TO_SEVERITY.items()}
COLOUR_TO_LEVEL = {
    WarningColour.RED: IncidentLevel.I,
    WarningColour.ORANGE: IncidentLevel.II,
    WarningColour.YELLOW: IncidentLevel.III,
    WarningColour.BLUE: IncidentLevel.IV,
}


def gbt_identifier(division_code: str, sent: datetime, sequence: int, agency_code: str = "000") -> str:
    """Make a GB/T 35965.1-2018 identifier: ZZZZZZDDDUUUXX_YYYYMMDDhhmmss_N."""
    if not re.fullmatch(r"\d{6}", division_code):
        raise ContractError(f"division code must be 6 digits (GB/T 2260), not {division_code!r}")
    if not re.fullmatch(r"\d{3}", agency_code):
        raise ContractError(f"agency code must be 3 digits (GB/T 4657), not {agency_code!r}")
    if not 0 <= sequence <= 9:
        raise ContractError(f"sequence must be 0 to 9 in a GB/T 35965.1 identifier, not {sequence}")
    # Unit "000" and extension "00" are the standard's defaults for an office without sub-units.
    sender_code = f"{division_code}{agency_code}00000"
    return f"{sender_code}_{sent.astimezone(BEIJING):%Y%m%d%H%M%S}_{sequence}"


def cap_reference(alert: CapAlert) -> str:
    """Return how a later message refers to `alert` in `<references>`: sender,identifier,sent."""
    return f"{alert.sender},{alert.identifier},{format_cap_datetime(alert.sent)}"


def alert_from_incident(
    report: IncidentReport,
    *,
    sender: str,
    division_code: str | None,
    colour: WarningColour | None = None,
    sequence: int,
    status: Literal["Actual", "Exercise"] | None = None,
    agency_code: str = "000",
    sent: datetime | None = None,
    sender_name: str | None = None,
    scope: CapScope = CapScope.RESTRICTED,
    references: str | None = None,
) -> CapAlert:
    """Describe an incident as a CAP 1.2 alert for partner platforms."""
    expected = CapStatus.EXERCISE if report.exercise else CapStatus.ACTUAL
    if status is not None and status != expected:
        raise ContractError(
            f"an incident with exercise={report.exercise} must be sent with status {expected}"
        )
    # GB/T 35965.1 writes times in Beijing time (+08:00); partners read them as such.
    sent = (sent or max([report.reported_at, *(r.reported_at for r in report.reports)])).astimezone(BEIJING)
    if division_code is None:
        # Deterministic, so a retried send of the same message keeps its identifier.
        stamp = format_cap_datetime(_whole_seconds(sent))
        identifier = f"urn:uuid:{uuid5(NAMESPACE_URL, f'{report.id}/{stamp}/{sequence}')}"
    else:
        identifier = gbt_identifier(division_code, sent, sequence, agency_code)
    closed = report.status == IncidentStatus.CLOSED
    parameters = [
        CapParameter(value_name=CATEGORY_PARAMETER, value=report.category.value),
        CapParameter(value_name=LEVEL_PARAMETER, value=report.level.roman),
    ]
    if colour is not None:
        parameters.append(CapParameter(value_name=COLOUR_PARAMETER, value=colour.label_zh))
    info = CapInfo(
        language="zh-CN",
        categories=(CATEGORY_TO_CAP[report.category],),
        event=report.category.label_zh,
        response_types=(CapResponseType.ALL_CLEAR,) if closed else (),
        urgency=CapUrgency.PAST if closed else CapUrgency.IMMEDIATE,
        severity=colour.cap_severity if colour else LEVEL_TO_SEVERITY[report.level],
        certainty=CapCertainty.OBSERVED,
        onset=report.occurred_at.astimezone(BEIJING),
        sender_name=sender_name,
        headline=report.title,
        description=report.description,
        parameters=tuple(parameters),
        areas=(
            CapArea(
                area_desc=report.location or "、".join(report.affected_cities),
                geocodes=tuple(
                    CapParameter(value_name=CITY_GEOCODE, value=city) for city in report.affected_cities
                ),
            ),
        ),
    )
    try:
        return CapAlert(
            identifier=identifier,
            sender=sender,
            sent=sent,
            status=expected,
            msg_type=CapMsgType.UPDATE if references else CapMsgType.ALERT,
            scope=scope,
            restriction=RESTRICTION_ZH if scope is CapScope.RESTRICTED else None,
            references=references,
            incidents=str(report.id),
            infos=(info,),
        )
    except ValidationError as error:
        raise ContractError.from_validation_error("CAP alert", error, _ELEMENT_NAMES) from error


def _colour(value: str | None) -> WarningColour | None:
    """Read a colour parameter written as "红色" or "red"."""
    if value is None:
        return None
    for colour in WarningColour:
        if value.strip().lower() in (colour.value, colour.label_zh):
            return colour
    return None


def incident_fields_from_cap(alert: CapAlert) -> dict[str, Any]:
    """Read category, level, title, description, exercise and colour from a CAP alert."""
    if alert.status not in (CapStatus.ACTUAL, CapStatus.EXERCISE):
        raise CapError(f"a CAP alert with status {alert.status} does not describe an incident")
    if not alert.infos:
        raise CapError("CAP alert has no <info>, so it describes no event")
    # Duty officers read Chinese first; otherwise the sender's first language.
    info = next((i for i in alert.infos if i.language.lower().startswith("zh")), alert.infos[0])
    category_text = info.parameter(CATEGORY_PARAMETER)
    if category_text in set(IncidentCategory):
        category = IncidentCategory(category_text)
    else:
        mapped = [CAP_TO_CATEGORY[c] for c in info.categories if c in CAP_TO_CATEGORY]
        if not mapped:
            listed = ", ".join(info.categories)
            raise CapError(f"CAP categories {listed} do not map to an incident category")
        category = mapped[0]
    colour = _colour(info.parameter(COLOUR_PARAMETER, "colour", "color"))
    level_text = info.parameter(LEVEL_PARAMETER)
    if level_text is not None and level_text.strip() in IncidentLevel.__members__:
        level = IncidentLevel[level_text.strip()]
    elif info.severity in SEVERITY_TO_LEVEL:
        level = SEVERITY_TO_LEVEL[info.severity]
    elif colour is not None:
        level = COLOUR_TO_LEVEL[colour]
    else:
        raise CapError("CAP alert has severity Unknown and no colour, so it has no level")
    if colour is None and info.severity is not CapSeverity.UNKNOWN:
        colour = next(c for c in WarningColour if c.cap_severity == info.severity)
    return {
        "category": category,
        "level": level,
        "title": (info.headline or info.event)[:200],
        "description": (info.description or "")[:10_000],
        "exercise": alert.status is CapStatus.EXERCISE,
        "colour": colour,
    }


BULLETIN_EVENT = {"bulletin": "信息通报", "warning": "预警"}


def alert_from_bulletin(
    message: BulletinMessage,
    *,
    sender: str,
    division_code: str | None,
    sequence: int = 0,
    agency_code: str = "000",
    sender_name: str | None = None,
) -> CapAlert:
    """Describe a bulletin or warning as a CAP 1.2 alert; restricted ones name their addressees."""
    sent = _whole_seconds(message.issued_at.astimezone(BEIJING))
    if division_code is None:
        identifier = f"urn:uuid:{uuid5(NAMESPACE_URL, f'{message.id}/{sequence}')}"
    else:
        identifier = gbt_identifier(division_code, sent, sequence, agency_code)
    parameters = [CapParameter(value_name=CATEGORY_PARAMETER, value=message.category.value)]
    if message.colour is not None:
        parameters.append(CapParameter(value_name=COLOUR_PARAMETER, value=message.colour.label_zh))
    restricted = message.scope == "restricted"
    info = CapInfo(
        language="zh-CN",
        categories=(CATEGORY_TO_CAP[message.category],),
        event=BULLETIN_EVENT[message.kind],
        urgency=CapUrgency.EXPECTED if message.kind == "warning" else CapUrgency.UNKNOWN,
        severity=message.colour.cap_severity if message.colour else CapSeverity.UNKNOWN,
        certainty=CapCertainty.LIKELY if message.kind == "warning" else CapCertainty.UNKNOWN,
        expires=message.expires_at.astimezone(BEIJING) if message.expires_at else None,
        sender_name=sender_name,
        headline=message.title,
        description=message.text,
        parameters=tuple(parameters),
        areas=(
            CapArea(
                area_desc=message.area,
                geocodes=tuple(
                    CapParameter(value_name=CITY_GEOCODE, value=c) for c in message.addressed_cities
                ),
            ),
        ),
    )
    try:
        return CapAlert(
            identifier=identifier,
            sender=sender,
            sent=sent,
            status=CapStatus.EXERCISE if message.exercise else CapStatus.ACTUAL,
            msg_type=CapMsgType.CANCEL if message.cancelled else CapMsgType.ALERT,
            scope=CapScope.RESTRICTED if restricted else CapScope.PUBLIC,
            restriction=f"{RESTRICTION_ZH}：{'、'.join(message.addressed_cities)}" if restricted else None,
            incidents=str(message.id),
            infos=(info,),
        )
    except ValidationError as error:
        raise ContractError.from_validation_error("CAP alert", error, _ELEMENT_NAMES) from error


def warning_fields_from_cap(alert: CapAlert) -> dict[str, Any]:
    """Read a warning from a CAP alert: colour, category, area, title, text, cities, expiry, exercise."""
    if alert.status not in (CapStatus.ACTUAL, CapStatus.EXERCISE):
        raise CapError(f"a CAP alert with status {alert.status} is not a warning to pass on")
    if alert.msg_type not in (CapMsgType.ALERT, CapMsgType.UPDATE):
        raise CapError(f"a CAP {alert.msg_type} message cannot become a new warning")
    fields = incident_fields_from_cap(alert)
    info = next((i for i in alert.infos if i.language.lower().startswith("zh")), alert.infos[0])
    colour = fields["colour"] or next(c for c in WarningColour if COLOUR_TO_LEVEL[c] == fields["level"])
    cities = tuple(
        dict.fromkeys(g.value for a in info.areas for g in a.geocodes if g.value_name == CITY_GEOCODE)
    )
    area = "；".join(a.area_desc for a in info.areas) or info.event
    return {
        "kind": "warning",
        "colour": colour,
        "category": fields["category"],
        "area": area[:200],
        "title": fields["title"],
        "text": fields["description"] or fields["title"],
        "addressed_cities": cities,
        "all_neighbours": not cities,
        "scope": "restricted" if alert.scope is CapScope.RESTRICTED else "public",
        "expires_at": info.expires,
        "exercise": fields["exercise"],
    }
