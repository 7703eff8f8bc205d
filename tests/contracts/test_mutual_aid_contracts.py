"""The mutual-aid contracts and the typing catalogue: each invariant is refused when broken."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from contracts.errors import ContractError, decode_data, decode_json
from contracts.mutual_aid import (
    AidCommitment,
    AidOffer,
    AidRequest,
    AidState,
    CostRecord,
    RegistryEntry,
    RequestLine,
    ReturnRecord,
)
from contracts.partner import ResourceKind
from contracts.resource_types import (
    CATALOGUE,
    Grade,
    TypeRef,
    fit_rank,
    is_gbt38565_code,
    resource_type,
    satisfies,
)

CITIES = {
    city["slug"]: city
    for city in json.loads(
        (Path(__file__).resolve().parents[2] / "hub" / "data" / "huaihai_cities.json").read_text("utf-8")
    )["cities"]
}
NOW = datetime(2026, 7, 12, 8, 0, tzinfo=UTC)


def centre(slug: str) -> dict[str, float]:
    lon, lat = CITIES[slug]["centre"]
    return {"lat": lat, "lon": lon}


def entry(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "xz-pump-001",
        "owner_city": "xuzhou",
        "type_code": "equipment.pump.drainage",
        "kind": "equipment",
        "name": "徐州市防汛物资仓库 排涝泵",
        "quantity": 12,
        "unit": "台",
        "location": centre("xuzhou"),
        "contact": {"name": "王值班", "phone": "+86 516 8370 0000"},
        "package": {
            "personnel": 6,
            "equipment": ["排涝泵 12 台", "发电机组 2 台"],
            "daily_rate": "4800.00",
            "self_sufficiency_hours": 72,
            "mobilise_minutes": 90,
        },
        "verified_at": NOW.isoformat(),
        "verified_by": "王值班",
        "updated_at": NOW.isoformat(),
    }
    data.update(changes)
    return data


def line(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "line_id": "1",
        "type_code": "team.water",
        "min_grade": Grade.MEDIUM.value,
        "quantity": 2,
        "unit": "支",
        "needed_by": (NOW + timedelta(hours=6)).isoformat(),
        "duration_hours": 72,
        "report_to": {"place": "临沂市河东区防汛指挥部", "point": centre("linyi")},
    }
    data.update(changes)
    return data


def test_catalogue_codes_and_gbt38565_form() -> None:
    assert resource_type("team.usar").graded
    assert resource_type("vehicle.command").bookable
    assert not resource_type("supply.tent.summer").bookable
    supplies = [row for row in CATALOGUE.values() if row.kind is ResourceKind.SUPPLIES]
    assert {row.gbt38565_category for row in supplies} <= {1, 2, 3}
    assert is_gbt38565_code("1010199")
    assert not is_gbt38565_code("4010101")  # no 大类 4
    assert not is_gbt38565_code("1000101")  # 中类 00 does not exist
    with pytest.raises(KeyError, match="unknown resource type"):
        resource_type("team.unicorn")


def test_a_stronger_grade_stands_in_for_a_weaker_one() -> None:
    medium_line = TypeRef("team.usar", Grade.MEDIUM)
    assert satisfies(TypeRef("team.usar", Grade.HEAVY), medium_line)
    assert satisfies(TypeRef("team.usar", Grade.MEDIUM), medium_line)
    assert not satisfies(TypeRef("team.usar", Grade.LIGHT), medium_line)
    assert satisfies(TypeRef("team.usar", Grade.LIGHT), TypeRef("team.usar"))
    assert not satisfies(TypeRef("team.usar"), medium_line)
    assert fit_rank(TypeRef("team.usar", Grade.HEAVY), medium_line) == 1
    assert fit_rank(TypeRef("team.usar", Grade.MEDIUM), medium_line) == 0


def test_a_declared_stand_in_type_satisfies_but_not_the_reverse() -> None:
    assert satisfies(TypeRef("supply.tent.cotton"), TypeRef("supply.tent.summer"))
    assert not satisfies(TypeRef("supply.tent.summer"), TypeRef("supply.tent.cotton"))
    assert satisfies(TypeRef("team.fire_rescue", Grade.HEAVY), TypeRef("team.usar", Grade.HEAVY))
    assert not satisfies(TypeRef("team.fire_rescue", Grade.LIGHT), TypeRef("team.usar", Grade.HEAVY))
    assert fit_rank(TypeRef("supply.tent.cotton"), TypeRef("supply.tent.summer")) == 2
    assert not satisfies(TypeRef("supply.quilt"), TypeRef("supply.tent.summer"))


def test_registry_entry_round_trips_through_json() -> None:
    parsed = decode_data(RegistryEntry, entry())
    assert parsed.package is not None and parsed.package.daily_rate == Decimal("4800.00")
    again = decode_json(RegistryEntry, parsed.model_dump_json())
    assert again == parsed
    with pytest.raises(ValidationError):
        parsed.quantity = Decimal(1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"kind": "supplies"}, "is of kind equipment, not supplies"),
        ({"unit": "个"}, "counted in '台'"),
        ({"grade": 1}, "is not graded"),
        ({"type_code": "team.usar", "kind": "rescue_team", "unit": "支", "quantity": 1}, "give its grade"),
        ({"type_code": "vehicle.comms", "kind": "vehicle", "unit": "辆", "quantity": 2}, "must be 1"),
        ({"status": "out_of_service"}, "out_of_service_reason"),
        ({"out_of_service_reason": "rest"}, "out_of_service_reason"),
        ({"type_code": "equipment.warp_drive"}, "unknown resource type"),
        ({"location": {"lat": 95.0, "lon": 117.2}}, "location.lat"),
        ({"quantity": True}, "quantity must be a number"),
        ({"owner_city": "Xuzhou"}, "owner_city"),
        ({"surplus": 1}, "surplus"),
    ],
)
def test_registry_entry_refuses(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(ContractError, match=words):
        decode_data(RegistryEntry, entry(**changes))


def test_request_line_rules() -> None:
    parsed = decode_data(RequestLine, line())
    assert parsed.needed_until == parsed.needed_by + timedelta(hours=72)
    assert parsed.type_ref == TypeRef("team.water", Grade.MEDIUM)
    with pytest.raises(ContractError, match="quantity"):
        decode_data(RequestLine, line(quantity=0))
    with pytest.raises(ContractError, match="whole units"):
        decode_data(RequestLine, line(quantity=1.5))
    with pytest.raises(ContractError, match="min_grade is given"):
        decode_data(RequestLine, line(type_code="supply.quilt", unit="床", min_grade=2))
    with pytest.raises(ContractError, match="needed_by"):
        decode_data(RequestLine, line(needed_by="2026-07-12T14:00:00"))  # no zone


def test_request_refuses_repeated_line_ids() -> None:
    data = {
        "id": str(uuid4()),
        "requesting_city": "linyi",
        "title": "临沂沂河洪水 请求排涝支援",
        "lines": [line(), line()],
        "contact": {"name": "李指挥", "phone": "0539-8888888"},
        "created_at": NOW.isoformat(),
    }
    with pytest.raises(ContractError, match="used twice"):
        decode_data(AidRequest, data)
    data["lines"] = [line(), line(line_id="2")]
    request = decode_data(AidRequest, data)
    assert request.line("2").line_id == "2"
    with pytest.raises(ContractError, match="exercise"):
        decode_data(AidRequest, {**data, "exercise": "yes"})


def test_offer_fills_a_line_by_type_and_grade() -> None:
    offer = AidOffer(
        id=uuid4(),
        request_id=uuid4(),
        line_id="1",
        offering_city="zaozhuang",
        resource_id="zz-water-1",
        type_code="team.water",
        grade=Grade.HEAVY,
        quantity=Decimal(1),
        unit="支",
        estimated_arrival=NOW + timedelta(hours=3),
        estimated_cost=Decimal("12000.50"),
        offered_at=NOW,
        valid_until=NOW + timedelta(minutes=30),
    )
    assert offer.fills(decode_data(RequestLine, line()))
    assert not offer.fills(decode_data(RequestLine, line(type_code="team.usar")))
    with pytest.raises(ValidationError, match="valid_until"):
        AidOffer.model_validate({**offer.model_dump(), "valid_until": NOW})


def commitment(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(uuid4()),
        "offer_id": str(uuid4()),
        "request_id": str(uuid4()),
        "line_id": "1",
        "owner_city": "xuzhou",
        "requesting_city": "linyi",
        "resource_id": "xz-pump-001",
        "quantity": 4,
        "unit": "台",
        "start": NOW.isoformat(),
        "end": (NOW + timedelta(days=3)).isoformat(),
        "state": "accepted",
        "estimated_cost": "14400",
        "updated_at": NOW.isoformat(),
    }
    data.update(changes)
    return data


def test_commitment_invariants() -> None:
    assert decode_data(AidCommitment, commitment()).state is AidState.ACCEPTED
    with pytest.raises(ContractError, match="order_number"):
        decode_data(AidCommitment, commitment(state="dispatched"))
    assert decode_data(AidCommitment, commitment(state="dispatched", order_number="XZ-2026-0712-01"))
    with pytest.raises(ContractError, match="must differ"):
        decode_data(AidCommitment, commitment(requesting_city="xuzhou"))
    with pytest.raises(ContractError, match="end must be after start"):
        decode_data(AidCommitment, commitment(end=NOW.isoformat()))
    with pytest.raises(ContractError, match="not a commitment"):
        decode_data(AidCommitment, commitment(state="offered"))


def test_return_record_accounts_for_every_dispatched_unit() -> None:
    base = {
        "commitment_id": str(uuid4()),
        "dispatched": 10,
        "returned": 7,
        "consumed": 2,
        "lost": 1,
        "released_at": NOW.isoformat(),
        "returned_at": (NOW + timedelta(hours=5)).isoformat(),
        "confirmed_by": "王值班",
    }
    assert decode_data(ReturnRecord, base).returned == 7
    with pytest.raises(ContractError, match="returned \\+ consumed \\+ lost is 11, but 10 were dispatched"):
        decode_data(ReturnRecord, {**base, "returned": 8})
    with pytest.raises(ContractError, match="returned"):
        decode_data(ReturnRecord, {**base, "returned": -1, "consumed": 10})
    with pytest.raises(ContractError, match="before released_at"):
        decode_data(ReturnRecord, {**base, "returned_at": (NOW - timedelta(hours=1)).isoformat()})


def test_cost_record_signatures_and_total() -> None:
    data = {
        "id": str(uuid4()),
        "commitment_id": str(uuid4()),
        "kind": "actual",
        "owner_city": "xuzhou",
        "requesting_city": "linyi",
        "lines": [
            {"category": "personnel", "description": "6 人 × 3 天", "amount": "5400.00"},
            {"category": "transport", "description": "徐州—临沂 往返", "amount": 1800.5},
        ],
        "owner_signature": {"city": "xuzhou", "signed_by": "王值班", "signed_at": NOW.isoformat()},
    }
    record = decode_data(CostRecord, data)
    assert record.total == Decimal("7200.50")
    assert not record.signed
    assert json.loads(record.model_dump_json())["lines"][1]["amount"] == "1800.5"
    with pytest.raises(ContractError, match="requester_signature must be by the requesting city"):
        decode_data(
            CostRecord,
            {**data, "requester_signature": {"city": "heze", "signed_by": "赵", "signed_at": NOW}},
        )
    with pytest.raises(ContractError, match="amount"):
        bad_line = {"category": "other", "description": "x", "amount": "1.234"}
        decode_data(CostRecord, {**data, "lines": [bad_line]})


SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "mutual_aid"


def test_samples_decode() -> None:
    registered = decode_json(RegistryEntry, (SAMPLES / "registry-entry.json").read_bytes())
    assert registered.owner_city in CITIES
    request = decode_json(AidRequest, (SAMPLES / "aid-request.json").read_bytes())
    assert request.requesting_city == "linyi"
    assert [line.type_code for line in request.lines] == ["equipment.pump.drainage", "team.water"]


@pytest.mark.parametrize("text", ["010013091*", "1e", "--1", "一百"])
def test_an_amount_that_is_no_number_is_a_validation_error(text: str) -> None:
    from pydantic import TypeAdapter, ValidationError

    from contracts.mutual_aid import Money

    with pytest.raises(ValidationError, match="is not an amount"):
        TypeAdapter(Money).validate_python(text)
