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

CAP 1.2's structural rules hold in the models, so they bind parsing and building alike: polygons are
closed rings of at least four "lat,lon" pairs in range, circles are "lat,lon radius", Restricted
needs `<restriction>` and Private `<addresses>`, Update/Cancel/Ack/Error need `<references>`,
information does not expire before it is sent or takes effect, numbers are bounded decimals, and
no text holds a character XML cannot carry. docs/CAP.md has the table, with the spec sections.

An enveloped XML signature (`<Signature>` in the xmldsig namespace, which CAP 1.2 allows after the
last `<info>`) is kept as XML text and written back, but never verified here; rebuilding a
document changes its bytes, so a rebuilt alert's old signature no longer verifies.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, Self
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
    field_validator,
    model_validator,
)

from contracts.bulletins import BulletinMessage
from contracts.common import NOT_XML_TEXT, IncidentCategory, IncidentLevel, IncidentStatus, WarningColour
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


# XML's whitespace (XML 1.0, 2.3); str.split() would also split on U+001C to U+001F and more.
_XML_SPACE = re.compile(r"[ \t\r\n]+")


def _collapse(value: Any) -> Any:
    """Make every run of whitespace in a space-separated list one space."""
    return _XML_SPACE.sub(" ", value).strip(" ") if isinstance(value, str) else value


def _very_likely(value: Any) -> Any:
    """Read the deprecated "Very Likely" as "Likely", as CAP 1.2 asks of receivers."""
    return "Likely" if isinstance(value, str) and value.strip() == "Very Likely" else value


# Characters XML 1.0 cannot carry, not even as character references (XML 1.0, 2.2): the C0
# controls other than tab, LF and CR, surrogates, and the non-characters U+FFFE and U+FFFF. The
# same rule as every contract's text (`contracts.common.XmlChars`).
_NOT_XML = NOT_XML_TEXT


def check_xml_text(value: str) -> str:
    """Return `value`, or raise `ValueError` if it holds a character XML 1.0 cannot carry."""
    if match := _NOT_XML.search(value):
        code = f"U+{ord(match.group()):04X}"
        raise ValueError(
            f"holds the character {code} at position {match.start()}; control characters other "
            "than tab, line feed and carriage return cannot be carried in CAP (XML) text"
        )
    return value


# An xs:decimal: digits with an optional point, no exponent (XML Schema 2, 3.2.3).
_DECIMAL = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_DECIMAL_RE = re.compile(_DECIMAL)
_PAIR_RE = re.compile(f"({_DECIMAL}),({_DECIMAL})")
_RADIUS_RE = re.compile(r"\+?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# Far beyond any altitude or ceiling an alert can mean (about 30 000 km), yet small enough that
# every accepted number is written back in a few dozen characters.
MAX_FEET = Decimal(100_000_000)
MAX_DECIMAL_PLACES = 12
_PLACES = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)


def _decimal_text(value: Any) -> Any:
    """Read an xs:decimal string into a `Decimal`, refusing exponents ("1e100000000")."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not _DECIMAL_RE.fullmatch(text):
        raise ValueError(
            f"{text[:40]!r} is not a decimal number (digits with an optional point, no exponent)"
        )
    return Decimal(text)


def _bounded_feet(value: Decimal) -> Decimal:
    """Refuse a height beyond +-MAX_FEET or with more than MAX_DECIMAL_PLACES places."""
    # copy_abs(), unlike abs(), never rounds to the context, so it cannot overflow.
    if not value.is_finite() or value.copy_abs() > MAX_FEET:
        raise ValueError(f"must be a number of feet between -{MAX_FEET} and {MAX_FEET}")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        # Trailing zeros are dropped, so "0E-100000000" cannot be written as a million zeros.
        rounded = value.quantize(_PLACES)
        if rounded != value:
            raise ValueError(f"has more than {MAX_DECIMAL_PLACES} decimal places")
        return rounded
    return value


def _point(text: str) -> tuple[Decimal, Decimal]:
    """Read a "lat,lon" coordinate pair in WGS 84 decimal degrees (CAP 1.2, 1.5 and 3.2.4)."""
    match = _PAIR_RE.fullmatch(text)
    if not match:
        raise ValueError(f'{text[:40]!r} is not a coordinate pair written "lat,lon" in decimal degrees')
    latitude, longitude = Decimal(match[1]), Decimal(match[2])
    if not -90 <= latitude <= 90:
        raise ValueError(f"latitude {match[1]} in {text!r} is outside -90 to 90")
    if not -180 <= longitude <= 180:
        raise ValueError(f"longitude {match[2]} in {text!r} is outside -180 to 180")
    return latitude, longitude


def _polygon(value: str) -> str:
    """Refuse a polygon that is not a closed ring of at least four pairs (CAP 1.2, 3.2.4)."""
    pairs = value.split(" ")
    points = [_point(pair) for pair in pairs]
    if len(points) < 4:
        raise ValueError(
            f"a polygon needs at least 4 coordinate pairs, the first and last the same; "
            f"this one has {len(points)}"
        )
    if points[0] != points[-1]:
        raise ValueError(
            f"the polygon is not closed: its first pair {pairs[0]!r} and last pair {pairs[-1]!r} differ"
        )
    return value


def _circle(value: str) -> str:
    """Refuse a circle that is not "lat,lon radius", the radius in km and at least 0 (3.2.4)."""
    centre, _, radius = value.partition(" ")
    if not _RADIUS_RE.fullmatch(radius):
        raise ValueError(
            f'{value[:60]!r} is not a circle written "lat,lon radius" with a radius in '
            "kilometres of at least 0"
        )
    _point(centre)
    return value


# Space-separated entries; an entry that holds spaces is written in double quotes (3.2.1).
_QUOTED_LIST = re.compile(r'(?:"[^"]+"|[^\s"]+)(?:\s+(?:"[^"]+"|[^\s"]+))*')
_QUOTED_ENTRY = re.compile(r'"([^"]+)"|([^\s"]+)')


def _quoted_list(value: str) -> str:
    """Refuse a list whose quotes do not pair up (`<addresses>`, `<incidents>`)."""
    if not _QUOTED_LIST.fullmatch(value.strip()):
        raise ValueError("must be entries separated by spaces, an entry that holds spaces in double quotes")
    return value


def split_quoted_list(value: str) -> tuple[str, ...]:
    """Split an `<addresses>` or `<incidents>` list into its entries, without the quotes."""
    return tuple(quoted or bare for quoted, bare in _QUOTED_ENTRY.findall(value))


_RESTRICTED = re.compile(r"[<&]")


class CapReference(NamedTuple):
    """One entry of `<references>`: the extended identifier of an earlier message."""

    sender: str
    identifier: str
    sent: datetime


def parse_references(value: str) -> tuple[CapReference, ...]:
    """Read `<references>`: "sender,identifier,sent" entries separated by whitespace (3.2.1)."""
    references = []
    for entry in _XML_SPACE.split(value.strip(" \t\r\n")):
        parts = entry.split(",")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f'{entry[:80]!r} is not a reference written "sender,identifier,sent"')
        sender, identifier, sent = parts
        if _RESTRICTED.search(sender + identifier):
            raise ValueError(f"{entry[:80]!r} holds '<' or '&' in its sender or identifier")
        try:
            sent_at = parse_cap_datetime(sent)
        except ValueError as error:
            raise ValueError(f"reference {entry[:80]!r}: {error}") from error
        references.append(CapReference(sender, identifier, sent_at))
    return tuple(references)


def _references(value: str) -> str:
    """Refuse `<references>` that are not in the spec's format."""
    parse_references(value)
    return value


# CAP 1.2, 3.2.1: identifiers and senders must not include spaces, commas or the restricted
# characters "<" and "&" (3.3.3).
_CAP_NAME = re.compile(r"[^\s,<&]+")


def _cap_name(value: str) -> str:
    """Refuse an identifier or sender with spaces, commas, "<" or "&" (CAP 1.2, 3.2.1)."""
    if not _CAP_NAME.fullmatch(value):
        raise ValueError(f"{value[:60]!r} must not contain spaces, commas, '<' or '&'")
    return value


# RFC 3986: an absolute URI starts with a scheme; no URI holds whitespace.
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def _absolute_uri(value: str) -> str:
    """Refuse a `<web>` or `<uri>` that is not a full absolute URI (CAP 1.2, 3.2.2 and 3.2.3)."""
    if not _ABSOLUTE_URI.fullmatch(value):
        raise ValueError(f"{value[:60]!r} is not a full absolute URI")
    return value


def _base64(value: str) -> str:
    """Refuse a `<derefUri>` that is not base64 data (CAP 1.2, 3.2.3)."""
    try:
        binascii.a2b_base64(_XML_SPACE.sub("", value), strict_mode=True)
    except binascii.Error as error:
        raise ValueError(f"is not base64 data ({error})") from error
    return value


def _sha1(value: str) -> str:
    """Refuse a `<digest>` that is not a SHA-1 hash (FIPS 180-2) in hexadecimal (3.2.3)."""
    if not re.fullmatch(r"[0-9A-Fa-f]{40}", value):
        raise ValueError(f"{value[:60]!r} is not a SHA-1 digest (40 hexadecimal digits)")
    return value


def _when_present(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    """Apply `check` to an optional field's value when there is one."""

    def checked(value: str | None) -> str | None:
        return None if value is None else check(value)

    return checked


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
Polygon = Annotated[SpacedList, AfterValidator(_polygon)]
Circle = Annotated[SpacedList, AfterValidator(_circle)]
References = Annotated[OptionalSpacedList, AfterValidator(_when_present(_references))]
QuotedList = Annotated[OptionalText, AfterValidator(_when_present(_quoted_list))]
QuotedSpacedList = Annotated[OptionalSpacedList, AfterValidator(_when_present(_quoted_list))]
AbsoluteUri = Annotated[OptionalText, AfterValidator(_when_present(_absolute_uri))]
Base64 = Annotated[OptionalText, AfterValidator(_when_present(_base64))]
Sha1 = Annotated[OptionalText, AfterValidator(_when_present(_sha1))]
MimeType = Annotated[Text, StringConstraints(pattern=r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")]
Feet = Annotated[Decimal, BeforeValidator(_decimal_text), AfterValidator(_bounded_feet)]
CapName = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_cap_name)]
Language = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
]
Certainty = Annotated[CapCertainty, BeforeValidator(_very_likely)]
XmlSignature = Annotated[str, AfterValidator(_is_signature)]


class _CapModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _only_xml_text(cls, value: Any) -> Any:
        """Refuse text XML cannot carry in any field, so `build_cap` always writes well-formed XML."""
        # Before any other step, so that stripping or splitting cannot hide such a character.
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, str):
                check_xml_text(item)
        return value


class CapParameter(_CapModel):
    """A `<valueName>`/`<value>` pair: a `<parameter>`, `<eventCode>` or `<geocode>`."""

    value_name: Text
    # NWS and others send empty values; the pair still says the name is known to be blank.
    value: Annotated[str, StringConstraints(strip_whitespace=True)]


class CapResource(_CapModel):
    """A `<resource>`: a file that goes with the alert."""

    resource_desc: Text
    mime_type: MimeType
    # A size in bytes; the bound keeps it an integer every database and parser can hold.
    size: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    uri: OptionalText = None
    deref_uri: Base64 = None
    digest: Sha1 = None

    @model_validator(mode="after")
    def _uri_is_absolute(self) -> Self:
        """Refuse a relative `<uri>` unless it names the content of `<derefUri>` (3.2.3)."""
        if self.uri is not None and self.deref_uri is None:
            _absolute_uri(self.uri)
        return self


class CapArea(_CapModel):
    """An `<area>`: where the info applies."""

    area_desc: Text
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[Circle, ...] = ()
    geocodes: tuple[CapParameter, ...] = ()
    altitude: Feet | None = None
    ceiling: Feet | None = None

    @model_validator(mode="after")
    def _ceiling_needs_altitude(self) -> Self:
        """Refuse a ceiling without an altitude, or below it (CAP 1.2, 3.2.4)."""
        if self.ceiling is not None and self.altitude is None:
            raise ValueError("<ceiling> may only be used with <altitude>")
        if self.ceiling is not None and self.altitude is not None and self.ceiling < self.altitude:
            # With a ceiling, the altitude is the lower limit of the range.
            raise ValueError(f"<ceiling> {self.ceiling} is below <altitude> {self.altitude}")
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
    web: AbsoluteUri = None
    contact: OptionalText = None
    parameters: tuple[CapParameter, ...] = ()
    resources: tuple[CapResource, ...] = ()
    areas: tuple[CapArea, ...] = ()

    @model_validator(mode="after")
    def _expires_after_effective(self) -> Self:
        """Refuse information that expires before it takes effect."""
        if self.expires is not None and self.effective is not None and self.expires < self.effective:
            raise ValueError(
                f"<expires> {format_cap_datetime(self.expires)} is before <effective> "
                f"{format_cap_datetime(self.effective)}, so the information is never in effect"
            )
        return self

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
    addresses: QuotedList = None
    codes: tuple[Text, ...] = ()
    note: OptionalText = None
    references: References = None
    incidents: QuotedSpacedList = None
    infos: tuple[CapInfo, ...] = ()
    signatures: tuple[XmlSignature, ...] = ()

    @model_validator(mode="after")
    def _structure(self) -> Self:
        """Apply CAP 1.2's rules between elements: scope, references and time order (3.2.1)."""
        if self.scope is CapScope.RESTRICTED and self.restriction is None:
            raise ValueError("<restriction> is required when <scope> is Restricted")
        if self.scope is CapScope.PRIVATE and self.addresses is None:
            raise ValueError("<addresses> is required when <scope> is Private")
        if self.msg_type in _REFERRING and self.references is None:
            raise ValueError(
                f"<references> is required when <msgType> is {self.msg_type}: it names the "
                f"earlier message(s) this one {_REFERRING[self.msg_type]}"
            )
        for index, info in enumerate(self.infos):
            if info.expires is not None and info.expires < self.sent:
                raise ValueError(
                    f"info[{index}].expires: {format_cap_datetime(info.expires)} is before <sent> "
                    f"{format_cap_datetime(self.sent)}, so the information expired before it was sent"
                )
        return self

    def referenced(self) -> tuple[CapReference, ...]:
        """Return the earlier messages named in `<references>`, in order."""
        return parse_references(self.references) if self.references else ()

    def addressees(self) -> tuple[str, ...]:
        """Return the entries of `<addresses>`, without their quotes."""
        return split_quoted_list(self.addresses) if self.addresses else ()


# The msgTypes that act on earlier messages (CAP 1.2, 3.2.1), and what each does to them.
_REFERRING = {
    CapMsgType.UPDATE: "updates",
    CapMsgType.CANCEL: "cancels",
    CapMsgType.ACK: "acknowledges",
    CapMsgType.ERROR: "rejects",
}


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
    # Elements are read in any order: MeteoAlarm, for one, writes <polygon> after <geocode>, and
    # the order carries no meaning. They are written back in schema order.
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
    try:
        # The models refuse such text; this also covers one made with model_construct().
        check_xml_text(text)
    except ValueError as error:
        raise CapError(f"CAP alert text {error}") from error
    # A raw CR would be read back as LF (XML 1.0, 2.11); the reference keeps it.
    text = text.replace("\r", "&#13;")
    document = ('<?xml version="1.0" encoding="UTF-8"?>\n' + text + "\n").encode("utf-8")
    try:
        fromstring(document, forbid_dtd=True)
    except ParseError as error:  # pragma: no cover - a bug here, not bad input
        raise CapError(f"built CAP document is not well-formed XML: {error}") from error
    return document


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
    try:
        info = CapInfo(
            language="zh-CN",
            categories=(CATEGORY_TO_CAP[report.category],),
            event=report.category.label_zh,
            response_types=(CapResponseType.ALL_CLEAR,) if closed else (),
            urgency=CapUrgency.PAST if closed else CapUrgency.IMMEDIATE,
            severity=CapSeverity(colour.cap_severity) if colour else LEVEL_TO_SEVERITY[report.level],
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
    cancelled_at: datetime | None = None,
    addresses: str | None = None,
) -> CapAlert:
    """Describe a bulletin or warning as a CAP 1.2 alert; restricted ones name their addressees.

    A private bulletin is a Private alert whose `<addresses>` are `addresses` (those it came with)
    or else its addressed cities' slugs; a restricted one keeps `addresses` when it came with them.

    A cancelled bulletin becomes a Cancel sent at `cancelled_at` (the issue time when not given)
    that names the original alert in `<references>`, as CAP 1.2 (3.2.1) requires.
    """
    original = _bulletin_alert(
        message, sender, division_code, sequence, agency_code, sender_name, addresses, cancel_of=None
    )
    if not message.cancelled:
        return original
    return _bulletin_alert(
        message,
        sender,
        division_code,
        sequence,
        agency_code,
        sender_name,
        addresses,
        cancel_of=(original, cancelled_at or message.issued_at),
    )


EXERCISE_NOTE = "此为演练信息"
"""What the `<note>` of every exercise alert the hub sends starts with ("this is an exercise")."""


def exercise_note(exercise_ref: str | None) -> str:
    """Return the `<note>` of an exercise alert: CAP 1.2 (3.2.1) asks it to name the exercise."""
    return f"{EXERCISE_NOTE}（演练编号 {exercise_ref}）" if exercise_ref else EXERCISE_NOTE


def _bulletin_alert(
    message: BulletinMessage,
    sender: str,
    division_code: str | None,
    sequence: int,
    agency_code: str,
    sender_name: str | None,
    addresses: str | None,
    cancel_of: tuple[CapAlert, datetime] | None,
) -> CapAlert:
    """Build the Alert for a bulletin, or with `cancel_of` the Cancel of that alert."""
    sent = _whole_seconds((cancel_of[1] if cancel_of else message.issued_at).astimezone(BEIJING))
    if cancel_of is not None and sent == cancel_of[0].sent:
        # Cancelled within the second it was issued: the next sequence number keeps the
        # Cancel's identifier apart from the original's.
        sequence = (sequence + 1) % 10
    if division_code is None:
        name = f"{message.id}/{sequence}" if cancel_of is None else f"{message.id}/cancel/{sequence}"
        identifier = f"urn:uuid:{uuid5(NAMESPACE_URL, name)}"
    else:
        identifier = gbt_identifier(division_code, sent, sequence, agency_code)
    parameters = [CapParameter(value_name=CATEGORY_PARAMETER, value=message.category.value)]
    if message.colour is not None:
        parameters.append(CapParameter(value_name=COLOUR_PARAMETER, value=message.colour.label_zh))
    restricted = message.scope == "restricted"
    if message.scope == "private" and not addresses:
        addresses = " ".join(message.addressed_cities)
    elif message.scope == "public":
        addresses = None
    expires = message.expires_at.astimezone(BEIJING) if message.expires_at else None
    if cancel_of is not None and expires is not None and expires < sent:
        # A Cancel sent after the warning lapsed carries no expiry rather than one before it.
        expires = None
    try:
        info = CapInfo(
            language="zh-CN",
            categories=(CATEGORY_TO_CAP[message.category],),
            event=BULLETIN_EVENT[message.kind],
            urgency=CapUrgency.EXPECTED if message.kind == "warning" else CapUrgency.UNKNOWN,
            severity=CapSeverity(message.colour.cap_severity) if message.colour else CapSeverity.UNKNOWN,
            certainty=CapCertainty.LIKELY if message.kind == "warning" else CapCertainty.UNKNOWN,
            expires=expires,
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
        return CapAlert(
            identifier=identifier,
            sender=sender,
            sent=sent,
            status=CapStatus.EXERCISE if message.exercise else CapStatus.ACTUAL,
            msg_type=CapMsgType.ALERT if cancel_of is None else CapMsgType.CANCEL,
            note=exercise_note(message.exercise_ref) if message.exercise else None,
            scope=_CAP_SCOPE[message.scope],
            restriction=f"{RESTRICTION_ZH}：{'、'.join(message.addressed_cities)}" if restricted else None,
            addresses=addresses,
            references=None if cancel_of is None else cap_reference(cancel_of[0]),
            incidents=str(message.id),
            infos=(info,),
        )
    except ValidationError as error:
        raise ContractError.from_validation_error("CAP alert", error, _ELEMENT_NAMES) from error


_CAP_SCOPE = {"public": CapScope.PUBLIC, "restricted": CapScope.RESTRICTED, "private": CapScope.PRIVATE}
_BULLETIN_SCOPE = {scope: name for name, scope in _CAP_SCOPE.items()}


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
        "scope": _BULLETIN_SCOPE[alert.scope],
        "expires_at": info.expires,
        "exercise": fields["exercise"],
    }
