"""Typing a platform's feed items for the registry: exact where it can be, refused with a reason where not."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from contracts.partner import ResourceItem, ResourceKind
from contracts.resource_types import Grade
from hub.mutual_aid.feed import Typed, Untyped, type_item


def _item(kind: ResourceKind, name: str, quantity: str, unit: str) -> ResourceItem:
    return ResourceItem(
        id="XZ-ZY-000001",
        city="xuzhou",
        kind=kind,
        name=name,
        quantity=Decimal(quantity),
        unit=unit,
        updated_at=datetime(2026, 11, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("kind", "name", "quantity", "unit", "expected"),
    [
        # A team counted in people is one team of that many, of the lowest grade.
        (
            ResourceKind.RESCUE_TEAM,
            "城关镇消防救援支队水域救援队",
            "57",
            "人",
            Typed("team.water", Decimal(1), Grade.LIGHT, 57),
        ),
        (ResourceKind.RESCUE_TEAM, "矿山救护队", "0", "人", Typed("team.mine", Decimal(0), Grade.LIGHT, 0)),
        (ResourceKind.SUPPLIES, "新集镇防汛沙袋", "2.5", "万条", Typed("supply.sandbag", Decimal(25_000))),
        (ResourceKind.SUPPLIES, "救灾帐篷", "40", "顶", Typed("supply.tent.summer", Decimal(40))),
        (ResourceKind.EQUIPMENT, "排涝泵车", "6", "台", Typed("equipment.pump.drainage", Decimal(6))),
        (ResourceKind.VEHICLE, "救护车", "1", "辆", Typed("vehicle.ambulance", Decimal(1))),
        (ResourceKind.SHELTER, "应急避难场所", "800", "人", Typed("shelter.site", Decimal(800))),
        (ResourceKind.VEHICLE, "救护车", "12", "辆", Untyped("pool")),
        (ResourceKind.EXPERT, "防汛抢险专家", "3", "人", Untyped("pool")),
        (ResourceKind.SUPPLIES, "融雪剂", "4.5", "吨", Untyped("unknown_type")),
        (ResourceKind.VEHICLE, "消防车", "1", "辆", Untyped("unknown_type")),
        (ResourceKind.SUPPLIES, "棉被", "3", "箱", Untyped("unit")),
    ],
)
def test_feed_items_are_typed_or_refused_with_a_reason(
    kind: ResourceKind, name: str, quantity: str, unit: str, expected: Typed | Untyped
) -> None:
    assert type_item(_item(kind, name, quantity, unit)) == expected
