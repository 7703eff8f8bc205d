"""The cities' platform resource feeds, kept in the mutual-aid registry.

Each city's platform lists its resources in its feed (`contracts.partner.ResourceItem`); the
partner sync hands every page to `apply_resources` in the transaction that stores the page and
moves the cursor, so registry, records and cursor move together and a page fetched twice
changes nothing. An entry is keyed by the platform's id for the item, owned by the platform's
city, verified at the item's `updated_at` by the platform, and marked `source = "feed"`.

A feed names things loosely ("某镇防汛沙袋", 2.5 万条); `type_item` gives each item a type of the
catalogue by its kind and a word of its name, converts its unit, and gives up, with a reason,
on what it cannot type exactly. What it registers never claims more than the feed says:

- a rescue team is one team (1 支) of the feed's number of people, of the lowest grade (轻型), as
  the feed gives no grade; its owner raises the grade in the hub;
- an expert or a vehicle is one unit booked for a time: an item of one is registered, an item
  counting several ("救护车 12 辆") is a pool the registry cannot book and is left out (`pool`);
- a supply, equipment or shelter item keeps its quantity, converted to the catalogue's unit.

A resource leaves the registry only by being marked out of service (reason `withdrawn`), never
deleted, since commitments and costs name it: when the feed reports it with quantity 0 (the
feed contract's withdrawal), when it can no longer be typed, and, after a full sync from the
start, when the feed no longer lists it at all (`retire_missing`). Items the hub cannot type
stay in the partner records and are counted in the outcome, so nothing the platform sent is lost.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from contracts.mutual_aid import EntryStatus, OutOfServiceReason
from contracts.partner import ResourceItem, ResourceKind
from contracts.resource_types import CATALOGUE, Grade
from hub.kernel import audit
from hub.kernel.actors import Actor
from hub.kernel.errors import Conflict
from hub.kernel.models import City
from hub.kernel.types import DbSession
from hub.mutual_aid import services
from hub.mutual_aid.models import AidResource

log = logging.getLogger(__name__)

FEED = "feed"

# By kind, the first word found in an item's name decides its type; more specific words first
# ("消防救援支队水域救援队" is a water rescue team, not a generic fire and rescue team).
_WORDS: dict[ResourceKind, tuple[tuple[str, str], ...]] = {
    ResourceKind.RESCUE_TEAM: (
        ("水域", "team.water"),
        ("水上", "team.water"),
        ("潜水", "team.diving"),
        ("矿山", "team.mine"),
        ("危化", "team.hazmat"),
        ("山地", "team.mountain"),
        ("倒塌", "team.usar"),
        ("医疗", "team.medical"),
        ("防汛", "team.flood"),
        ("消防", "team.fire_rescue"),
    ),
    ResourceKind.EXPERT: (
        ("防汛", "expert.flood"),
        ("地质", "expert.geology"),
        ("危化", "expert.hazchem"),
        ("结构", "expert.structural"),
        ("医疗", "expert.medical"),
        ("医学", "expert.medical"),
    ),
    ResourceKind.VEHICLE: (
        ("指挥", "vehicle.command"),
        ("通信", "vehicle.comms"),
        ("排水", "vehicle.drainage"),
        ("吊车", "vehicle.crane"),
        ("救护", "vehicle.ambulance"),
    ),
    ResourceKind.EQUIPMENT: (
        ("泵", "equipment.pump.drainage"),
        ("发电", "equipment.generator"),
        ("照明", "equipment.lighting"),
        ("冲锋舟", "equipment.boat.assault"),
        ("橡皮艇", "equipment.boat.inflatable"),
        ("生命探测", "equipment.life_detector"),
    ),
    ResourceKind.SUPPLIES: (
        ("棉帐篷", "supply.tent.cotton"),
        # A tent the feed does not describe counts as the lesser (summer) tent.
        ("帐篷", "supply.tent.summer"),
        ("棉被", "supply.quilt"),
        ("折叠床", "supply.folding_bed"),
        ("饮用水", "supply.water"),
        ("方便食品", "supply.food"),
        ("救生衣", "supply.life_jacket"),
        ("沙袋", "supply.sandbag"),
        ("编织袋", "supply.sandbag"),
        ("土工布", "supply.geotextile"),
    ),
    ResourceKind.SHELTER: (("避难", "shelter.site"),),
}

# Units a feed may count in, as multiples of the catalogue's unit of the type's kind.
_UNITS: dict[tuple[str, str], Decimal] = {("万条", "条"): Decimal(10_000), ("千条", "条"): Decimal(1_000)}


@dataclass(frozen=True)
class Typed:
    """What a feed item is in the registry's terms."""

    type_code: str
    quantity: Decimal
    grade: Grade | None = None
    personnel: int | None = None


@dataclass(frozen=True)
class Untyped:
    """Why a feed item cannot go into the registry as it stands."""

    reason: str  # unknown_type, unit, pool, id_too_long


def type_item(item: ResourceItem) -> Typed | Untyped:
    """Return the registry type, quantity and grade of a feed item, or why it has none."""
    code = next((code for word, code in _WORDS.get(item.kind, ()) if word in item.name), None)
    if code is None:
        return Untyped("unknown_type")
    row = CATALOGUE[code]
    grade = Grade.LIGHT if row.graded else None
    if item.kind is ResourceKind.RESCUE_TEAM and item.unit == "人":
        # A team counted in people: one team of that many.
        return Typed(code, Decimal(1) if item.quantity > 0 else Decimal(0), grade, int(item.quantity))
    if item.unit == row.unit:
        quantity = item.quantity
    elif (item.unit, row.unit) in _UNITS:
        quantity = item.quantity * _UNITS[(item.unit, row.unit)]
    else:
        return Untyped("unit")
    if row.bookable and quantity > 1:
        return Untyped("pool")
    if quantity != quantity.quantize(Decimal("0.001")):
        return Untyped("unit")
    return Typed(code, quantity, grade)


@dataclass
class FeedOutcome:
    """What one page (or one sweep) of a feed did to the registry."""

    registered: int = 0
    updated: int = 0
    retired: int = 0
    untyped: Counter[str] = field(default_factory=Counter)

    def add(self, other: FeedOutcome) -> None:
        """Add another page's counts to these."""
        self.registered += other.registered
        self.updated += other.updated
        self.retired += other.retired
        self.untyped.update(other.untyped)

    def as_dict(self) -> dict[str, object]:
        """Return the counts for a flow's result and the log."""
        return {
            "registered": self.registered,
            "updated": self.updated,
            "retired": self.retired,
            "untyped": dict(sorted(self.untyped.items())),
        }


def platform_actor(city: City) -> Actor:
    """Return the actor a city's platform feed acts as: its own city, no person."""
    return Actor("partner", f"feed:{city.slug}", city.id)


def _verifier(city: City) -> str:
    return f"{city.name_zh}应急平台"


def _snapshot(entry: AidResource) -> dict[str, object]:
    return {
        "external_id": entry.external_id,
        "type_code": entry.type_code,
        "name": entry.name,
        "on_hand": str(entry.on_hand),
        "status": entry.status,
        "verified_at": entry.verified_at.isoformat(),
    }


def apply_resources(session: DbSession, city_id: int, items: Sequence[ResourceItem]) -> FeedOutcome:
    """Keep a page of a city's resource feed in its registry; the caller commits with the page.

    An item no newer than what the entry was verified at changes nothing, so a page applied
    twice, or an older copy of an item, leaves the registry as it was.
    """
    city = session.get(City, city_id)
    if city is None:
        raise ValueError(f"no city {city_id}")
    actor = platform_actor(city)
    outcome = FeedOutcome()
    existing = {
        e.external_id: e
        for e in session.scalars(
            select(AidResource).where(
                AidResource.owner_city_id == city_id,
                AidResource.external_id.in_([item.id for item in items]),
            )
        )
    }
    for item in items:
        entry = existing.get(item.id)
        if item.city != city.slug:
            outcome.untyped["other_city"] += 1
            continue
        if entry is not None and entry.source != FEED:
            # A person entered an entry under the same id in the hub: theirs stands.
            outcome.untyped["id_taken"] += 1
            continue
        if entry is not None and item.updated_at <= entry.verified_at:
            continue
        typed = type_item(item)
        if isinstance(typed, Untyped):
            outcome.untyped[typed.reason] += 1
            if entry is not None and _retire(session, actor, entry, item.updated_at):
                outcome.retired += 1
            continue
        if typed.quantity == 0:
            if entry is not None and _retire(session, actor, entry, item.updated_at):
                outcome.retired += 1
            continue
        if entry is None:
            existing[item.id] = _register(session, actor, city, item, typed)
            outcome.registered += 1
        else:
            _update(session, actor, city, entry, item, typed)
            outcome.updated += 1
    session.flush()
    return outcome


def _fields(city: City, item: ResourceItem, typed: Typed) -> dict[str, object]:
    row = CATALOGUE[typed.type_code]
    lat, lon = (item.lat, item.lon) if item.lat is not None and item.lon is not None else (None, None)
    return {
        "type_code": typed.type_code,
        "kind": row.kind.value,
        "grade": int(typed.grade) if typed.grade is not None else None,
        "bookable": row.bookable,
        "name": item.name,
        "unit": row.unit,
        # Without a position of its own, an item is placed at its city's centre.
        "lat": lat if lat is not None else city.latitude,
        "lon": lon if lon is not None else city.longitude,
        "place": item.location,
        "package_personnel": typed.personnel,
        "verified_at": item.updated_at,
        "verified_by": _verifier(city),
    }


def _register(session: DbSession, actor: Actor, city: City, item: ResourceItem, typed: Typed) -> AidResource:
    entry = AidResource(
        owner_city_id=city.id,
        external_id=item.id,
        on_hand=typed.quantity,
        status=EntryStatus.AVAILABLE.value,
        contact_name=_verifier(city),
        contact_phone="",
        source=FEED,
        **_fields(city, item, typed),
    )
    session.add(entry)
    session.flush()
    audit.record(session, actor, "aid_resource.fed", "aid_resource", entry.id, after=_snapshot(entry))
    return entry


def _update(
    session: DbSession, actor: Actor, city: City, entry: AidResource, item: ResourceItem, typed: Typed
) -> None:
    before = _snapshot(entry)
    fields = _fields(city, item, typed)
    if entry.grade is not None and typed.grade is not None:
        # The owner may have raised the grade in the hub; the feed knows none.
        fields["grade"] = entry.grade
    try:
        services.set_on_hand(session, entry, typed.quantity)
    except Conflict:
        # The platform counts fewer than the hub has promised: keep what is held, say so.
        held = entry.reserved + entry.deployed
        log.warning(
            "feed of %s lists %s of %s, but %s is reserved or deployed",
            city.slug,
            typed.quantity,
            item.id,
            held,
        )
        services.set_on_hand(session, entry, held)
    for name, value in fields.items():
        setattr(entry, name, value)
    if entry.status == EntryStatus.OUT_OF_SERVICE.value and entry.out_of_service_reason == "withdrawn":
        entry.status, entry.out_of_service_reason = EntryStatus.AVAILABLE.value, None
    session.flush()
    after = _snapshot(entry) | {"feed_quantity": str(typed.quantity)}
    audit.record(session, actor, "aid_resource.fed", "aid_resource", entry.id, before=before, after=after)


def _retire(session: DbSession, actor: Actor, entry: AidResource, at: datetime | None) -> bool:
    """Mark an entry out of service as withdrawn by its platform; return whether it changed.

    `at` is the time of the feed's item that withdrew it, which the platform thereby vouches for.
    """
    if at is not None:
        entry.verified_at = max(entry.verified_at, at)
    if entry.status == EntryStatus.OUT_OF_SERVICE.value:
        return False
    before = _snapshot(entry)
    entry.status = EntryStatus.OUT_OF_SERVICE.value
    entry.out_of_service_reason = OutOfServiceReason.WITHDRAWN.value
    session.flush()
    audit.record(
        session,
        actor,
        "aid_resource.withdrawn",
        "aid_resource",
        entry.id,
        before=before,
        after=_snapshot(entry),
    )
    return True


def retire_missing(session: DbSession, city_id: int, seen: Iterable[str]) -> FeedOutcome:
    """Mark out of service the city's feed entries that a full sync from the start did not list."""
    city = session.get(City, city_id)
    if city is None:
        raise ValueError(f"no city {city_id}")
    listed = set(seen)
    outcome = FeedOutcome()
    actor = platform_actor(city)
    for entry in session.scalars(
        select(AidResource).where(
            AidResource.owner_city_id == city_id,
            AidResource.source == FEED,
            AidResource.status != EntryStatus.OUT_OF_SERVICE.value,
        )
    ):
        if entry.external_id not in listed and _retire(session, actor, entry, None):
            outcome.retired += 1
    return outcome
