"""The partner platforms' resource feeds keep the mutual-aid registry, over real sockets.

A real `PartnerSimulator` serves its city's resources; the sync flow (through Prefect's harness)
stores the page and keeps the registry in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from connectors.sims.partner import PartnerSimulator
from contracts.partner import ResourceItem, ResourceKind
from flows.partners import sync_partner
from hub.extensions import db
from hub.kernel.actors import Actor
from hub.kernel.models import AuditEntry, Role
from hub.mutual_aid import feed, services
from hub.mutual_aid.models import AidResource
from hub.partners.models import FeedState
from tests.hub.mutual_aid.factories import CONTACT, entry, line

pytestmark = pytest.mark.usefixtures("prefect_harness")
ADMIN = Actor("system", "tests", None, Role.ADMIN)


@pytest.fixture
def platform(platforms: Callable[..., PartnerSimulator]) -> Callable[..., PartnerSimulator]:
    """The flows' platform simulators, with the seed these registry checks were written against."""
    return functools.partial(platforms, seed=11)


def _registry(slug: str) -> dict[str, AidResource]:
    db.session.commit()  # end the test's read, so that the next sync sees and writes freely
    rows = db.session.scalars(
        select(AidResource).join(AidResource.owner_city).where(AidResource.source == "feed")
    )
    return {r.external_id: r for r in rows if r.owner_city.slug == slug}


def _resources(simulator: PartnerSimulator) -> list[ResourceItem]:
    return [r for r in simulator.records("resources") if isinstance(r, ResourceItem)]


def _audits() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).where(AuditEntry.action.like("aid_resource.%"))) or 0


def test_the_feed_fills_the_registry_and_a_rerun_changes_nothing(platform) -> None:
    simulator = platform("xuzhou", initial=(0, 0, 60))
    sync_partner("xuzhou")
    registry = _registry("xuzhou")
    items = _resources(simulator)
    typed = {i.id: t for i in items if isinstance(t := feed.type_item(i), feed.Typed) and t.quantity > 0}
    assert set(registry) == set(typed) and len(typed) > 10
    for item in items:
        if item.id not in typed:
            continue
        kept = registry[item.id]
        assert kept.owner_city.slug == "xuzhou"
        assert kept.verified_at == item.updated_at and kept.verified_by == "徐州市应急平台"
        assert (kept.type_code, kept.on_hand) == (typed[item.id].type_code, typed[item.id].quantity)
        assert kept.status == "available" and kept.name == item.name
    teams = [r for r in registry.values() if r.kind == "rescue_team"]
    assert teams and all(t.on_hand == 1 and t.grade == 3 and t.package_personnel for t in teams)
    # Pools of vehicles or experts are left in the partner records, not booked as one unit.
    pools = [i for i in items if feed.type_item(i) == feed.Untyped("pool")]
    assert pools and not any(p.id in registry for p in pools)

    audits = _audits()
    assert sync_partner("xuzhou")["resources"] == 0
    assert _audits() == audits
    assert {k: (r.on_hand, r.verified_at) for k, r in _registry("xuzhou").items()} == {
        k: (r.on_hand, r.verified_at) for k, r in registry.items()
    }


def test_changes_update_and_withdrawals_take_entries_out_of_service(platform) -> None:
    simulator = platform("linyi", initial=(0, 0, 40))
    sync_partner("linyi")
    before = {k: (r.on_hand, r.verified_at) for k, r in _registry("linyi").items()}
    pumps = next(
        i for i in _resources(simulator) if i.id in before and i.kind is not ResourceKind.RESCUE_TEAM
    )
    team = next(i for i in _resources(simulator) if i.id in before and i.kind is ResourceKind.RESCUE_TEAM)
    simulator.put(pumps.model_copy(update={"quantity": pumps.quantity + 7}))
    simulator.withdraw([team.id])
    sync_partner("linyi")
    after = _registry("linyi")
    assert set(after) == set(before)  # nothing deleted
    assert after[pumps.id].on_hand == before[pumps.id][0] + 7
    assert after[pumps.id].verified_at > before[pumps.id][1]
    assert (after[team.id].status, after[team.id].out_of_service_reason) == ("out_of_service", "withdrawn")
    assert sum(r.status == "out_of_service" for r in after.values()) == 1
    # Back in the feed, it is available again.
    simulator.put(team.model_copy(update={"quantity": Decimal(30)}))
    sync_partner("linyi")
    again = _registry("linyi")[team.id]
    assert (again.status, again.out_of_service_reason, again.package_personnel) == ("available", None, 30)


def test_entries_gone_from_the_feed_go_out_of_service_on_a_full_sync(platform, city) -> None:
    simulator = platform("heze", initial=(0, 0, 30))
    sync_partner("heze")
    kept = _registry("heze")
    gone = sorted(kept)[:3]
    simulator.forget("resources", gone)
    sync_partner("heze")  # incremental: the feed says nothing of them
    assert all(_registry("heze")[g].status == "available" for g in gone)
    state = db.session.scalar(
        select(FeedState).where(FeedState.city_id == city("heze").id, FeedState.feed == "resources")
    )
    state.cursor = None  # an operator asks for a full sync from the start
    db.session.commit()
    sync_partner("heze")
    after = _registry("heze")
    assert set(after) == set(kept)
    assert {k for k, r in after.items() if r.status == "out_of_service"} == set(gone)


def test_the_feed_never_takes_held_stock_or_a_hub_entry(platform, make_user) -> None:
    simulator = platform("zaozhuang", initial=(0, 0, 40))
    sync_partner("zaozhuang")
    registry = _registry("zaozhuang")
    item = next(
        i
        for i in _resources(simulator)
        if i.id in registry and registry[i.id].type_code == "equipment.pump.drainage" and i.quantity >= 4
    )
    owner = Actor.for_user(make_user("zz", "zaozhuang"))
    linyi = Actor.for_user(make_user("ly", "linyi"))
    request = services.create_request(
        db.session, linyi, title="沂河洪水", lines=[line(quantity=4)], contact=CONTACT
    )
    offer = services.make_offer(db.session, owner, request.lines[0].id, registry[item.id].id, Decimal(4))
    services.accept(db.session, linyi, offer.id)
    # A person keeps an entry in the hub under an id the feed also uses.
    clash = next(i for i in _resources(simulator) if i.id not in registry)
    services.register_entry(db.session, owner, entry(owner="zaozhuang", external_id=clash.id))
    db.session.commit()

    simulator.put(item.model_copy(update={"quantity": Decimal(1)}))
    simulator.put(clash.model_copy(update={"name": "枣庄市城关镇冲锋舟", "kind": ResourceKind.EQUIPMENT}))
    sync_partner("zaozhuang")
    db.session.expire_all()
    held = db.session.get(AidResource, registry[item.id].id)
    assert (held.on_hand, held.reserved) == (Decimal(4), Decimal(4))
    mine = db.session.scalar(select(AidResource).where(AidResource.external_id == clash.id))
    assert (mine.source, mine.type_code, mine.verified_by) == ("hub", "equipment.pump.drainage", "李明")
