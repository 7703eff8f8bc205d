"""CAP 1.2's structural rules (docs/CAP.md): each is refused when read and when a model is built."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.cap import (
    MAX_FEET,
    CapAlert,
    CapArea,
    CapError,
    CapReference,
    build_cap,
    parse_cap,
)

SENT = "2025-07-12T04:05:00+08:00"

DOCUMENT = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>{sender}</sender>
  <sent>{sent}</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>{scope}</scope>
  {head}
  <info>
    <category>Met</category>
    <event>Rain</event>
    <urgency>Expected</urgency>
    <severity>Minor</severity>
    <certainty>Likely</certainty>
    {times}
    {info}
    <area>
      <areaDesc>Xuzhou</areaDesc>
      {area}
    </area>
  </info>
</alert>
"""


def _doc(**parts: str) -> bytes:
    """Return a valid CAP 1.2 alert with one info and one area, `parts` replaced."""
    values = {
        "identifier": "X-1",
        "sender": "xuzhou@huaihai.example",
        "sent": SENT,
        "msg_type": "Alert",
        "scope": "Public",
        "head": "",
        "times": "",
        "info": "",
        "area": "",
    } | parts
    return DOCUMENT.format(**values).encode("utf-8")


def _refused(document: bytes) -> str:
    """Return the message of the CapError that `document` is refused with."""
    with pytest.raises(CapError) as caught:
        parse_cap(document)
    return str(caught.value)


def test_base_document_is_accepted() -> None:
    assert parse_cap(_doc()).infos[0].areas[0].area_desc == "Xuzhou"


RING = "34.20,117.10 34.30,117.30 34.10,117.40 34.20,117.10"
REF = f"a@b.example,X-0,{SENT}"


@pytest.mark.parametrize(
    ("parts", "words"),
    [
        # Polygons: closed rings of at least four "lat,lon" pairs (3.2.4).
        (
            {"area": "<polygon>34.2,117.1 34.3,117.3 34.1,117.4 34.0,117.0</polygon>"},
            "area[0].polygon[0]: Value error, the polygon is not closed: its first pair '34.2,117.1'",
        ),
        (
            {"area": "<polygon>34.2,117.1 34.3,117.3 34.2,117.1</polygon>"},
            "a polygon needs at least 4 coordinate pairs, the first and last the same; this one has 3",
        ),
        ({"area": "<polygon>garbage</polygon>"}, "'garbage' is not a coordinate pair written \"lat,lon\""),
        (
            {"area": "<polygon>999,117.1 34.3,117.3 34.1,117.4 999,117.1</polygon>"},
            "latitude 999 in '999,117.1' is outside -90 to 90",
        ),
        (
            {"area": "<polygon>34.2,181 34.3,117.3 34.1,117.4 34.2,181</polygon>"},
            "longitude 181 in '34.2,181' is outside -180 to 180",
        ),
        ({"area": f"<polygon>{RING.replace(',', ', ', 1)}</polygon>"}, "'34.20,' is not a coordinate pair"),
        ({"area": f"<polygon>{RING.replace(' ', ';')}</polygon>"}, "is not a coordinate pair"),
        ({"area": "<polygon>1e1,117 2,117 3,118 1e1,117</polygon>"}, "'1e1,117' is not a coordinate pair"),
        ({"area": "<polygon>NaN,117 2,117 3,118 NaN,117</polygon>"}, "'NaN,117' is not a coordinate pair"),
        ({"area": "<altitude>٣</altitude>"}, "'٣' is not a decimal number"),
        ({"area": "<circle>34.2,117.1 ٥</circle>"}, "is not a circle"),
        # Circles: "lat,lon radius", the radius at least 0 (3.2.4).
        ({"area": "<circle>34.2,117.1</circle>"}, "area[0].circle[0]: Value error, '34.2,117.1' is not a"),
        ({"area": "<circle>34.2,117.1 -5</circle>"}, "radius in kilometres of at least 0"),
        ({"area": "<circle>34.2,117.1 5 6</circle>"}, "'34.2,117.1 5 6' is not a circle"),
        ({"area": "<circle>34.2,117.1 1e9</circle>"}, "'34.2,117.1 1e9' is not a circle"),
        ({"area": "<circle>95,117.1 5</circle>"}, "latitude 95 in '95,117.1' is outside -90 to 90"),
        ({"area": "<circle>circle</circle>"}, "'circle' is not a circle"),
        # Altitude and ceiling: decimals, the ceiling only with an altitude and not below it.
        ({"area": "<altitude>high</altitude>"}, "altitude: Value error, 'high' is not a decimal number"),
        ({"area": "<altitude>1e3</altitude>"}, "'1e3' is not a decimal number (digits with an optional"),
        ({"area": "<altitude>100000001</altitude>"}, "must be a number of feet between -100000000 and"),
        ({"area": "<ceiling>10</ceiling>"}, "<ceiling> may only be used with <altitude>"),
        ({"area": "<altitude>10</altitude><ceiling>5</ceiling>"}, "<ceiling> 5 is below <altitude> 10"),
        (
            {"area": "<altitude>0.0000000000001</altitude>"},
            "altitude: Value error, has more than 12 decimal places",
        ),
        # Scope (3.2.1).
        ({"scope": "Restricted"}, "<restriction> is required when <scope> is Restricted"),
        ({"scope": "Private"}, "<addresses> is required when <scope> is Private"),
        (
            {"scope": "Private", "head": '<addresses>"Xuzhou EMB suqian</addresses>'},
            "addresses: Value error, must be entries separated by spaces, an entry that holds spaces in",
        ),
        ({"head": '<incidents>"flood 7</incidents>'}, "incidents: Value error, must be entries"),
        # Time order: information must not expire before it is sent or takes effect.
        (
            {
                "times": "<effective>2025-07-12T06:00:00+08:00</effective>"
                "<expires>2025-07-12T05:00:00+08:00</expires>"
            },
            "info[0]: Value error, <expires> 2025-07-12T05:00:00+08:00 is before <effective>",
        ),
        (
            {"times": "<expires>2025-07-12T03:00:00+08:00</expires>"},
            "info[0].expires: 2025-07-12T03:00:00+08:00 is before <sent> 2025-07-12T04:05:00+08:00",
        ),
        # References (3.2.1): required by Update, Cancel, Ack and Error; "sender,identifier,sent".
        ({"msg_type": "Update"}, "<references> is required when <msgType> is Update: it names the"),
        ({"msg_type": "Cancel"}, "<references> is required when <msgType> is Cancel"),
        ({"msg_type": "Ack"}, "<references> is required when <msgType> is Ack"),
        ({"msg_type": "Error"}, "<references> is required when <msgType> is Error"),
        (
            {"msg_type": "Update", "head": "<references>a@b.example,X-0</references>"},
            "references: Value error, 'a@b.example,X-0' is not a reference written",
        ),
        (
            {"msg_type": "Update", "head": f"<references>{REF},extra</references>"},
            'is not a reference written "sender,identifier,sent"',
        ),
        (
            {"msg_type": "Cancel", "head": "<references>a@b.example,X-0,yesterday</references>"},
            "reference 'a@b.example,X-0,yesterday': 'yesterday' is not a CAP date-time",
        ),
        (
            {"msg_type": "Cancel", "head": f"<references>{REF} a@b.example,X&amp;0,{SENT}</references>"},
            "holds '<' or '&' in its sender or identifier",
        ),
        # Identifier and sender (3.2.1): no spaces, commas or restricted characters.
        ({"identifier": "X,1"}, "identifier: Value error, 'X,1' must not contain spaces, commas"),
        ({"identifier": "X&amp;1"}, "identifier: Value error, 'X&1' must not contain"),
        ({"identifier": "X&lt;1"}, "identifier: Value error, 'X<1' must not contain"),
        ({"identifier": "X\t1"}, "identifier: Value error, 'X\\t1' must not contain"),
        ({"sender": "xuzhou emb"}, "sender: Value error, 'xuzhou emb' must not contain spaces"),
        ({"sender": "a\u3000b"}, "sender: Value error, 'a\\u3000b' must not contain spaces"),
        # URIs, resources (3.2.2, 3.2.3).
        ({"info": "<web>warnings/today</web>"}, "web: Value error, 'warnings/today' is not a full absolute"),
        (
            {"info": "<resource><resourceDesc>map</resourceDesc><mimeType>PDF</mimeType></resource>"},
            "resource[0].mimeType: String should match pattern",
        ),
        (
            {
                "info": "<resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType>"
                "<uri>map.png</uri></resource>"
            },
            "info[0].resource[0]: Value error, 'map.png' is not a full absolute URI",
        ),
        (
            {
                "info": "<resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType>"
                "<derefUri>not base64!</derefUri></resource>"
            },
            "resource[0].derefUri: Value error, is not base64 data",
        ),
        (
            {
                "info": "<resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType>"
                "<digest>md5:abc</digest></resource>"
            },
            "resource[0].digest: Value error, 'md5:abc' is not a SHA-1 digest",
        ),
        (
            {
                "info": "<resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType>"
                f"<size>{10**30}</size></resource>"
            },
            "resource[0].size: Input should be less than or equal to 9223372036854775807",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_structural_rule_is_enforced_when_reading(parts: dict[str, str], words: str) -> None:
    assert words in _refused(_doc(**parts))


@pytest.mark.parametrize(
    "parts",
    [
        # The first and last pair are the same point, written differently.
        {"area": "<polygon>34.2,117.1 34.3,117.3 34.1,117.4 34.20,117.100</polygon>"},
        {"area": "<polygon>\n  " + RING.replace(" ", "\n  ") + "\n</polygon>"},
        {"area": "<polygon>-90,-180 90,180 0,0 -90,-180</polygon>"},
        {"area": "<circle>32.9525,-115.5527 0</circle>"},
        {"area": "<circle>+34.2,117.1 .5</circle>"},
        {"area": "<altitude>-36070</altitude><ceiling>-36070</ceiling>"},
        {"area": f"<altitude>{MAX_FEET}</altitude><ceiling>{MAX_FEET}.000000000000</ceiling>"},
        {"scope": "Restricted", "head": "<restriction>仅限淮海经济区成员城市应急管理部门</restriction>"},
        {"scope": "Private", "head": '<addresses>xuzhou "Suqian EMB" linyi</addresses>'},
        {"msg_type": "Update", "head": f"<references>{REF}</references>"},
        {"msg_type": "Ack", "head": f"<references>\n  {REF}\n  {REF.replace('X-0', 'X-00')}\n</references>"},
        # An Alert may name what it follows on from; the spec only requires references of the others.
        {"head": f"<references>{REF}</references>"},
        # Expiry before onset is allowed: NWS Cancels and watches do it (docs/CAP.md).
        {
            "msg_type": "Cancel",
            "head": f"<references>{REF}</references>",
            "times": "<onset>2025-07-13T00:00:00+08:00</onset><expires>2025-07-12T05:00:00+08:00</expires>",
        },
        {"times": f"<effective>{SENT}</effective><expires>{SENT}</expires>"},
        {
            "info": "<web>https://www.xz.gov.cn/yjglj/</web><resource><resourceDesc>map</resourceDesc>"
            "<mimeType>image/png; charset=binary</mimeType><size>12</size><uri>map.png</uri>"
            "<derefUri>iVBORw0K\n  GgoAAAAN</derefUri>"
            "<digest>2fd4e1c67a2d28fced849ee1bb76e7391b93eb12</digest></resource>"
        },
    ],
)
def test_what_the_spec_allows_is_accepted_and_survives_a_rebuild(parts: dict[str, str]) -> None:
    alert = parse_cap(_doc(**parts))
    assert parse_cap(build_cap(alert)) == alert


def test_references_and_addresses_are_read_into_their_entries() -> None:
    alert = parse_cap(
        _doc(
            msg_type="Cancel",
            scope="Private",
            head=f'<addresses>xuzhou "Suqian EMB"</addresses><references>{REF} s,X-9,{SENT}</references>',
        )
    )
    sent = datetime.fromisoformat(SENT)
    assert alert.referenced() == (
        CapReference("a@b.example", "X-0", sent),
        CapReference("s", "X-9", sent),
    )
    assert alert.addressees() == ("xuzhou", "Suqian EMB")
    assert parse_cap(_doc()).referenced() == () and parse_cap(_doc()).addressees() == ()


# An alert like the probe's (459 bytes there) with its altitude, which once rebuilt into 100 MB.
HUGE_ALTITUDE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>P-1</identifier>'
    b"<sender>probe@huaihai.example</sender><sent>2025-07-12T04:05:00+08:00</sent>"
    b"<status>Actual</status><msgType>Alert</msgType><scope>Public</scope><info>"
    b"<category>Met</category><event>Rain</event><urgency>Expected</urgency>"
    b"<severity>Minor</severity><certainty>Likely</certainty><area><areaDesc>Xuzhou</areaDesc>"
    b"<altitude>1e100000000</altitude></area></info></alert>\n"
)


def test_huge_altitude_is_refused_at_once() -> None:
    assert len(HUGE_ALTITUDE) < 512
    started = time.perf_counter()
    words = _refused(HUGE_ALTITUDE)
    assert time.perf_counter() - started < 0.5
    assert "info[0].area[0].altitude: Value error, '1e100000000' is not a decimal number" in words


@pytest.mark.parametrize(
    "value", [Decimal("1e100000000"), Decimal("-1e100000000"), "1e100000000", 1e300, Decimal("NaN")]
)
def test_huge_altitude_is_refused_when_building_the_model(value: object) -> None:
    with pytest.raises(ValidationError, match="altitude"):
        CapArea(area_desc="Xuzhou", altitude=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [Decimal("0E-100000000"), Decimal("1E+8"), Decimal("-1E+8"), Decimal("9842.519700000000000000000")],
)
def test_every_accepted_altitude_is_written_compactly(value: Decimal) -> None:
    area = CapArea(area_desc="Xuzhou", altitude=value, ceiling=MAX_FEET)
    alert = parse_cap(_doc()).model_copy(deep=True)
    info = alert.infos[0].model_copy(update={"areas": (area,)})
    document = build_cap(alert.model_copy(update={"infos": (info,)}))
    assert len(document) < 1_000
    assert parse_cap(document).infos[0].areas[0].altitude == value


def _area(**fields: Any) -> CapArea:
    """Build an area with `fields`."""
    return CapArea(area_desc="Xuzhou", **fields)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"polygons": ("34.2,117.1 34.3,117.3 34.1,117.4 34.0,117.0",)}, "the polygon is not closed"),
        ({"polygons": ("34.2,117.1 34.3,117.3 34.2,117.1",)}, "at least 4 coordinate pairs"),
        ({"circles": ("34.2,117.1 -1",)}, "radius in kilometres of at least 0"),
        ({"circles": ("91,0 1",)}, "latitude 91"),
        ({"ceiling": Decimal(3)}, "<ceiling> may only be used with <altitude>"),
    ],
)
def test_model_refuses_what_the_parser_refuses(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        _area(**fields)


def _alert_fields(**overrides: Any) -> dict[str, Any]:
    """Return the fields of a valid alert, `overrides` replacing some."""
    return {
        "identifier": "X-1",
        "sender": "s@huaihai.example",
        "sent": datetime(2025, 7, 12, 4, 5, tzinfo=UTC),
        "status": "Actual",
        "msg_type": "Alert",
        "scope": "Public",
    } | overrides


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"scope": "Restricted"}, "<restriction> is required"),
        ({"scope": "Private"}, "<addresses> is required"),
        ({"msg_type": "Cancel"}, "<references> is required"),
        ({"msg_type": "Update", "references": "X-0"}, "is not a reference"),
        ({"identifier": "a,b"}, "must not contain spaces, commas"),
    ],
)
def test_alert_model_refuses_what_the_parser_refuses(overrides: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        CapAlert(**_alert_fields(**overrides))


def test_expiry_is_checked_against_the_sent_time_when_building() -> None:
    before_sent = datetime(2025, 7, 12, 4, 5, tzinfo=UTC) - timedelta(seconds=1)
    info = parse_cap(_doc()).infos[0].model_copy(update={"expires": before_sent})
    with pytest.raises(ValidationError, match="so the information expired before it was sent"):
        CapAlert(**_alert_fields(infos=(info,)))
