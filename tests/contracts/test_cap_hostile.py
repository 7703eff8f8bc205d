"""Hostile or broken CAP documents are refused with a CapError that says what is wrong."""

from __future__ import annotations

import pytest

from contracts.cap import CapError, parse_cap
from contracts.errors import ContractError

MINIMAL = """<?xml version="1.0" encoding="UTF-8"?>
<cap:alert xmlns:cap="urn:oasis:names:tc:emergency:cap:1.2">
  <cap:identifier>{identifier}</cap:identifier>
  <cap:sender>xuzhou@huaihai.example</cap:sender>
  <cap:sent>{sent}</cap:sent>
  <cap:status>{status}</cap:status>
  <cap:msgType>Alert</cap:msgType>
  <cap:scope>Public</cap:scope>
  {extra}
</cap:alert>
"""


def _doc(
    identifier: str = "<cap:identifier>X-1</cap:identifier>",
    sent: str = "2025-07-12T04:05:00+08:00",
    status: str = "Actual",
    extra: str = "",
) -> bytes:
    """Return a minimal CAP 1.2 alert with the given parts replaced."""
    text = MINIMAL.format(identifier="{identifier}", sent=sent, status=status, extra=extra)
    text = text.replace("<cap:identifier>{identifier}</cap:identifier>", identifier)
    return text.encode("utf-8")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol4;</identifier></alert>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><note>&xxe;</note></alert>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://evil.example/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>
"""


def test_minimal_document_is_accepted() -> None:
    alert = parse_cap(_doc())
    assert alert.identifier == "X-1"
    assert alert.infos == ()


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (BILLION_LAUGHS, "has a DTD"),
        (EXTERNAL_ENTITY, "has a DTD"),
        (EXTERNAL_DTD, "has a DTD"),
        (_doc()[:-30], "not well-formed XML"),
        (b"", "not well-formed XML"),
        (b"\x89PNG\r\n\x1a\n", "not well-formed XML"),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'/>", "root element is <{http://www.w3.org"),
        (b"<alert><identifier>x</identifier></alert>", "root element <alert> has no namespace"),
        (_doc(identifier=""), "identifier: required but missing"),
        (_doc(identifier="<cap:identifier> </cap:identifier>"), "identifier: required"),
        (
            _doc(identifier="<cap:identifier>a b</cap:identifier>"),
            "identifier: Value error, 'a b' must not contain spaces, commas",
        ),
        (_doc(sent="2025-07-12 04:05:00"), "sent: Value error, '2025-07-12 04:05:00' is not"),
        (_doc(sent="2025-07-12T04:05:00Z"), "is not a CAP date-time"),
        (_doc(sent="2025-13-12T04:05:00+08:00"), "sent: Value error, month must be in 1..12"),
        (_doc(status="Live"), "status: Input should be 'Actual', 'Exercise'"),
        (_doc(extra="<cap:priority>high</cap:priority>"), "alert: unexpected element <priority>"),
        (_doc(extra="<x:y xmlns:x='urn:x'/>"), "alert: unexpected element <{urn:x}y>"),
        (_doc(extra="<cap:note>a</cap:note><cap:note>b</cap:note>"), "<note> appears more than"),
        (_doc(extra="<cap:note><cap:b>x</cap:b></cap:note>"), "must hold text, not elements"),
        (_doc(extra="loose words"), "unexpected text 'loose words' between elements"),
        (
            _doc(extra="<cap:info><cap:category>Met</cap:category></cap:info>"),
            "info[0].event: required but missing",
        ),
        (
            _doc(
                extra="<cap:info><cap:category>Weather</cap:category><cap:event>e</cap:event>"
                "<cap:urgency>Past</cap:urgency><cap:severity>Minor</cap:severity>"
                "<cap:certainty>Likely</cap:certainty></cap:info>"
            ),
            "info[0].category[0]: Input should be 'Geo'",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_document_is_refused_with_a_clear_message(document: bytes, words: str) -> None:
    with pytest.raises(CapError) as caught:
        parse_cap(document)
    assert words in str(caught.value)
    assert isinstance(caught.value, ContractError)


def test_oversized_document_is_refused_before_parsing() -> None:
    # Not even well-formed: the size check must come first.
    with pytest.raises(CapError, match="CAP document is 2001 bytes, more than the limit of 2000"):
        parse_cap(b"<" * 2001, max_bytes=2000)


def test_cap10_is_refused_like_cap11() -> None:
    with pytest.raises(CapError, match=r"CAP 1\.0 is not accepted; send CAP 1\.2"):
        parse_cap(b'<alert xmlns="http://www.incident.com/cap/1.0"/>')


def test_very_likely_is_read_as_likely() -> None:
    info = (
        "<cap:info><cap:category>Met</cap:category><cap:event>e</cap:event>"
        "<cap:urgency>Past</cap:urgency><cap:severity>Minor</cap:severity>"
        "<cap:certainty>Very Likely</cap:certainty></cap:info>"
    )
    assert parse_cap(_doc(extra=info)).infos[0].certainty == "Likely"
