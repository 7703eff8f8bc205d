"""CAP text carries only what XML can: control characters are refused, and every built alert re-parses."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from contracts.cap import (
    CapAlert,
    CapArea,
    CapCategory,
    CapCertainty,
    CapError,
    CapInfo,
    CapMsgType,
    CapParameter,
    CapResource,
    CapScope,
    CapSeverity,
    CapStatus,
    CapUrgency,
    alert_from_incident,
    build_cap,
    parse_cap,
)
from contracts.common import IncidentCategory, IncidentLevel
from contracts.errors import ContractError
from contracts.incidents import IncidentReport

SENT = datetime(2025, 7, 12, 4, 5, tzinfo=UTC)
RING = "34.2,117.1 34.3,117.3 34.1,117.4 34.2,117.1"
# Every character XML 1.0 cannot carry that a caller could hand over in a str.
NOT_XML = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\ud800", "\ufffe", "\uffff"]


def _full_alert() -> dict[str, Any]:
    """Return the fields of an alert in which every text field is used."""
    parameter = {"value_name": "预警颜色", "value": "橙色"}
    return {
        "identifier": "X-1",
        "sender": "xuzhou@huaihai.example",
        "sent": SENT,
        "status": "Exercise",
        "msg_type": "Update",
        "source": "徐州市应急管理局",
        "scope": "Private",
        "restriction": "members only",
        "addresses": 'xuzhou "Suqian EMB"',
        "codes": ("GB/T 35965.1-2018",),
        "note": "drill",
        "references": "s,X-0,2025-07-12T04:00:00+08:00",
        "incidents": "flood-7",
        "infos": (
            {
                "language": "zh-CN",
                "categories": ("Met",),
                "event": "暴雨",
                "urgency": "Expected",
                "severity": "Moderate",
                "certainty": "Likely",
                "audience": "public",
                "event_codes": (parameter,),
                "sender_name": "徐州市应急管理局",
                "headline": "暴雨橙色预警",
                "description": "未来6小时降雨量将达50毫米以上。",
                "instruction": "注意防范。",
                "web": "https://www.xz.gov.cn/",
                "contact": "0516-12345",
                "parameters": (parameter,),
                "resources": (
                    {
                        "resource_desc": "map",
                        "mime_type": "image/png",
                        "uri": "https://www.xz.gov.cn/map.png",
                        "digest": "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
                    },
                ),
                "areas": (
                    {
                        "area_desc": "徐州市",
                        "polygons": (RING,),
                        "circles": ("34.2,117.1 5",),
                        "geocodes": (parameter,),
                    },
                ),
            },
        ),
    }


def _text_paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Yield the path of every plain-text leaf in `data`."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _text_paths(value, (*path, key))
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            yield from _text_paths(value, (*path, index))
    elif type(data) is str:
        yield path


def _with(data: Any, path: tuple[Any, ...], text: str) -> Any:
    """Return `data` with the leaf at `path` replaced by `text`."""
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return data | {head: _with(data[head], rest, text)}
    return tuple(_with(item, rest, text) if index == head else item for index, item in enumerate(data))


FULL = _full_alert()
TEXT_PATHS = list(_text_paths(FULL))
# Fields with a syntax of their own, which may report that syntax instead of the character.
FORMATTED = {"language", "polygons", "circles", "web", "uri", "digest", "mime_type", "references"}


def test_full_alert_is_valid_and_survives_a_rebuild() -> None:
    alert = CapAlert.model_validate(FULL)
    assert parse_cap(build_cap(alert)) == alert
    assert len(TEXT_PATHS) >= 30


@pytest.mark.parametrize("path", TEXT_PATHS, ids=lambda path: ".".join(map(str, path)))
def test_control_character_in_any_text_field_is_refused(path: tuple[Any, ...]) -> None:
    original = _leaf(FULL, path)
    with pytest.raises(ValidationError) as caught:
        CapAlert.model_validate(_with(FULL, path, original[:1] + "\x01" + original[1:]))
    if not FORMATTED & set(path):
        assert "holds the character U+0001" in str(caught.value)


def _leaf(data: Any, path: tuple[Any, ...]) -> str:
    """Return the leaf of `data` at `path`."""
    for part in path:
        data = data[part]
    assert isinstance(data, str)
    return data


@pytest.mark.parametrize("character", NOT_XML, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_every_character_xml_cannot_carry_is_refused(character: str, where: str) -> None:
    text = {"start": f"{character}暴雨", "middle": f"暴{character}雨", "end": f"暴雨{character}"}[where]
    path = ("infos", 0, "headline")
    with pytest.raises(ValidationError, match=f"holds the character U\\+{ord(character):04X}"):
        CapAlert.model_validate(_with(FULL, path, text))


@pytest.mark.parametrize("character", ["\x1c", "\x1f", "\x0b"])
def test_control_character_is_not_taken_for_a_list_separator(character: str) -> None:
    path = ("infos", 0, "areas", 0, "polygons", 0)
    with pytest.raises(ValidationError, match="holds the character"):
        CapAlert.model_validate(_with(FULL, path, RING.replace(" ", character)))


def test_tab_line_feed_and_carriage_return_are_kept() -> None:
    text = "第一行\r\n第二行\n\t第三行"
    alert = CapAlert.model_validate(_with(FULL, ("infos", 0, "description"), text))
    assert parse_cap(build_cap(alert)).infos[0].description == text


@pytest.mark.parametrize("text", ["&#1;", "&#x0;", "&#x1F;", "\x01", "\x00"])
def test_control_character_in_a_document_is_refused(text: str) -> None:
    document = build_cap(CapAlert.model_validate(FULL)).replace("暴雨橙色预警".encode(), text.encode())
    with pytest.raises(CapError, match="not well-formed XML"):
        parse_cap(document)


def test_build_refuses_text_that_slipped_past_validation() -> None:
    # model_construct() skips validation; build_cap still writes no ill-formed XML.
    alert = CapAlert.model_validate(FULL)
    bad = alert.model_construct(**(dict(alert) | {"note": "a\x01b"}))
    with pytest.raises(CapError, match="holds the character U\\+0001"):
        build_cap(bad)


def test_incident_with_a_control_character_is_a_contract_error() -> None:
    report = IncidentReport(
        id=UUID("3f6d2a8e-5b1c-4e7a-9d0f-2c8b7a6e5d41"),
        reporting_city="xuzhou",
        category=IncidentCategory.NATURAL,
        level=IncidentLevel.II,
        title="内涝",
        occurred_at=SENT,
        reported_at=SENT,
        affected_cities=("xuzhou",),
    ).model_copy(update={"title": "内\x01涝"})
    with pytest.raises(ContractError, match="headline: Value error, holds the character U\\+0001"):
        alert_from_incident(report, sender="xuzhou@huaihai.example", division_code="320300", sequence=0)


ALPHABET = [
    *"abcXYZ019 ",
    *"暴雨预警徐州",
    "<",
    ">",
    "&",
    "]]>",
    '"',
    "'",
    "&amp;",
    "<!--",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\u0085",
    "\u2028",
    "\u00a0",
    "\x7f",
    "\x80",
    "\U0001f327",
    "\u202e",
    "\ufeff",
]


def _text(rng: random.Random) -> str:
    """Return random text that starts with a letter, from characters XML can carry."""
    return "a" + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))


def _enum(rng: random.Random, enum: type[Enum]) -> Any:
    """Return a random member of `enum`."""
    return rng.choice(list(enum))


def _random_alert(rng: random.Random) -> CapAlert:
    """Return a random valid alert that uses most of CAP's elements."""
    sent = SENT + timedelta(seconds=rng.randint(-(10**8), 10**8))

    def pairs(count: int) -> tuple[CapParameter, ...]:
        return tuple(CapParameter(value_name=_text(rng), value=_text(rng)) for _ in range(count))

    def area() -> CapArea:
        lat, lon = rng.uniform(-89, 89), rng.uniform(-179, 179)
        ring = [f"{lat:.4f},{lon:.4f}", f"{lat + 1:.4f},{lon:.4f}", f"{lat:.4f},{lon + 1:.4f}"]
        altitude = Decimal(rng.randint(-(10**6), 10**6)).scaleb(-rng.randint(0, 12))
        return CapArea(
            area_desc=_text(rng),
            polygons=(" ".join([*ring, ring[0]]),) * rng.randint(0, 2),
            circles=(f"{lat:.3f},{lon:.3f} {rng.uniform(0, 500):.1f}",) * rng.randint(0, 2),
            geocodes=pairs(rng.randint(0, 2)),
            altitude=altitude if rng.random() < 0.5 else None,
        )

    def info() -> CapInfo:
        return CapInfo(
            language=rng.choice(["zh-CN", "en-US", "zh-Hans-CN"]),
            categories=(_enum(rng, CapCategory),),
            event=_text(rng),
            urgency=_enum(rng, CapUrgency),
            severity=_enum(rng, CapSeverity),
            certainty=_enum(rng, CapCertainty),
            expires=sent + timedelta(hours=rng.randint(0, 48)),
            headline=_text(rng),
            description=_text(rng),
            instruction=_text(rng) if rng.random() < 0.5 else None,
            parameters=pairs(rng.randint(0, 3)),
            resources=(CapResource(resource_desc=_text(rng), mime_type="text/plain"),) * rng.randint(0, 1),
            areas=tuple(area() for _ in range(rng.randint(0, 2))),
        )

    msg_type = _enum(rng, CapMsgType)
    scope = _enum(rng, CapScope)
    return CapAlert(
        identifier=f"X-{rng.randint(0, 10**9)}",
        sender="s@huaihai.example",
        sent=sent,
        status=_enum(rng, CapStatus),
        msg_type=msg_type,
        scope=scope,
        restriction=_text(rng) if scope is CapScope.RESTRICTED else None,
        addresses="xuzhou suqian" if scope is CapScope.PRIVATE else None,
        note=_text(rng),
        references=None if msg_type is CapMsgType.ALERT else "s,X-0,2025-07-12T04:00:00+08:00",
        infos=tuple(info() for _ in range(rng.randint(0, 3))),
    )


@pytest.mark.parametrize("seed", range(200))
def test_everything_build_cap_writes_parses_back_to_the_same_alert(seed: int) -> None:
    alert = _random_alert(random.Random(seed))
    assert parse_cap(build_cap(alert)) == alert
